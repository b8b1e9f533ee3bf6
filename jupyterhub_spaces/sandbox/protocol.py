"""The Guacamole wire format: encoding and incremental parsing of instructions.

An instruction is a list of elements (the opcode first, then its arguments). Each
element is written ``LENGTH.VALUE`` where LENGTH is the number of Unicode code points
of VALUE (not bytes, not UTF-16 units); elements are joined by ``,`` and the
instruction ends with ``;``::

    4.size,1.0,4.1024,3.768;

This module is pure: it turns text into instructions and back, and knows nothing of
sockets. :class:`Parser` accepts data in arbitrary pieces (a read may end in the middle
of an element, or inside a multi-byte UTF-8 sequence) and keeps the raw text of every
instruction so a relay can forward it without encoding it again.
"""

from __future__ import annotations

import codecs
from typing import Callable

#: Largest instruction (in code points, all elements and separators) accepted by
#: default. guacd sends image data in blobs of a few KiB, so this leaves ample room
#: while bounding the memory one peer can make us hold.
DEFAULT_MAX_LENGTH = 256 * 1024
#: Most elements (opcode included) accepted in one instruction by default; guacd's
#: own limit is 128.
DEFAULT_MAX_ELEMENTS = 128
# A length prefix longer than this many digits cannot be a valid length anyway.
_MAX_LENGTH_DIGITS = 10


class ProtocolError(ValueError):
    """The peer sent something that is not a valid Guacamole instruction."""


class Instruction:
    """One parsed instruction: its elements and the exact text it was read from.

    Instructions from :class:`Parser` keep offsets into the text they were parsed
    from and build their elements and raw text only when asked, so a relay that
    looks at the opcode alone does not copy image data around. That text is the
    received bytes themselves when they were plain ASCII (then byte offsets are code
    point offsets), else the decoded string.
    """

    __slots__ = ("_elements", "_raw", "_buf", "_bounds", "start", "end")

    def __init__(self, elements: tuple[str, ...] | None = None, raw: str | None = None, *,
                 buf: str = "", bounds: tuple[int, ...] = (), start: int = 0, end: int = 0):
        self._elements = tuple(elements) if elements is not None else None
        self._raw = raw
        self._buf = buf
        #: start and end offsets in ``buf`` of each element's value, flattened
        self._bounds = bounds
        self.start = start
        self.end = end

    @property
    def elements(self) -> tuple[str, ...]:
        if self._elements is None:
            b, buf = self._bounds, self._buf
            self._elements = tuple(_text(buf[b[i]:b[i + 1]]) for i in range(0, len(b), 2))
        return self._elements

    @property
    def raw(self) -> str:
        if self._raw is None:
            self._raw = _text(self._buf[self.start:self.end])
        return self._raw

    @property
    def opcode(self) -> str:
        if self._elements is not None:
            return self._elements[0]
        return _text(self._buf[self._bounds[0]:self._bounds[1]])

    @property
    def args(self) -> tuple[str, ...]:
        return self.elements[1:]

    def head(self, count: int) -> tuple[str, ...]:
        """The first ``count`` elements (fewer if it has fewer), without the rest."""
        if self._elements is not None:
            return self._elements[:count]
        b, buf = self._bounds, self._buf
        return tuple(_text(buf[b[i]:b[i + 1]]) for i in range(0, min(len(b), 2 * count), 2))

    def opcode_and_first(self) -> tuple[str, ...]:
        """``head(2)`` for the relay's hot path: opcode and first argument only."""
        if self._elements is not None:
            return self._elements[:2]
        b, buf = self._bounds, self._buf
        if isinstance(buf, bytes):
            # opcodes and stream indexes repeat endlessly: decode each once
            op = _ASCII_CACHE.get(buf[b[0]:b[1]]) or _cache_ascii(buf[b[0]:b[1]])
            if len(b) < 4:
                return (op,)
            first = buf[b[2]:b[3]]
            return (op, _ASCII_CACHE.get(first) or _cache_ascii(first))
        return (buf[b[0]:b[1]],) if len(b) < 4 else (buf[b[0]:b[1]], buf[b[2]:b[3]])

    @property
    def is_ascii_bytes(self) -> bool:
        """Parsed from ASCII bytes (so :attr:`wire` is bytes, and plain ASCII)."""
        return self._raw is None and isinstance(self._buf, bytes)

    @property
    def wire(self) -> str | bytes:
        """The instruction as received: ASCII bytes or text."""
        if self._raw is not None:
            return self._raw
        return self._buf[self.start:self.end]

    def __eq__(self, other):
        if not isinstance(other, Instruction):
            return NotImplemented
        return self.elements == other.elements and self.raw == other.raw

    def __repr__(self):
        return f"Instruction({self.elements!r})"


