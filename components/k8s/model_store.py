"""ModelStoreAccess: how pods in the serving namespace reach the on-prem S3-compatible model store.

- The read-only key (a secret Output, JSON ``{"access_key_id", "secret_access_key"}``) becomes an
  immutable Secret, mounted as a file into the artifact-fetching init container only (never into the
  server, never as environment variables). A rotation creates a new Secret (new auto-generated name)
  and rolls the model servers onto it.
- The endpoint is https only; the store's CA bundle, when given, becomes an immutable ConfigMap the
  fetcher verifies the store's certificate with. Omitted: the serving image's system trust store.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.k8s.common import base_labels
from components.problems import Problem, raise_problems

HTTPS_ENDPOINT = re.compile(r"^https://[a-z0-9.-]+(:\d{1,5})?/?$")
CREDENTIALS_KEY = "credentials.json"
CA_BUNDLE_KEY = "ca.crt"


@dataclass(frozen=True, kw_only=True)
class ModelStoreAccessArgs:
    namespace: pulumi.Input[str]
    endpoint_url: str
    """https://host[:port] of the S3-compatible store (path-style addressing)."""
    bucket: str
    region: str
    credentials_json: pulumi.Input[str]
    """Secret Output: JSON with access_key_id and secret_access_key of a read-only key."""
    key_prefix: str = ""
    """Object keys are <key_prefix><model>/<version>/model.tar.gz. Omitted: no prefix."""
    ca_bundle_pem: str | None = None
    """PEM CA bundle of the store's certificate. Omitted: the serving image's system trust store."""

    def __post_init__(self) -> None:
        problems = []
        if not HTTPS_ENDPOINT.match(self.endpoint_url):
            problems.append(Problem("endpoint_url", self.endpoint_url, "must be https://host[:port]",
                                    "use the store's https URL without a path"))
        if self.key_prefix and not self.key_prefix.endswith("/"):
            problems.append(Problem("key_prefix", self.key_prefix, "must end with '/'", "append '/'"))
        if self.ca_bundle_pem is not None and "-----BEGIN CERTIFICATE-----" not in self.ca_bundle_pem:
            problems.append(Problem("ca_bundle_pem", self.ca_bundle_pem, "must hold PEM certificates",
                                    "pass the PEM text of the CA bundle, or omit it"))
        raise_problems("ModelStoreAccessArgs", problems)


class ModelStoreAccess(pulumi.ComponentResource):
    """The model store's read-only key and CA bundle inside the serving namespace."""

    credentials_secret_name: pulumi.Output[str]
    ca_bundle_config_map_name: pulumi.Output[str] | None

    def __init__(self, name: str, args: ModelStoreAccessArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("lastmile:k8s:ModelStoreAccess", name, None, opts)
        self.args = args
        labels = base_labels("lastmile-model-store", "model-store-access")
        secret = k8s.core.v1.Secret(
            f"{name}-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
            type="Opaque",
            immutable=True,
            string_data={CREDENTIALS_KEY: pulumi.Output.secret(args.credentials_json)},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.credentials_secret_name = secret.metadata.name
        self.ca_bundle_config_map_name = None
        if args.ca_bundle_pem is not None:
            bundle = k8s.core.v1.ConfigMap(
                f"{name}-ca",
                metadata=k8s.meta.v1.ObjectMetaArgs(namespace=args.namespace, labels=labels),
                immutable=True,
                data={CA_BUNDLE_KEY: args.ca_bundle_pem},
                opts=pulumi.ResourceOptions(parent=self),
            )
            self.ca_bundle_config_map_name = bundle.metadata.name
        self.register_outputs({"credentials_secret_name": self.credentials_secret_name})

    def artifact_key(self, model: str, version: str) -> str:
        return f"{self.args.key_prefix}{model}/{version}/model.tar.gz"
