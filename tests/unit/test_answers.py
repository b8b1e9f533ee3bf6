"""Kept answers: how long a decision stays right by time alone, and the cache that
serves an answer only at the revision and in the span of time it is right for (the
property that no decision changes before ``decided_until`` is in test_policy_access)."""

from datetime import datetime, timedelta

from jupyterhub_spaces.policy import Level, Subscription, SubscriptionStatus, Target, decided_until
from jupyterhub_spaces.service.answers import AnswerCache

NOW = datetime(2026, 6, 1, 12, 0)
HOUR = timedelta(hours=1)
P1 = Target("product", 1)


def sub(expires=None, status="active", level="full"):
    return Subscription("alice", P1, Level(level), SubscriptionStatus(status), expires)


def test_decided_until_is_the_first_expiry_ahead_of_an_active_subscription():
    assert decided_until([], NOW) is None
    assert decided_until([sub()], NOW) is None
    # already expired, revoked or only requested: time changes nothing about them
    assert decided_until([sub(NOW - HOUR), sub(NOW + HOUR, "revoked"), sub(NOW + HOUR, "requested")], NOW) is None
    assert decided_until([sub(NOW + 2 * HOUR), sub(NOW + HOUR, level="spaces"), sub()], NOW) == NOW + HOUR
    # expiring exactly now: already inactive
    assert decided_until([sub(NOW)], NOW) is None


# --- the cache ----------------------------------------------------------------------


def test_an_answer_is_served_only_at_its_revision():
    cache = AnswerCache()
    cache.put("k", 5, NOW, None, "five")
    assert cache.get("k", 5, NOW).text == "five"
    assert cache.get("k", 6, NOW) is None  # the catalog changed
    assert cache.get("k", 5, NOW) is None  # and the old answer is gone for good
    cache.put("k", 5, NOW, None, "late")  # built by a request that read the old revision
    assert cache.get("k", 6, NOW) is None and len(cache) == 0
    assert cache.get("k", None, NOW) is None  # no revision: nothing is kept
    cache.put("k", None, NOW, None, "x")
    assert len(cache) == 0


def test_an_answer_is_served_only_inside_its_span_of_time():
    cache = AnswerCache()
    cache.put("k", 1, NOW, NOW + HOUR, "text")
    assert cache.get("k", 1, NOW + HOUR - timedelta(microseconds=1)).text == "text"
    assert cache.get("k", 1, NOW - timedelta(seconds=1)) is None  # the clock went back
    cache.put("k", 1, NOW, NOW + HOUR, "text")
    assert cache.get("k", 1, NOW + HOUR) is None  # a subscription it counted expired


def test_the_cache_keeps_at_most_its_size_dropping_the_least_recently_used():
    cache = AnswerCache(max_chars=10)
    cache.put("a", 1, NOW, None, "aaaa")
    cache.put("b", 1, NOW, None, "bbbb")
    assert cache.get("a", 1, NOW).text == "aaaa"  # a is now the most recent
    cache.put("c", 1, NOW, None, "cccc")
    assert cache.get("b", 1, NOW) is None
    assert [cache.get(k, 1, NOW).text for k in "ac"] == ["aaaa", "cccc"]
    cache.put("d", 1, NOW, None, "d" * 11)  # larger than the whole cache: not kept
    assert cache.get("d", 1, NOW) is None and len(cache) == 2