_ASCII_CACHE: dict[bytes, str] = {}


def _cache_ascii(piece: bytes) -> str:
    text = piece.decode("ascii")
    if len(piece) <= 16 and len(_ASCII_CACHE) < 4096:
        _ASCII_CACHE[piece] = text
    return text


def _text(piece: str | bytes) -> str:
    return piece.decode("ascii") if isinstance(piece, bytes) else piece


def joined_wire(instructions: list[Instruction]) -> str | bytes:
    """The instructions concatenated as received (ASCII bytes when all of them came
    from ASCII input, else text), taking runs that were adjacent in the input as one
    slice."""
    parts = []
    run_buf = None
    run_start = run_end = 0
    for instr in instructions:
        if instr._raw is None and instr._buf is run_buf and instr.start == run_end:
            run_end = instr.end
            continue
        if run_buf is not None:
            parts.append(run_buf[run_start:run_end])
            run_buf = None
        if instr._raw is None and instr._buf:
            run_buf, run_start, run_end = instr._buf, instr.start, instr.end
        else:
            parts.append(instr.raw)
    if run_buf is not None:
        parts.append(run_buf[run_start:run_end])
    if len(parts) == 1:
        return parts[0]
    if all(isinstance(p, bytes) for p in parts):
        return b"".join(parts)
    return "".join(_text(p) for p in parts)


def encode_element(value: object) -> str:
    """Encode one element; ``value`` is converted with ``str()``."""
    text = str(value)
    return f"{len(text)}.{text}"


def encode(*elements: object) -> str:
    """Encode one instruction, opcode first, counting code points."""
    if not elements:
        raise ValueError("an instruction needs at least an opcode")
    return ",".join(encode_element(e) for e in elements) + ";"


def utf16_length(text: str) -> int:
    """Length of ``text`` in UTF-16 code units (characters beyond U+FFFF count 2)."""
    if text.isascii():
        return len(text)
    return len(text) + sum(1 for c in text if ord(c) > 0xFFFF)


def encode_utf16(*elements: object) -> str:
    """Encode one instruction with lengths in UTF-16 code units.

    guacamole-common-js 1.5's WebSocket tunnel measures elements with JavaScript's
    ``String.length`` (UTF-16 units), so text sent to that client must be measured
    the same way or characters beyond the Basic Multilingual Plane (emoji, rare CJK)
    would shift every following element. guacd itself counts code points.
    """
    if not elements:
        raise ValueError("an instruction needs at least an opcode")
    parts = []
    for e in elements:
        text = str(e)
        parts.append(f"{utf16_length(text)}.{text}")
    return ",".join(parts) + ";"


def for_utf16_client(instruction: Instruction) -> str:
    """The text to send a UTF-16-counting client for ``instruction``.

    The raw text is reused unless some element holds a character beyond U+FFFF,
    which is rare enough that re-encoding then costs nothing overall.
    """
    raw = instruction.raw
    if raw.isascii() or not any(ord(c) > 0xFFFF for c in raw):
        return raw
    return encode_utf16(*instruction.elements)


