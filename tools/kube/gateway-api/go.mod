// Pin of the Gateway API CRDs (standard channel) that `lastmile cluster up` installs: no code is built from
// this module; tools/kube/gateway-api.sh downloads it under these pins and copies config/crd/standard/.
module lastmile.local/tools/kube/gateway-api

go 1.24

require sigs.k8s.io/gateway-api v1.6.3
