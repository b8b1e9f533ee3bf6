"""The OpenAPI document is the truth: schemathesis generates requests from the served
document and sends them to the live service through the real hub and proxy, for every
operation, as a member (alice) and as an admin, on SQLite and PostgreSQL.

Checks: no 5xx, every status code and content type documented, every JSON body as its
schema says, and every event of the progress stream a ProgressEvent. Examples are
bounded and derandomized (a fixed seed), so a run is deterministic and short.

Reads run on the demo catalog; operations that change things run on a hub with a
catalog of their own (they create, change and delete spaces, start and stop sessions).
Path ids are drawn from the demo's small ids (and usernames from the demo's) so most
requests reach real rows; the out-of-range ids, hostile text and huge bodies the
document also allows are in test_api.py's hostile-input tests.
"""

from __future__ import annotations

import copy
import json

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from jsonschema import Draft202012Validator
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from spaces_hub import PREFIX, USERS, postgres_available, postgres_database
from test_activation import start_space_hub, suspend_all
from test_hub_api import SHIPPED

from jupyterhub_spaces.service.openapi import document

pytestmark = pytest.mark.slow

EXAMPLES = 12
SMALL_ID = {"type": "integer", "minimum": 1, "maximum": 12}


def fuzz_document() -> dict:
    """The served document, with path ids and member names drawn from the demo's."""
    doc = copy.deepcopy(document(PREFIX))
    for item in doc["paths"].values():
        for param in item.get("parameters", []):
            if param["in"] == "path":
                param["schema"] = SMALL_ID if param["schema"].get("type") == "integer" else {
                    "type": "string", "enum": list(USERS)}
    return doc


SCHEMA = schemathesis.openapi.from_dict(fuzz_document())
READS = SCHEMA.include(method="GET")
WRITES = SCHEMA.exclude(method="GET")

COMPONENTS = document(PREFIX)["components"]
EVENT = Draft202012Validator({"$ref": "#/components/schemas/ProgressEvent", "components": COMPONENTS})


def progress_events_conform(ctx, response, case):
    """Each ``data:`` line of the progress stream is a ProgressEvent, and the stream
    ends with one that is ready or failed."""
    if not case.path.endswith("/progress") or response.status_code != 200:
        return None
    events = [json.loads(line[len("data:"):]) for line in response.text.splitlines() if line.startswith("data:")]
    assert events, f"an event stream without events: {response.text[:300]!r}"
    for event in events:
        errors = sorted(EVENT.iter_errors(event), key=str)
        assert not errors, f"progress event {event} does not match ProgressEvent: {errors[0].message}"
    assert events[-1].get("ready") or events[-1].get("failed"), events[-1]
    return True


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, progress_events_conform]

FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,  # the fixed seed: the same requests on every run
    deadline=None,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def start_fuzz_hub(tmp_path_factory, db_kind: str, name: str):
    if db_kind == "postgresql":
        if not postgres_available():
            pytest.skip("no PostgreSQL server answers at $SPACES_TEST_POSTGRES_URL")
        databases = postgres_database(f"spaces_fuzz_{name}")
        url = databases.__enter__()
    else:
        databases, url = None, None
    h = start_space_hub(tmp_path_factory.mktemp(f"fuzz-{name}"), SHIPPED, db_url=url)
    h.clients_by_name = {who: h.token_session(who) for who in ("alice", "admin")}
    return h, databases


def stop_fuzz_hub(h, databases):
    for user in ("alice", "admin"):
        suspend_all(h, user)
    h.stop()
    h.store.dispose()
    if databases is not None:
        databases.__exit__(None, None, None)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_kind(request):
    return request.param


@pytest.fixture(scope="module")
def reads_hub(tmp_path_factory, db_kind):
    h, databases = start_fuzz_hub(tmp_path_factory, db_kind, "reads")
    yield h
    stop_fuzz_hub(h, databases)


@pytest.fixture(scope="module")
def writes_hub(tmp_path_factory, db_kind):
    h, databases = start_fuzz_hub(tmp_path_factory, db_kind, "writes")
    yield h
    stop_fuzz_hub(h, databases)


@pytest.fixture(params=["alice", "admin"])
def who(request):
    return request.param


def call(h, who, case):
    session = h.clients_by_name[who]
    case.call_and_validate(base_url=h.url + PREFIX.rstrip("/"), session=session, checks=CHECKS, timeout=60)


@READS.parametrize()
@FUZZ
def test_reads_conform(reads_hub, who, case):
    call(reads_hub, who, case)


@WRITES.parametrize()
@FUZZ
def test_writes_conform(writes_hub, who, case):
    call(writes_hub, who, case)
