"""The ``lastmile:onprem`` section: cluster access, namespace, model store, ingress.

Owned by the on-prem topology; secrets (kubeconfig, TLS key) are separate top-level secret keys
read by the loader with get_secret (see loader.SECRET_KEYS), never plaintext here.
"""

from __future__ import annotations

from pydantic import Field

from infra.settings.common import Problem, Strict


class OnpremSettings(Strict):
    namespace: str = Field(default="lastmile-serving", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


# (rule, sections it reads): see infra/settings/rules.py.
ONPREM_RULES: list = []
