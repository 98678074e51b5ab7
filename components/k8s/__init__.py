"""Kubernetes components: a locked-down serving namespace, least-privilege deployer access, the
model-store access, one ModelServer per blue/green slot, the slot router and the TLS ingress."""
