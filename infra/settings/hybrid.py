"""The ``lastmile:hybrid`` section: the cloud network, the site-to-site VPN and the traffic policy.

Owned by the hybrid topology.
"""

from __future__ import annotations

from infra.settings.common import Strict


class HybridSettings(Strict):
    """Placeholder until the hybrid topology defines its fields."""


# (rule, sections it reads): see infra/settings/rules.py.
HYBRID_RULES: list = []
