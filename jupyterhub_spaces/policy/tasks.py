"""May a Task run now? Asked before every run, not only when the task is saved.

A Task runs as its owner: the owner's access decision on the space decides, at the
moment of the run, exactly as it would decide an activation. A locked owner's run is
refused with the missing subscriptions; a sandbox-level owner's run goes ahead with the
sandbox's limits (its database grants are the role's: the Asset database is read-only
for everyone, so a run writes only Collaborative and Publish).
"""

from __future__ import annotations

from dataclasses import dataclass

from .model import Decision, Missing, Mode
from .roles import allowed

#: what a task owner must be allowed in the space for the task to run
RUN_ACTION = "edit"


@dataclass(frozen=True)
class RunVerdict:
    """The answer before one run: ``allowed``, and else why not (``reason``, with
    ``missing`` subscriptions when the owner is locked)."""

    allowed: bool
    reason: str
    mode: Mode
    missing: tuple[Missing, ...] = ()


def may_run(decision: Decision, paused: bool = False, paused_reason: str = "") -> RunVerdict:
    """The verdict for a run of a task whose owner's decision on its space is
    ``decision``."""
    if decision.mode == Mode.not_member:
        return RunVerdict(False, f"the task's owner {decision.user} is no longer a member of the space", decision.mode)
    if paused:
        return RunVerdict(False, "the task is paused" + (f": {paused_reason}" if paused_reason else ""), decision.mode)
    if not allowed(decision.role, RUN_ACTION):
        return RunVerdict(
            False,
            f"the task's owner {decision.user} is now {decision.role.value} of the space: "
            "only owners and editors run tasks",
            decision.mode,
        )
    if not decision.can_activate:
        return RunVerdict(False, f"the task's owner {decision.user} is {decision.reason}", decision.mode, decision.missing)
    return RunVerdict(True, decision.reason, decision.mode)
