"""TlsIngress: the only way in from outside the cluster, and it is HTTPS.

There is no plain-HTTP variant to ask for: the certificate and key (secret Outputs) are required
fields; they become an immutable ``kubernetes.io/tls`` Secret (a rotation creates a new Secret and
repoints the Ingress), and the Ingress always carries a ``tls`` section for its one host. Plain HTTP
is shut off per controller: ingress-nginx answers HTTP only with a permanent redirect to HTTPS
(force-ssl-redirect; HSTS is the controller's default); Traefik binds the router to its ``websecure`` entrypoint only, so no
HTTP router exists at all. TLS ends at the controller; inside the namespace the NetworkPolicy admits
only the controller's traffic to the serving port.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.common import DNS_LABEL, base_labels, check_dns_label
from components.problems import Problem, raise_problems

DNS_NAME_PART = DNS_LABEL


class IngressController(StrEnum):
    NGINX = "nginx"
    TRAEFIK = "traefik"


HTTPS_ONLY_ANNOTATIONS: dict[IngressController, dict[str, str]] = {
    IngressController.NGINX: {
        "nginx.ingress.kubernetes.io/force-ssl-redirect": "true",
        "nginx.ingress.kubernetes.io/ssl-redirect": "true",
        "nginx.ingress.kubernetes.io/backend-protocol": "HTTP",
    },
    IngressController.TRAEFIK: {
        "traefik.ingress.kubernetes.io/router.entrypoints": "websecure",
        "traefik.ingress.kubernetes.io/router.tls": "true",
    },
}


@dataclass(frozen=True, kw_only=True)
class TlsIngressArgs:
    namespace: pulumi.Input[str]
    host: str
    class_name: str
    controller: IngressController
    service_name: pulumi.Input[str]
    service_port: int
    tls_certificate_pem: pulumi.Input[str]
    """Secret Output: PEM certificate chain covering ``host``."""
    tls_private_key_pem: pulumi.Input[str]
    """Secret Output: PEM private key of that certificate."""
    wait_for_address: bool = True
    """`pulumi up` waits until the controller publishes the Ingress's address (.status.loadBalancer).
    False for controllers that never publish one (NodePort or hostNetwork setups) and for clusters
    without a controller, where the wait could only time out; the Ingress is still created and checked."""

    def __post_init__(self) -> None:
        problems = check_dns_label("class_name", self.class_name)
        if len(self.host) > 253 or not all(DNS_NAME_PART.match(part) for part in self.host.split(".")):
            problems.append(Problem("host", self.host, "must be a DNS name", "use e.g. iris.example.internal"))
        problems += [Problem(name, None, "TLS is required", "pass tls_certificate_pem and tls_private_key_pem")
                     for name in ("tls_certificate_pem", "tls_private_key_pem") if getattr(self, name) is None]
        raise_problems("TlsIngressArgs", problems)


class TlsIngress(pulumi.ComponentResource):
    """HTTPS-only Ingress to one Service, with its certificate in an immutable TLS Secret."""

    url: str

    def __init__(self, name: str, args: TlsIngressArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:k8s:TlsIngress", name, None, opts)
        labels = base_labels("lastmile-ingress", "ingress")
        certificate = k8s.core.v1.Secret(
            f"{name}-tls",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            type="kubernetes.io/tls",
            immutable=True,
            string_data={
                "tls.crt": pulumi.Output.secret(args.tls_certificate_pem),
                "tls.key": pulumi.Output.secret(args.tls_private_key_pem),
            },
            opts=pulumi.ResourceOptions(parent=self),
        )
        annotations = dict(HTTPS_ONLY_ANNOTATIONS[args.controller])
        if not args.wait_for_address:
            annotations["pulumi.com/skipAwait"] = "true"
        k8s.networking.v1.Ingress(
            f"{name}-ingress",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels, annotations=annotations),
            spec=k8s.networking.v1.IngressSpecArgs(
                ingress_class_name=args.class_name,
                tls=[k8s.networking.v1.IngressTLSArgs(hosts=[args.host], secret_name=certificate.metadata.name)],
                rules=[k8s.networking.v1.IngressRuleArgs(
                    host=args.host,
                    http=k8s.networking.v1.HTTPIngressRuleValueArgs(paths=[k8s.networking.v1.HTTPIngressPathArgs(
                        path="/v2",
                        path_type="Prefix",
                        backend=k8s.networking.v1.IngressBackendArgs(service=k8s.networking.v1.IngressServiceBackendArgs(
                            name=args.service_name,
                            port=k8s.networking.v1.ServiceBackendPortArgs(number=args.service_port),
                        )),
                    )]),
                )],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.url = f"https://{args.host}/v2"
        self.register_outputs({"url": self.url})
