"""What the API accepts as input, checked once for every endpoint.

- **JSON bodies** (:func:`parse_json_object`): at most :data:`MAX_BODY_BYTES`, nested at
  most :data:`MAX_DEPTH` deep, no lone surrogate anywhere (keys included), an object
  at the top. Anything else is a 400 (413 for size) that names the limit.
- **Fields** (:class:`Field`, :func:`check_fields`): the type, then the one text rule
  (:func:`text_problem`) for every string, the one range rule for every integer
  (:data:`MIN_INT`..:data:`MAX_INT`, what every integer column holds), then the
  field's own check. Problems are a 422 naming at most :data:`MAX_LISTED` fields, so
  a body with thousands of unknown keys gets a short answer.
- **Path ids and query integers** (:func:`parse_id`, :func:`parse_int`): plain ASCII
  digits only (no ``+``, ``_``, spaces or other scripts' digits), within range.

Everything here is plain Python: the handlers turn a :class:`InputError` into their
JSON error.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any

#: the largest request body read as JSON (bytes)
MAX_BODY_BYTES = 1024 * 1024
#: the deepest nesting of arrays and objects in a body
MAX_DEPTH = 16
#: the range of every integer in a request (32-bit columns on PostgreSQL)
MIN_INT = -(2**31)
MAX_INT = 2**31 - 1
#: the longest string field, unless a field says otherwise
MAX_TEXT = 200
#: how many field problems an error lists (the rest are counted)
MAX_LISTED = 10
#: how much of a caller's own text an error message quotes
QUOTE = 60

_DIGITS = re.compile(r"[0-9]{1,10}\Z")
_SIGNED = re.compile(r"-?[0-9]{1,10}\Z")
#: characters that show nothing on their own (zero-width, BOM, joiners, ...)
_INVISIBLE_CATEGORIES = {"Cf", "Zs", "Zl", "Zp", "Cc", "Mn", "Me"}


class InputError(Exception):
    """Input the API refuses: ``status`` (400, 413 or 422), a message, and for 422 the
    problem of each field."""

    def __init__(self, status: int, message: str, fields: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.fields = dict(fields) if fields else None


def quote(value: str) -> str:
    """A caller's text for an error message: repr'd and cut to :data:`QUOTE` chars."""
    text = value if len(value) <= QUOTE else value[:QUOTE] + "…"
    return repr(text.encode("utf-8", "backslashreplace").decode("utf-8"))


def shown(value: str) -> str:
    """A caller's name for a message: as it is when it is short plain text, else
    quoted (see :func:`quote`)."""
    return value if len(value) <= QUOTE and text_problem(value) is None else quote(value)


# ---------------------------------------------------------------------------
# text


def text_problem(
    value: str, *, multiline: bool = False, allow_empty: bool = False, max_length: int = MAX_TEXT
) -> str | None:
    """Why ``value`` is not acceptable text, or None.

    Refused: a lone surrogate, NUL and every other control character (``multiline``
    allows tab and line breaks), more than ``max_length`` characters, and a string with
    no visible character at all (only spaces, zero-width characters, byte order marks
    or combining marks). ``allow_empty`` accepts exactly ``""`` (to clear a field).
    """
    if value == "" and allow_empty:
        return None
    if len(value) > max_length:
        return f"at most {max_length} characters (got {len(value)})"
    allowed_controls = "\t\n\r" if multiline else ""
    visible = False
    for ch in value:
        if "\ud800" <= ch <= "\udfff":
            return "contains a lone surrogate (not valid Unicode text)"
        category = unicodedata.category(ch)
        if category == "Cc" and ch not in allowed_controls:
            return f"contains the control character U+{ord(ch):04X}: send plain text"
        if category not in _INVISIBLE_CATEGORIES:
            visible = True
    if not visible:
        return "has no visible character: send some text"
    return None


def _has_lone_surrogate(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# ---------------------------------------------------------------------------
# JSON bodies


def parse_json_object(raw: bytes, max_bytes: int = MAX_BODY_BYTES) -> dict:
    """The request body as a JSON object, within the limits above (else InputError);
    ``max_bytes`` is larger for an endpoint that takes uploads (Code Assets)."""
    if len(raw) > max_bytes:
        raise InputError(413, f"the request body is larger than {max_bytes} bytes: send less")
    if not raw or not raw.strip():
        raise InputError(400, "the request needs a JSON object body")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise InputError(400, f"the request body is nested deeper than {MAX_DEPTH} levels")
    except (ValueError, UnicodeDecodeError) as e:
        raise InputError(400, f"the request body is not valid JSON ({str(e)[:200]}): send a JSON object")
    if not isinstance(body, dict):
        raise InputError(400, f"the request body must be a JSON object, not {type(body).__name__}")
    _check_tree(body)
    return body


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _check_tree(body: Any) -> None:
    """Depth and lone surrogates, without recursion (a deep body must not overflow)."""
    stack = [(body, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise InputError(400, f"the request body is nested deeper than {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, item in value.items():
                if _has_lone_surrogate(key):
                    raise InputError(400, "the request body has a key with a lone surrogate: send valid Unicode")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)
        elif isinstance(value, str) and _has_lone_surrogate(value):
            raise InputError(400, "the request body has a string with a lone surrogate: send valid Unicode")


# ---------------------------------------------------------------------------
# fields


class Field:
    """One expected field of a JSON request body.

    ``kind`` is a python type (or tuple of types) the JSON value must have; ``item``
    the type of list items; ``check`` an optional callable returning an error message
    (or None) for a value of the right type; ``nullable`` allows ``null``. Every string
    (the value, or each item) passes :func:`text_problem` with ``multiline``,
    ``allow_empty`` and ``max_length``; every integer is within MIN_INT..MAX_INT
    (``minimum`` raises the floor, e.g. 1 for ids).
    """

    def __init__(
        self,
        kind: type | tuple[type, ...],
        required: bool = False,
        item: type | tuple[type, ...] | None = None,
        check: Callable[[Any], str | None] | None = None,
        nullable: bool = False,
        describe: str = "",
        multiline: bool = False,
        allow_empty: bool = False,
        max_length: int = MAX_TEXT,
        minimum: int = MIN_INT,
        max_items: int = 100,
    ):
        self.kind = kind
        self.required = required
        self.item = item
        self.check = check
        self.nullable = nullable
        self.describe = describe or _type_name(kind, item)
        self.multiline = multiline
        self.allow_empty = allow_empty
        self.max_length = max_length
        self.minimum = minimum
        self.max_items = max_items

    def problem(self, value: Any) -> str | None:
        """Why ``value`` does not fit this field, or None."""
        if value is None and self.nullable:
            return None
        if not _is_kind(value, self.kind):
            return f"must be {self.describe}"
        values = [value]
        if self.item is not None:
            if len(value) > self.max_items:
                return f"at most {self.max_items} items"
            if not all(_is_kind(v, self.item) for v in value):
                return f"must be {self.describe}"
            values = value
        for v in values:
            problem = self._scalar_problem(v)
            if problem:
                return problem
        if self.check is not None:
            return self.check(value)
        return None

    def _scalar_problem(self, v: Any) -> str | None:
        if isinstance(v, str):
            return text_problem(
                v, multiline=self.multiline, allow_empty=self.allow_empty, max_length=self.max_length
            )
        if isinstance(v, int) and not isinstance(v, bool):
            if not self.minimum <= v <= MAX_INT:
                return f"must be a whole number from {self.minimum} to {MAX_INT}"
        if isinstance(v, float) and not abs(v) <= MAX_INT:
            return f"must be a number from {MIN_INT} to {MAX_INT}"
        return None


def _type_name(kind, item=None) -> str:
    names = {str: "a string", int: "a whole number", bool: "true or false", list: "a list",
             dict: "an object", float: "a number"}
    kinds = kind if isinstance(kind, tuple) else (kind,)
    text = " or ".join(names.get(k, k.__name__) for k in kinds)
    if item is not None:
        text += " of " + _type_name(item).replace("a ", "", 1).replace("an ", "", 1) + "s"
    return text


def _is_kind(value, kind) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        return False  # JSON true is not a number
    if isinstance(value, int) and not isinstance(value, bool) and float in kinds:
        return True
    return isinstance(value, kinds)


def check_fields(body: Mapping[str, Any], fields: Mapping[str, Field]) -> dict[str, Any]:
    """The known fields of ``body``, or an :class:`InputError` 422 naming the problems
    (at most :data:`MAX_LISTED`; unknown fields are refused, so a misspelled name is
    reported instead of silently ignored)."""
    errors: dict[str, str] = {}
    unknown = [name for name in body if name not in fields]
    for name in unknown[:MAX_LISTED]:
        errors[_field_key(name)] = f"unknown field: expected {', '.join(sorted(fields))}"
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in body:
            if field.required:
                errors[name] = f"required: send {field.describe}"
            continue
        problem = field.problem(body[name])
        if problem:
            errors[name] = problem
        else:
            values[name] = body[name]
    if errors:
        raise field_error(errors, extra=max(0, len(unknown) - MAX_LISTED))
    return values


def _field_key(name: str) -> str:
    return shown(name)


def field_error(errors: Mapping[str, str], extra: int = 0, prefix: str = "the request body has invalid fields") -> InputError:
    """A 422 listing at most :data:`MAX_LISTED` of ``errors`` (``extra`` more exist)."""
    listed = dict(list(errors.items())[:MAX_LISTED])
    extra += len(errors) - len(listed)
    summary = "; ".join(f"{name}: {msg}" for name, msg in listed.items())
    if extra:
        summary += f"; and {extra} more"
    return InputError(422, f"{prefix}: {summary}", listed)


# ---------------------------------------------------------------------------
# path ids and query integers


def parse_id(raw: str) -> int | None:
    """A row id from a URL path: ASCII digits, 1..MAX_INT; else None (no such row)."""
    if not _DIGITS.match(raw):
        return None
    value = int(raw)
    return value if 1 <= value <= MAX_INT else None


def parse_int(raw: str, lo: int, hi: int) -> int | None:
    """An integer query argument within lo..hi (ASCII digits, optional minus), or None."""
    if not _SIGNED.match(raw):
        return None
    value = int(raw)
    return value if lo <= value <= hi else None
