"""The governance rules of jupyterhub-spaces as pure functions.

Plain data in, decisions out: this package imports no web framework, database or
Kubernetes library (a test checks), so every rule can be tested table-driven.
"""

from .access import Requirement, decide, decided_until, lineage_sources, requirements
from .model import (
    TOOLS,
    AssetRef,
    Decision,
    Level,
    Missing,
    Mode,
    Role,
    SpaceSpec,
    Subscription,
    SubscriptionStatus,
    Target,
    subscription_active,
    subscription_expired,
)
from .roles import allowed
from .slugs import is_safe_slug, server_name, slugify, space_id_of
from .tasks import RunVerdict, may_run
from .spec import one_active_conflict, over_space_limit, validate_profile, validate_role, validate_spec
from .visibility import org_can_see, visible_orgs

__all__ = [
    "TOOLS",
    "AssetRef",
    "Decision",
    "Level",
    "Missing",
    "Mode",
    "Requirement",
    "Role",
    "RunVerdict",
    "SpaceSpec",
    "Subscription",
    "SubscriptionStatus",
    "Target",
    "allowed",
    "decide",
    "decided_until",
    "is_safe_slug",
    "lineage_sources",
    "may_run",
    "one_active_conflict",
    "org_can_see",
    "over_space_limit",
    "requirements",
    "server_name",
    "slugify",
    "space_id_of",
    "subscription_active",
    "subscription_expired",
    "validate_profile",
    "validate_role",
    "validate_spec",
    "visible_orgs",
]
