"""Answers of the busiest read endpoints, kept in memory and exact.

My spaces and a space's access are read on every page view of the Spaces app and of
the JupyterLab panel, and change only when the catalog changes or a subscription
expires. An answer is kept with

- the **catalog revision** it was built at (:func:`jupyterhub_spaces.store.catalog_revision`,
  read in the same transaction before the data): every committed write to a table
  answers are built from raises the revision in its own transaction (database
  triggers, alembic revision 0007), so a request that reads another revision never
  gets it, in this process or any other on the same database;
- the **time** it was decided at and the first expiry after that of a subscription it
  counted (:func:`jupyterhub_spaces.policy.decided_until`): a request at a time
  outside that span never gets it.

Nothing else invalidates an answer and nothing else needs to: an answer is a pure
function of the catalog rows, the time and the service's settings (the key holds
those that vary). The cache holds at most ``max_chars`` characters of answers and
drops the least recently used first; seeing a newer revision drops everything older.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Hashable

#: the default bound on what the cache holds (characters of JSON, about bytes)
MAX_CHARS = 64 * 1024 * 1024


@dataclass(frozen=True)
class Answer:
    revision: int
    decided_at: datetime
    until: datetime | None
    text: str
    extra: object = None


class AnswerCache:
    """Answers by key, each valid at one catalog revision over one span of time.
    Thread-safe: the service's database threads read and fill it."""

    def __init__(self, max_chars: int = MAX_CHARS):
        self.max_chars = max_chars
        self._answers: OrderedDict[Hashable, Answer] = OrderedDict()
        self._chars = 0
        self._revision = 0  # the newest revision seen; older answers are gone
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _see(self, revision: int) -> bool:
        """Note ``revision``; False when it is older than one already seen (a request
        that read it must not use or store answers: newer ones exist)."""
        if revision > self._revision:
            self._answers.clear()
            self._chars = 0
            self._revision = revision
        return revision == self._revision

    def get(self, key: Hashable, revision: int | None, now: datetime) -> Answer | None:
        """The answer for ``key`` if it was built at ``revision`` and is right at ``now``."""
        with self._lock:
            answer = None
            if revision is not None and self._see(revision):
                answer = self._answers.get(key)
                if answer is not None and not (
                    answer.decided_at <= now and (answer.until is None or now < answer.until)
                ):
                    self._drop(key)
                    answer = None
            if answer is None:
                self.misses += 1
                return None
            self._answers.move_to_end(key)
            self.hits += 1
            return answer

    def put(
        self, key: Hashable, revision: int | None, decided_at: datetime, until: datetime | None,
        text: str, extra: object = None,
    ) -> None:
        """Keep ``text`` (and ``extra``) for ``key``: built at ``revision`` from data read
        after it, decided at ``decided_at``, right until ``until`` (None: no expiry ahead)."""
        if revision is None:
            return
        with self._lock:
            if not self._see(revision) or len(text) > self.max_chars:
                return
            self._drop(key)
            self._answers[key] = Answer(revision, decided_at, until, text, extra)
            self._chars += len(text)
            while self._chars > self.max_chars:
                self._drop(next(iter(self._answers)))

    def _drop(self, key: Hashable) -> None:
        answer = self._answers.pop(key, None)
        if answer is not None:
            self._chars -= len(answer.text)

    def __len__(self) -> int:
        return len(self._answers)
