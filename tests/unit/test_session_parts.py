"""Session parts run in order at start, in reverse at stop, and a failing part
leaves nothing started behind."""

import pytest

from jupyterhub_spaces import policy
from jupyterhub_spaces.session import (
    SessionContext,
    SessionPartError,
    load_part,
    start_parts,
    stop_parts,
)
from jupyterhub_spaces.settings import SpacesSettings


class Recorder:
    def __init__(self, name, log, fail=False):
        self.name, self.log, self.fail = name, log, fail

    async def start(self, ctx):
        if self.fail:
            raise SessionPartError(f"{self.name} cannot start")
        self.log.append(("start", self.name))
        return {f"{self.name.upper()}_READY": 1}

    async def stop(self, ctx):
        self.log.append(("stop", self.name))


def make_ctx():
    spec = policy.SpaceSpec(id=1, owner="alice")
    decision = policy.Decision("alice", 1, policy.Mode.workbench, policy.Role.owner)
    return SessionContext("alice", 1, "s", "S", spec, decision, SpacesSettings())


async def test_parts_start_in_order_and_stop_in_reverse():
    log = []
    parts = [Recorder("a", log), Recorder("b", log)]
    ctx = make_ctx()
    env = await start_parts(ctx, parts)
    assert env == {"A_READY": "1", "B_READY": "1"}
    await stop_parts(ctx, parts)
    assert log == [("start", "a"), ("start", "b"), ("stop", "b"), ("stop", "a")]


async def test_failing_part_stops_the_started_ones():
    log = []
    parts = [Recorder("a", log), Recorder("b", log, fail=True), Recorder("c", log)]
    with pytest.raises(SessionPartError, match="b cannot start"):
        await start_parts(make_ctx(), parts)
    assert log == [("start", "a"), ("stop", "a")]


def test_load_part_rejects_objects_without_the_protocol():
    with pytest.raises(TypeError):
        load_part("jupyterhub_spaces.session:log")
    with pytest.raises(ValueError):
        load_part("jupyterhub_spaces.session")
