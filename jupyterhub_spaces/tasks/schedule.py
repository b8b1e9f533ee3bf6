"""Checks of a Task's settings, each returning an error message or None, so the API
answers bad input with the field and what to send instead."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from croniter import croniter

from ..service.inputs import text_problem

#: Airflow's named schedules, which are cron expressions too
PRESETS = {"@hourly", "@daily", "@weekly", "@monthly", "@yearly"}
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")


def check_cron(value: str) -> str | None:
    if value in PRESETS:
        return None
    fields = value.split()
    if len(fields) != 5:
        return (
            f"{value!r} is not a cron expression: give five fields "
            "(minute hour day-of-month month day-of-week, e.g. '30 2 * * *'), "
            f"or one of {sorted(PRESETS)}; null runs on demand only"
        )
    if not croniter.is_valid(value):
        return f"{value!r} is not a valid cron expression: check each field's range (e.g. minute 0-59, hour 0-23)"
    return None


def check_timezone(value: str) -> str | None:
    if value not in _zones():
        return f"unknown time zone {value[:80]!r}: give an IANA name such as 'UTC' or 'Europe/Paris'"
    return None


@lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones()) | {"UTC"}


def check_parameters(value: dict) -> str | None:
    if len(value) > 100:
        return "at most 100 parameters"
    for name, v in value.items():
        if not _PARAM_NAME.match(name):
            return f"parameter name {name!r} must be a Python identifier"
        if not isinstance(v, (str, int, float, bool)):
            return f"parameter {name!r} must be a string, number or true/false"
        if isinstance(v, str):
            problem = text_problem(v, multiline=True, allow_empty=True, max_length=10000)
            if problem:
                return f"parameter {name!r}: {problem}"
    return None


def check_publish(value: list) -> str | None:
    if len(value) > 20:
        return "at most 20 tables to publish"
    for item in value:
        if not isinstance(item, dict) or set(item) - {"table", "name"} or not all(
            isinstance(item.get(k), str) and item.get(k).strip() for k in ("table", "name")
        ):
            return 'each item must be {"table": <Publish table>, "name": <derived asset name>}'
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", item["table"]):
            return f"table {item['table'][:80]!r} is not a table name"
        if len(item["name"]) > 200:
            return "a derived asset name has at most 200 characters"
    return None


def next_run(schedule: str | None, tz: str, now: datetime) -> datetime | None:
    """When a cron ``schedule`` in time zone ``tz`` next fires after ``now`` (naive
    UTC, as stored), in UTC with its zone; None for a task run on demand only."""
    if not schedule or check_cron(schedule) or check_timezone(tz):
        return None
    local = now.replace(tzinfo=timezone.utc).astimezone(ZoneInfo(tz))
    return croniter(schedule, local).get_next(datetime).astimezone(timezone.utc)


__all__ = ["PRESETS", "check_cron", "next_run", "check_parameters", "check_publish", "check_timezone"]
