"""The audit log: every governance decision and change, newest first (admins only).

Filters: ``?actor=``, ``?action=`` (exact, or a prefix ending in ``.`` such as
``subscription.``), ``?outcome=`` (``ok`` or ``refused``), ``?target_type=`` and
``?target_id=``.
"""

from __future__ import annotations

from sqlalchemy import select

from ... import orm
from ..base import APIHandler
from ..models import audit_model


class AuditHandler(APIHandler):
    """``GET /api/v1/audit``"""

    async def get(self):
        # admins only
        self.require_admin("audit.read", "read the audit log")
        query = select(orm.AuditEvent).order_by(orm.AuditEvent.id.desc())
        for name in ("actor", "outcome", "target_type", "target_id"):
            value = self.text_argument(name)
            if value is not None:
                query = query.where(getattr(orm.AuditEvent, name) == value)
        action = self.text_argument("action")
        if action:
            if action.endswith("."):
                query = query.where(orm.AuditEvent.action.startswith(action, autoescape=True))
            else:
                query = query.where(orm.AuditEvent.action == action)
        self.paginate(query, audit_model)


default_handlers = [
    (r"api/v1/audit", AuditHandler),
]
