"""Admitting a start: the space a server name names, the user's decision in it, and
the refusal when the rules say no.

Asked for every start by the hub before it answers or records anything
(:mod:`jupyterhub_spaces.hub_gate`) and by the spawner itself. The data comes from the
one store (:func:`jupyterhub_spaces.store.load_space`, :func:`~jupyterhub_spaces.store.decide_spec`),
the judgement from :func:`jupyterhub_spaces.policy.start.start_refusal`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session

from . import orm, policy
from .policy.start import start_refusal
from .settings import SpacesSettings
from .store import Store, audit, decide_spec, load_space, space_spec

log = logging.getLogger(__name__)


class StartRefused(Exception):
    """A start the rules refuse: ``status``, a message for the user, audit ``detail``."""

    def __init__(self, status: int, message: str, **detail):
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail


@dataclass
class Admitted:
    """What a start was admitted with: the space's row, its policy view and the
    user's decision in it (each loaded once)."""

    space: orm.Space
    spec: policy.SpaceSpec
    decision: policy.Decision


def admit(
    db: Session,
    user_name: str,
    server_name: str,
    settings: SpacesSettings,
    spaces_app_url: str,
    space_id_option=None,
    refuse: bool = True,
    for_session: bool = False,
) -> Admitted | None:
    """The space a server named ``server_name`` of ``user_name`` would run and the
    user's decision in it; :class:`StartRefused` when the rules say no (with
    ``refuse`` off, as for stopping a session that runs already, None for a space that
    is gone and nothing refused). ``for_session`` loads the assets of the space's
    products too, which only a session needs."""
    space = load_space(db, policy.space_id_of(server_name), with_product_assets=for_session)
    spec = decision = None
    if space is not None:
        spec = space_spec(db, space)
        decision = decide_spec(db, [user_name], spec, lineage_enforced=settings.lineage_enforced)[user_name]
    if not refuse:
        return Admitted(space, spec, decision) if space is not None else None
    refusal = start_refusal(
        user_name,
        server_name,
        space.id if space is not None else None,
        space.display_name if space is not None else "",
        space.profile if space is not None else "",
        decision,
        settings.machine_profiles,
        spaces_app_url,
        space_id_option,
    )
    if refusal is not None:
        raise StartRefused(refusal.status, refusal.message, **refusal.detail)
    return Admitted(space, spec, decision)


def refusal_audit(store: Store, user_name: str, server_name: str, refused: StartRefused, via: str) -> None:
    """Record a refused start in the audit log (never failing the refusal itself)."""
    try:
        with store.transaction() as db:
            audit(db, user_name, "space.activate", "space", server_name, outcome="refused",
                  status=refused.status, reason=refused.message, via=via, **refused.detail)
    except Exception:
        log.exception("could not audit the refused start of %s/%s", user_name, server_name)
