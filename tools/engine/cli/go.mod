// Wrapper module for building the Pulumi CLI (cmd/pulumi of github.com/pulumi/pulumi/pkg/v3).
//
// pkg/v3's own go.mod replaces sdk/v3 with the sibling directory ../sdk, so
// `go install github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@vX` is refused. This module requires pkg/v3
// and sdk/v3 at the same release instead, and repeats pkg/v3's non-local replace directives (a
// dependency's replace directives are ignored by Go). tools/engine/bootstrap.sh copies this file and
// go.sum (which pins every module of the build) to a temporary directory, re-applies the versions from
// the variables at the top of the script, copies any further non-local replace found in the downloaded
// pkg/v3 go.mod, checks every module against go.sum and runs
// `go build github.com/pulumi/pulumi/pkg/v3/cmd/pulumi` there with -mod=readonly. Nothing is built in
// this directory.
module lastmile.local/tools/engine/cli

go 1.26.6

require (
	github.com/pulumi/pulumi/pkg/v3 v3.274.1
	github.com/pulumi/pulumi/sdk/v3 v3.274.1
)

// Non-local replace directives of pulumi/pkg/go.mod (the local one, sdk/v3 => ../sdk, becomes the
// sdk/v3 requirement above).
replace (
	github.com/atotto/clipboard => github.com/tgummerer/clipboard v0.0.0-20241001131231-d02d263e614e
	github.com/sergi/go-diff => github.com/sergi/go-diff v1.1.0
	github.com/xanzy/ssh-agent => github.com/pulumi/ssh-agent v0.5.1
)
