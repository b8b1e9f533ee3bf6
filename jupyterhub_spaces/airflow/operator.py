"""The operator of every Task's DAG.

Before each attempt it asks the spaces service to start a run (``POST engine/runs``):
the service decides with the owner's access to the space at this moment, issues
database credentials for this run only and hands back the command, its working
directory and its whole environment. A refused run fails at once, without retries, its
reason in the log. The command runs in its own process group (never inside this
process: no user code is imported by Airflow) and is killed at the Task's timeout or
when Airflow kills the task; the end is reported (``POST engine/runs/<id>/finish``):
the service revokes the credentials and publishes the run's outputs.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections import deque

from airflow.sdk import BaseOperator

from . import client

#: how much of the output is sent to the service with the end of the run
LOG_TAIL = 256 * 1024
#: what the spaces API refuses in text: control characters but tab and line breaks
CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: seconds between sends of the output so far while a run runs
LOG_EVERY = 2.0


class RunRefused(Exception):
    """The spaces service refused the run (governance): no retry can help."""


class SpacesTaskOperator(BaseOperator):
    """Runs one attempt of a jupyterhub-spaces Task."""

    ui_color = "#e8f0fe"
    #: where the run's output and end are sent
    runs_path = "engine/runs"

    def __init__(self, *, spaces_task_id: int, **kwargs):
        super().__init__(**kwargs)
        self.spaces_task_id = int(spaces_task_id)
        self._proc: subprocess.Popen | None = None
        self._run_id: int | None = None

    def execute(self, context):
        from airflow.sdk.exceptions import AirflowFailException

        ti = context["ti"]
        try:
            start = client.call(
                "POST",
                "engine/runs",
                {
                    "task_id": self.spaces_task_id,
                    "engine_run_id": context["run_id"],
                    "try_number": int(getattr(ti, "try_number", 1) or 1),
                },
            )
        except client.SpacesAPIError as e:
            if e.status in (403, 404, 409):
                self.log.error("run refused by jupyterhub-spaces: %s", e.message)
                raise AirflowFailException(f"run refused: {e.message}") from None
            raise
        self._run_id = start["run_id"]
        self.log.info("run %s of task %s starts: %s", self._run_id, self.spaces_task_id, start.get("summary", ""))
        returncode, output, state = self._run(start)
        reply = client.call(
            "POST",
            f"engine/runs/{self._run_id}/finish",
            {"returncode": returncode, "log": output, "state": state},
        )
        self._run_id = None
        if reply.get("state") != "success":
            raise RuntimeError(f"the task's run {reply.get('state')}: {reply.get('reason', '')}")
        return {"run_id": start["run_id"], "published": reply.get("published", [])}

    def _run(self, start: dict) -> tuple[int | None, str, str]:
        tail: deque[str] = deque()
        size = 0
        self._proc = subprocess.Popen(
            start["argv"],
            cwd=start["cwd"],
            env=start["env"],  # exactly the run's environment: nothing of Airflow's
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            text=True,
            errors="replace",
        )

        def pump():
            nonlocal size
            for raw in self._proc.stdout:
                # plain text only (colour codes and other control characters dropped)
                line = CONTROL.sub("", raw)
                self.log.info("| %s", line.rstrip("\n"))
                tail.append(line)
                size += len(line)
                while size > LOG_TAIL and len(tail) > 1:
                    size -= len(tail.popleft())

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        state = "success"
        deadline = time.monotonic() + start["timeout_seconds"]
        sent = 0
        while True:
            try:
                returncode = self._proc.wait(timeout=max(0.0, min(LOG_EVERY, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() >= deadline:
                self._kill()
                returncode = self._proc.wait()
                state = "failed"
                tail.append(f"\n[timed out after {start['timeout_seconds']} s: the run was stopped]\n")
                break
            if size != sent:
                # the output so far, for whoever follows the run in the Spaces API
                sent = size
                try:
                    client.call("POST", f"{self.runs_path}/{self._run_id}/log", {"log": "".join(tail)})
                except Exception:
                    self.log.warning("could not send the output so far to the spaces service")
        reader.join(10)
        if returncode != 0:
            state = "failed"
        return returncode, "".join(tail), state

    def _kill(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def on_kill(self) -> None:
        # cancelled in Airflow (or its own timeout): stop the run, report it
        self._kill()
        if self._run_id is not None:
            try:
                client.call("POST", f"{self.runs_path}/{self._run_id}/finish",
                            {"returncode": None, "log": "", "state": "cancelled"})
            except Exception:
                self.log.exception("could not report the end of run %s", self._run_id)
