"""What may pass through the sandbox tunnel, and with which connection parameters.

Pure rules, no IO: the tunnel (:mod:`.tunnel`) asks :class:`StreamFilter` about every
instruction and builds the guacd handshake from :func:`locked_parameters`,
:func:`connect_values` and :func:`clamp_size`.

The principle is an allow-list in both directions:

* from the browser only input and flow control pass (mouse, keyboard, touch, screen
  size, sync, ack of a display stream, nop, disconnect); anything that could carry data
  into or out of the desktop (clipboard, file, pipe, blob, argv, put, get, ...) is
  dropped;
* from guacd only drawing, display streams (``img`` and their ``blob``/``end``) and
  session notices pass; clipboard, file, pipe and filesystem objects are dropped, and
  the streams guacd tried to open for them are refused back to guacd so it does not
  wait on them; ``ready`` (whose argument would let anyone join the session) never
  reaches the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

#: Opcodes the browser may send to guacd.
BROWSER_OPCODES = frozenset({"mouse", "key", "size", "sync", "ack", "nop", "disconnect", "touch"})

#: Opcodes guacd may send to the browser (besides ``blob``/``end`` of display streams).
GUACD_OPCODES = frozenset(
    {
        # drawing
        "arc", "cfill", "clip", "close", "copy", "cstroke", "cursor", "curve", "dispose",
        "distort", "identity", "lfill", "line", "lstroke", "move", "pop", "push", "rect",
        "reset", "set", "shade", "size", "start", "transfer", "transform", "img",
        # session and flow control
        "sync", "nop", "error", "disconnect", "name", "mouse", "key", "msg", "log",
    }
)

#: Opcodes with which guacd opens a stream the browser must not receive. The first
#: argument of each is the stream index.
REFUSED_STREAM_OPCODES = frozenset({"clipboard", "file", "pipe", "audio", "video", "argv"})

#: Guacamole status "CLIENT_FORBIDDEN", sent back to guacd for refused streams.
STATUS_CLIENT_FORBIDDEN = 0x0303

#: Image formats the browser is told to accept; fixed here, not taken from the browser.
IMAGE_MIMETYPES = ("image/png", "image/jpeg", "image/webp")


class Verdict:
    """What to do with one instruction: forward it or not, and what to answer."""

    __slots__ = ("forward", "reply", "replace")

    def __init__(
        self,
        forward: bool,
        reply: tuple[tuple[str, ...], ...] = (),
        replace: tuple[str, ...] | None = None,
    ):
        self.forward = forward
        #: instructions (element tuples) to send back to the sender
        self.reply = reply
        #: when set, forward these elements instead of the original instruction
        self.replace = replace

    def __repr__(self):
        return f"Verdict(forward={self.forward}, reply={self.reply}, replace={self.replace})"


FORWARD = Verdict(True)
DROP = Verdict(False)


def _int_args(args: Sequence[str]) -> bool:
    return all(a.lstrip("-").isdigit() and a.isascii() for a in args)


class StreamFilter:
    """Decides, instruction by instruction, what crosses the tunnel.

    It remembers which guacd streams are display streams (opened by ``img``) and which
    were refused, so ``blob``/``end``/``ack`` are judged by the stream they belong to.
    One instance per tunnel.
    """

    def __init__(self, max_width: int = 3840, max_height: int = 2160):
        self.max_width = max_width
        self.max_height = max_height
        #: guacd stream indexes opened by ``img``
        self.display_streams: set[str] = set()
        #: guacd stream indexes opened for something we refused
        self.refused_streams: set[str] = set()

    def from_browser(self, elements: Sequence[str]) -> Verdict:
        """Judge an instruction the browser sent (a ``size`` may be clamped)."""
        opcode, args = elements[0], elements[1:]
        if opcode not in BROWSER_OPCODES:
            return DROP
        if opcode == "ack":
            # acks only make sense for guacd's display streams
            if len(args) == 3 and args[0] in self.display_streams:
                return FORWARD
            return DROP
        if opcode == "sync":
            return FORWARD if len(args) == 1 and _int_args(args) else DROP
        if opcode in ("nop", "disconnect"):
            return FORWARD if not args else DROP
        # mouse, key, touch, size: integers only
        if not args or not _int_args(args):
            return DROP
        if opcode == "size":
            if len(args) < 2:
                return DROP
            width, height, _dpi = clamp_size(args[0], args[1], None, self.max_width, self.max_height)
            clamped = (str(width), str(height))
            if tuple(args) == clamped:
                return FORWARD
            return Verdict(True, replace=("size", *clamped))
        return FORWARD

    def from_guacd(self, elements: Sequence[str]) -> Verdict:
        """Judge an instruction guacd sent after the handshake."""
        return self.from_guacd_head(elements[0], elements[1] if len(elements) > 1 else None)

    def from_guacd_head(self, opcode: str, first: str | None) -> Verdict:
        """Judge an instruction guacd sent by its opcode and first argument (``None``
        when it has none): no rule from guacd looks further, so the relay need not
        split the (image) data of an instruction to ask."""
        if opcode == "blob" or opcode == "end":
            if first in self.display_streams:
                if opcode == "end":
                    self.display_streams.discard(first)
                return FORWARD
            if first is not None and opcode == "end":
                self.refused_streams.discard(first)
            return DROP
        if opcode == "img":
            if first is not None:
                self.display_streams.add(first)
                self.refused_streams.discard(first)
                return FORWARD
            return DROP
        if opcode in REFUSED_STREAM_OPCODES:
            if first is not None:
                self.refused_streams.add(first)
                self.display_streams.discard(first)
                return Verdict(False, (("ack", first, "Not allowed in a sandbox", str(STATUS_CLIENT_FORBIDDEN)),))
            return DROP
        if opcode in GUACD_OPCODES:
            return FORWARD
        # ready, required, filesystem, body, undefine, nest, ack, and whatever a
        # future guacd invents: not shown to the browser
        return DROP


@dataclass(frozen=True)
class VncTarget:
    """Where the desktop's VNC server listens (always on the session's loopback)."""

    host: str
    port: int
    password: str


@dataclass(frozen=True)
class SandboxRules:
    """The site's choices for sandbox sessions (from :class:`~.gateway.SandboxGateway`)."""

    #: let the user paste text from their own machine into the desktop
    allow_paste: bool = False
    #: directory where guacd records sessions for audit ("" = no recording)
    recording_path: str = ""
    recording_name: str = ""
    color_depth: int = 24