class Parser:
    """Incremental parser: feed it bytes (or text) as they arrive, get whole
    instructions back.

    Raises :class:`ProtocolError` on a malformed length, a missing or wrong
    terminator, an instruction longer than ``max_length`` code points or with more
    than ``max_elements`` elements, and on bytes that are not UTF-8. After an error
    the stream cannot be trusted: the caller should close the connection.
    """

    def __init__(self, max_length: int = DEFAULT_MAX_LENGTH, max_elements: int = DEFAULT_MAX_ELEMENTS):
        self.max_length = max_length
        self.max_elements = max_elements
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self._buf = ""
        # index in _buf of the next element's length prefix
        self._cursor = 0
        # value offsets (start, end, start, end, ...) of the current instruction
        self._bounds: list[int] = []

    @property
    def pending(self) -> int:
        """Code points received but not yet part of a complete instruction."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Instruction]:
        """Add UTF-8 ``data`` (any split, even inside a character) and return the
        instructions it completed."""
        if data.isascii() and not self._decoder.getstate()[0]:
            # ASCII (all image data is base64): one byte is one code point, so parse
            # the bytes as they are, without decoding
            if isinstance(self._buf, str):
                if not self._buf.isascii():
                    return self._feed_decoded(data)
                self._buf = self._buf.encode("ascii")
            return self._scan(data, b".", b";", b",")
        return self._feed_decoded(data)

    def takes_ascii(self, data: bytes) -> bool:
        """Whether :meth:`feed_ascii` can take ``data``: plain ASCII arriving while
        no multi-byte character or non-ASCII instruction is half received."""
        buf = self._buf
        return data.isascii() and (isinstance(buf, bytes) or buf.isascii()) and not self._decoder.getstate()[0]

    def feed_ascii(self, data: bytes, keep: Callable[[str, str | None], bool]) -> bytes:
        """Add ASCII ``data`` (see :meth:`takes_ascii`) and return the instructions it
        completed that ``keep(opcode, first_argument_or_None)`` accepted, as the bytes
        they arrived in.

        The relay's fast path: the same grammar and limits as :meth:`feed` (every
        element's length read and checked, so a value can never be taken for an
        instruction boundary), but no :class:`Instruction` objects and no copy of
        the data of the instructions that pass.
        """
        buf = self._buf
        if buf:
            buf = (buf if isinstance(buf, bytes) else buf.encode("ascii")) + data
        else:
            buf = data
        # a partial instruction from the last read is scanned again from its start:
        # it is one instruction, and it keeps this loop to one state
        self._cursor, self._bounds = 0, []
        find = buf.find
        size = len(buf)
        max_length = self.max_length
        max_elements = self.max_elements
        cache = _ASCII_CACHE
        runs: list[int] = []  # start, end of each run of kept instructions, flattened
        pos = start = 0  # next length prefix; start of the current instruction
        first = None
        while pos < size:
            # one element per turn; ``count`` 1 is the opcode
            dot = find(b".", pos, pos + _MAX_LENGTH_DIGITS + 1)
            if dot < 0:
                if size - pos > _MAX_LENGTH_DIGITS:
                    raise ProtocolError(
                        f"malformed element length {_text(buf[pos:pos + 12])!r}: expected decimal digits then '.'"
                    )
                break
            digits = buf[pos:dot]
            if not digits.isdigit():  # bytes: ASCII digits only, and not empty
                raise ProtocolError(f"malformed element length {_text(digits)!r}: expected decimal digits then '.'")
            end = dot + 1 + int(digits)
            if end - start + 1 > max_length:
                raise ProtocolError(
                    f"instruction longer than the limit of {max_length} characters "
                    f"(an element alone claims {int(digits)})"
                )
            if end >= size:
                break
            if pos == start:
                opcode = buf[dot + 1:end]
                count = 1
            else:
                count += 1
                if count == 2:
                    first = buf[dot + 1:end]
            terminator = buf[end]
            pos = end + 1
            if terminator == 59:  # ;
                op = cache.get(opcode) or _cache_ascii(opcode)
                arg = None if count == 1 else cache.get(first) or _cache_ascii(first)
                if keep(op, arg):
                    if runs and runs[-1] == start:
                        runs[-1] = pos
                    else:
                        runs += (start, pos)
                start = pos
            elif terminator == 44:  # ,
                if count >= max_elements:
                    raise ProtocolError(f"instruction has more than {max_elements} elements")
            else:
                raise ProtocolError(
                    f"element of length {end - dot - 1} is followed by {_text(buf[end:end + 1])!r}: "
                    "expected ',' or ';' (is the length counted in code points?)"
                )
        if pos - start > max_length:
            raise ProtocolError(f"instruction longer than the limit of {max_length} characters")
        self._buf = buf[start:] if start else buf
        if not runs:
            return b""
        if len(runs) == 2:
            a, b = runs
            return buf if a == 0 and b == size else buf[a:b]
        return b"".join([buf[runs[i]:runs[i + 1]] for i in range(0, len(runs), 2)])

    def _feed_decoded(self, data: bytes) -> list[Instruction]:
        try:
            text = self._decoder.decode(data)
        except UnicodeDecodeError as e:
            raise ProtocolError(f"instruction data is not valid UTF-8: {e.reason} at byte {e.start}") from None
        return self.feed_text(text)

    def feed_text(self, text: str) -> list[Instruction]:
        """Add already decoded ``text`` and return the instructions it completed."""
        if isinstance(self._buf, bytes):
            self._buf = self._buf.decode("ascii")
        return self._scan(text, ".", ";", ",")

    def _scan(self, text, dot_mark, end_mark, next_mark) -> list[Instruction]:
        buf = self._buf + text if self._buf else text
        out: list[Instruction] = []
        start = 0  # start of the current instruction in buf
        cursor = self._cursor
        bounds = self._bounds
        size = len(buf)
        max_length = self.max_length
        while cursor < size:
            dot = buf.find(dot_mark, cursor, cursor + _MAX_LENGTH_DIGITS + 1)
            if dot < 0:
                if size - cursor > _MAX_LENGTH_DIGITS:
                    raise ProtocolError(
                        f"malformed element length {_text(buf[cursor:cursor + 12])!r}: "
                        "expected decimal digits then '.'"
                    )
                break
            digits = buf[cursor:dot]
            if not (digits.isascii() and digits.isdigit()):
                raise ProtocolError(f"malformed element length {_text(digits)!r}: expected decimal digits then '.'")
            length = int(digits)
            end = dot + 1 + length  # index of the terminator
            if end - start + 1 > max_length:
                raise ProtocolError(
                    f"instruction longer than the limit of {max_length} characters "
                    f"(an element alone claims {length})"
                )
            if end >= size:
                break
            terminator = buf[end:end + 1]
            bounds.append(dot + 1)
            bounds.append(end)
            cursor = end + 1
            if terminator == end_mark:
                out.append(Instruction(buf=buf, bounds=tuple(bounds), start=start, end=cursor))
                bounds = []
                start = cursor
            elif terminator == next_mark:
                if len(bounds) >= 2 * self.max_elements:
                    raise ProtocolError(f"instruction has more than {self.max_elements} elements")
            else:
                raise ProtocolError(
                    f"element of length {length} is followed by {_text(terminator)!r}: expected ',' or ';' "
                    "(is the length counted in code points?)"
                )
        if cursor - start > max_length:
            raise ProtocolError(f"instruction longer than the limit of {max_length} characters")
        self._buf = buf[start:]
        self._cursor = cursor - start
        # offsets of a partial instruction move with the text kept for the next read
        self._bounds = [b - start for b in bounds] if start else bounds
        return out


def parse_all(data: bytes | str, **limits) -> list[Instruction]:
    """Parse ``data`` that must hold only whole instructions."""
    parser = Parser(**limits)
    out = parser.feed(data) if isinstance(data, bytes) else parser.feed_text(data)
    if parser.pending:
        raise ProtocolError(f"incomplete instruction at the end: {_text(parser._buf[:40])!r}")
    return out


