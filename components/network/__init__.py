"""Cloud networking of the hybrid topology: a private VPC, a hardened site-to-site VPN, private service access.

- ``vpc.PrivateNetwork``: VPC with private subnets in >= 2 AZs, no internet gateway, the default
  security group closed, flow logs (ALL traffic) to a KMS-encrypted log group.
- ``vpn.SiteToSiteVpn``: customer gateway, VPN gateway, a VPN connection with both tunnels hardened
  from the typed allow-lists of ``tunnel_crypto``, tunnel logs, a TunnelState alarm per tunnel, BGP route
  propagation or static routes.
- ``private_access.PrivateServiceAccess``: interface endpoints (SageMaker runtime/API, ECR, logs, STS)
  with private DNS and account-scoped policies, the S3 gateway endpoint, a Route 53 Resolver inbound endpoint.

``addressing`` and ``tunnel_crypto`` are pure (no Pulumi): stack-config validation imports them too.
Import the components from their modules; this package stays import-light on purpose.
"""