def locked_parameters(target: VncTarget, rules: SandboxRules) -> dict[str, str]:
    """The VNC connection parameters, fixed on the server.

    Anything guacd asks for that is not here is sent empty (guacd's default). Export
    paths are switched off explicitly, also those guacd's VNC support would only
    offer when asked (SFTP, audio), so a future default change cannot open them.
    """
    params = {
        "hostname": target.host,
        "port": str(target.port),
        "password": target.password,
        "color-depth": str(rules.color_depth),
        "disable-copy": "true",
        "disable-paste": "false" if rules.allow_paste else "true",
        "enable-sftp": "false",
        "enable-audio": "false",
        "enable-drive": "false",
        "enable-printing": "false",
        "disable-download": "true",
        "disable-upload": "true",
        "read-only": "false",
        "reverse-connect": "false",
        "wol-send-packet": "false",
    }
    if rules.recording_path:
        params["recording-path"] = rules.recording_path
        params["create-recording-path"] = "true"
        params["recording-name"] = rules.recording_name or "${GUAC_DATE}-${GUAC_TIME}"
        # keystrokes are recorded too: the audit is about what was done
        params["recording-include-keys"] = "true"
    return params


#: Protocol version this tunnel speaks to guacd.
PROTOCOL_VERSION = "VERSION_1_5_0"


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.removeprefix("VERSION_").split("_"))
    except ValueError:
        return (1, 0, 0)


def guacd_version(args: Sequence[str]) -> tuple[int, ...]:
    """The protocol version guacd announced as first ``args`` element (1.0.0 if none)."""
    if args and args[0].startswith("VERSION_"):
        return _version_tuple(args[0])
    return (1, 0, 0)


def connect_values(arg_names: Sequence[str], params: Mapping[str, str]) -> list[str]:
    """One value per argument guacd asked for in ``args``, in its order."""
    values = []
    for name in arg_names:
        if name.startswith("VERSION_"):
            values.append(PROTOCOL_VERSION)
        else:
            values.append(params.get(name, ""))
    return values


def _to_int(value, default: int) -> int:
    try:
        text = str(value).strip()
        if not (text.isascii() and text.isdigit()) or len(text) > 6:
            return default
        return int(text)
    except (TypeError, ValueError):
        return default


MIN_WIDTH, MIN_HEIGHT = 320, 240
DEFAULT_SIZE = (1280, 800, 96)


def clamp_size(width, height, dpi, max_width: int = 3840, max_height: int = 2160) -> tuple[int, int, int]:
    """A screen size within limits from untrusted values (strings, None, junk)."""
    w = min(max(_to_int(width, DEFAULT_SIZE[0]), MIN_WIDTH), max_width)
    h = min(max(_to_int(height, DEFAULT_SIZE[1]), MIN_HEIGHT), max_height)
    d = min(max(_to_int(dpi, DEFAULT_SIZE[2]), 48), 384)
    return w, h, d


def size_from_query(query: Mapping[str, Sequence[str]], max_width: int = 3840, max_height: int = 2160):
    """The screen size from the tunnel's query string; every other key is ignored."""

    def first(key):
        values = query.get(key) or []
        return values[0] if values else None

    return clamp_size(first("width"), first("height"), first("dpi"), max_width, max_height)
