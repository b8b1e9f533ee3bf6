"""What does deciding a start before the hub answers cost?

In one run, two real hubs with LocalSpaceSpawner, both answering starts at once
(``slow_spawn_timeout = 0``, the shipped setting):

(a) without the gate (the spawner alone decides, after the answer);
(b) with the gate (``named_server_limit_per_user = space_server_gate``, as shipped).

Alternating a and b, ``--rounds`` times each (default 5), it measures

- **answer**: POST /activate through the spaces service until its answer;
- **first event**: POST /activate until the first event of the progress stream (what
  the Spaces app shows first);
- **refusal**: a locked start (carol, straight to the hub API) until its answer, and
  which status it got (a: 202 and a failure later; b: the 403).

Prints each round, the medians and the ratios b/a.

    python bench/start_answer.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from spaces_hub import API, SpacesHub  # noqa: E402
from test_activation import space_id, start_space_hub, suspend_all  # noqa: E402

TIMEOUT_0 = '\nc.JupyterHub.tornado_settings = {"slow_spawn_timeout": 0}\n'
GATE = TIMEOUT_0 + (
    "from jupyterhub_spaces.hub_gate import space_server_gate\n"
    "c.JupyterHub.named_server_limit_per_user = space_server_gate\n"
)
SPACE = "store-footprint"


def one_round(hub: SpacesHub, sid: int, locked: int) -> tuple[float, float, float, int]:
    alice, carol = hub.token_session("alice"), hub.token_session("carol")
    t0 = time.perf_counter()
    r = alice.post(f"{API}spaces/{sid}/activate")
    answer = time.perf_counter() - t0
    assert r.status_code in (200, 202), r.text
    with alice.get(f"{API}spaces/{sid}/progress", stream=True, timeout=240) as events:
        for line in events.iter_lines(decode_unicode=True):
            if line and line.startswith("data:"):
                first = time.perf_counter() - t0
                break
        for _ in events.iter_lines():
            pass  # to the end of the spawn
    t1 = time.perf_counter()
    refused = carol.post("/hub/api/users/carol/servers/retail-forecasting", json={})
    refusal = time.perf_counter() - t1
    suspend_all(hub, "alice")
    suspend_all(hub, "carol")
    hub.hub_api("DELETE", "/users/carol/servers/retail-forecasting", json={"remove": True})
    return answer, first, refusal, refused.status_code


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="spaces-bench-"))
    hubs = []
    try:
        for name in ("a", "b"):
            (root / name).mkdir()
        plain = start_space_hub(root / "a", TIMEOUT_0)
        hubs.append(plain)
        gated = start_space_hub(root / "b", GATE)
        hubs.append(gated)
        ids = {h: (space_id(h, SPACE), space_id(h, "retail-forecasting")) for h in hubs}
        for h in hubs:  # untimed: first imports and caches
            one_round(h, *ids[h])
        results = {plain: [], gated: []}
        for i in range(args.rounds):
            for label, h in (("a", plain), ("b", gated)):
                results[h].append(one_round(h, *ids[h]))
                answer, first, refusal, status = results[h][-1]
                print(f"round {i + 1} {label}: answer {answer * 1000:7.1f} ms  first event {first * 1000:7.1f} ms  "
                      f"refusal {refusal * 1000:6.1f} ms ({status})", flush=True)
        med = {h: [statistics.median(r[k] for r in results[h]) for k in range(3)] for h in hubs}
        for label, h in (("a (spawner only)", plain), ("b (gate)        ", gated)):
            m = med[h]
            statuses = sorted({r[3] for r in results[h]})
            print(f"median {label}: answer {m[0] * 1000:.1f} ms, first event {m[1] * 1000:.1f} ms, "
                  f"locked start answered {statuses} in {m[2] * 1000:.1f} ms")
        names = ("answer", "first event", "refusal")
        print("ratios b/a: " + ", ".join(f"{n} {med[gated][k] / med[plain][k]:.2f}" for k, n in enumerate(names)))
    finally:
        for h in hubs:
            h.stop()
            h.store.dispose()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
