"""The WebSocket tunnel between guacamole-common-js in the user's browser and guacd.

The gateway, not the browser, talks to guacd for the handshake: it selects the VNC
protocol, answers guacd's ``args`` with the parameters fixed in :mod:`.rules` and only
takes a (clamped) screen size from the browser's query string. After ``ready`` it
relays instructions both ways through :class:`~.rules.StreamFilter`, answers the
browser's tunnel pings itself, and never forwards guacd's connection id.

Compatible with ``Guacamole.WebSocketTunnel``: subprotocol ``guacamole``, one or more
whole instructions per WebSocket text message, ``0.,36.<uuid>;`` first, status codes as
the close reason.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Callable

from tornado import websocket

from .protocol import Instruction, Parser, ProtocolError, encode, for_utf16_client, joined_wire
from .rules import (
    IMAGE_MIMETYPES,
    SandboxRules,
    StreamFilter,
    VncTarget,
    connect_values,
    guacd_version,
    locked_parameters,
    size_from_query,
)

log = logging.getLogger(__name__)

# Guacamole status codes used as WebSocket close reasons (guacamole-common-js reads them)
STATUS_SERVER_ERROR = 0x0200
STATUS_UPSTREAM_ERROR = 0x0203
STATUS_UPSTREAM_NOT_FOUND = 0x0207
STATUS_CLIENT_BAD_REQUEST = 0x0300

#: Browsers only send small input instructions; guacd accepts 8192 characters at most.
BROWSER_MAX_LENGTH = 8192
READ_SIZE = 256 * 1024
#: What guacd may have sent ahead of the relay (asyncio pauses reading at twice
#: this). Its default of 64 KiB would pause and resume the socket at every read.
GUACD_BUFFER = 2 * READ_SIZE
#: Input to guacd waiting in our buffer beyond which the tunnel is closed.
MAX_PENDING_INPUT = 1024 * 1024
#: Instructions that mean a person is using the desktop (for the hub's idle culling).
USER_INPUT = frozenset({"mouse", "key", "touch"})


class HandshakeError(RuntimeError):
    """guacd refused or broke the handshake."""

    def __init__(self, message: str, status: int = STATUS_UPSTREAM_ERROR):
        super().__init__(message)
        self.status = status


@dataclass
class TunnelTarget:
    """Everything fixed on the server about a tunnel: where guacd and the desktop are
    and the site's rules. Nothing in it comes from the browser."""

    guacd_host: str
    guacd_port: int
    vnc: VncTarget
    rules: SandboxRules = field(default_factory=SandboxRules)
    timezone: str = "UTC"
    #: shown by guacd as the user's name in the session
    name: str = ""
    max_width: int = 3840
    max_height: int = 2160
    handshake_timeout: float = 15.0


async def _read_instruction(reader: asyncio.StreamReader, parser: Parser, backlog: list[Instruction]) -> Instruction:
    while not backlog:
        data = await reader.read(READ_SIZE)
        if not data:
            raise HandshakeError("guacd closed the connection during the handshake", STATUS_UPSTREAM_NOT_FOUND)
        backlog.extend(parser.feed(data))
    return backlog.pop(0)


async def _expect(reader, parser, backlog, opcode: str) -> Instruction:
    instr = await _read_instruction(reader, parser, backlog)
    if instr.opcode == "error":
        message = instr.args[0] if instr.args else "unknown error"
        status = int(instr.args[1]) if len(instr.args) > 1 and instr.args[1].isdigit() else STATUS_UPSTREAM_ERROR
        raise HandshakeError(f"guacd refused the connection: {message}", status)
    if instr.opcode != opcode:
        raise HandshakeError(f"guacd sent {instr.opcode!r} during the handshake where {opcode!r} was expected")
    return instr


@dataclass
class GuacdConnection:
    """An open, handshaken connection to guacd."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    parser: Parser
    #: instructions guacd sent right after ``ready``, in the same read
    backlog: list[Instruction]
    #: guacd's id for the connection; stays on the server
    connection_id: str
    version: tuple[int, ...]

    def close(self):
        self.writer.close()


async def connect_guacd(target: TunnelTarget, size: tuple[int, int, int]) -> GuacdConnection:
    """Open a connection to guacd and do the whole handshake with server-fixed values."""
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(target.guacd_host, target.guacd_port, limit=GUACD_BUFFER),
            target.handshake_timeout,
        )
    except (OSError, asyncio.TimeoutError) as e:
        raise HandshakeError(
            f"cannot reach guacd at {target.guacd_host}:{target.guacd_port}: {e}", STATUS_UPSTREAM_NOT_FOUND
        ) from None
    try:
        return await asyncio.wait_for(_handshake(reader, writer, target, size), target.handshake_timeout)
    except asyncio.TimeoutError:
        writer.close()
        raise HandshakeError("guacd did not finish the handshake in time", STATUS_UPSTREAM_ERROR) from None
    except (HandshakeError, ProtocolError, OSError):
        writer.close()
        raise


async def _handshake(reader, writer, target: TunnelTarget, size) -> GuacdConnection:
    parser = Parser()
    backlog: list[Instruction] = []
    writer.write(encode("select", "vnc").encode())
    args = await _expect(reader, parser, backlog, "args")
    version = guacd_version(args.args)
    width, height, dpi = size
    out = [
        encode("size", width, height, dpi),
        encode("audio"),
        encode("video"),
        encode("image", *IMAGE_MIMETYPES),
    ]
    if version >= (1, 1, 0):
        out.append(encode("timezone", target.timezone))
    if version >= (1, 5, 0) and target.name:
        out.append(encode("name", target.name))
    params = locked_parameters(target.vnc, target.rules)
    out.append(encode("connect", *connect_values(args.args, params)))
    writer.write("".join(out).encode())
    await writer.drain()
    ready = await _expect(reader, parser, backlog, "ready")
    return GuacdConnection(
        reader, writer, parser, backlog, ready.args[0] if ready.args else "", version
    )


def for_browser(instructions: list[Instruction], keep: Callable[[str, str | None], bool]) -> str | bytes:
    """The instructions ``keep(opcode, first_argument)`` accepts, as the browser gets
    them: guacamole-common-js counts lengths in UTF-16 units, so text beyond ASCII
    may need them recounted."""
    out = []
    for instr in instructions:
        head = instr.opcode_and_first()
        if keep(head[0], head[1] if len(head) > 1 else None):
            out.append(instr if instr.is_ascii_bytes else Instruction(raw=for_utf16_client(instr)))
    return joined_wire(out) if out else ""


def relay_from_guacd(parser: Parser, data: bytes, keep: Callable[[str, str | None], bool]) -> str | bytes:
    """What of ``data`` read from guacd goes on to the browser, instruction by
    instruction as ``keep`` judges them (each instruction only once it is whole)."""
    if parser.takes_ascii(data):
        # the display stream (base64 images, drawing) is ASCII: judged without
        # building instructions, forwarded as it was read
        return parser.feed_ascii(data, keep)
    return for_browser(parser.feed(data), keep)


class TunnelHandler(websocket.WebSocketHandler):
    """The Guacamole WebSocket tunnel endpoint.

    ``self.settings["sandbox_target"]`` is a callable returning the
    :class:`TunnelTarget`. Subclasses add authentication by overriding
    :meth:`authorize` (the gateway requires the server's owner).
    """

    guacd: GuacdConnection | None = None

    def authorize(self) -> None:
        """Raise ``tornado.web.HTTPError`` to refuse the upgrade."""

    async def get(self, *args, **kwargs):
        self.authorize()
        return await super().get(*args, **kwargs)

    def select_subprotocol(self, subprotocols):
        return "guacamole" if "guacamole" in subprotocols else None

    def get_compression_options(self):
        # the stream is mostly base64 images: compression costs CPU for little gain
        return None

    async def open(self, *args, **kwargs):
        if self.selected_subprotocol != "guacamole":
            self.close(1002, str(STATUS_CLIENT_BAD_REQUEST))
            return
        target: TunnelTarget = self.settings["sandbox_target"]()
        self.filter = StreamFilter(target.max_width, target.max_height)
        self.browser_parser = Parser(max_length=BROWSER_MAX_LENGTH)
        query = {k: [v.decode("utf-8", "replace") for v in vs] for k, vs in self.request.query_arguments.items()}
        size = size_from_query(query, target.max_width, target.max_height)
        try:
            self.guacd = await connect_guacd(target, size)
        except (HandshakeError, ProtocolError, OSError) as e:
            status = getattr(e, "status", STATUS_UPSTREAM_ERROR)
            log.warning("sandbox tunnel: %s", e)
            self._close_with(status, str(e))
            return
        if self.ws_connection is None:  # the browser left during the handshake
            self.guacd.close()
            return
        # input events are small and latency-sensitive: do not let the kernel hold them
        self.set_nodelay(True)
        self.write_message(encode("", str(uuid.uuid4())))
        self._relay_task = asyncio.ensure_future(self._relay_from_guacd())

    def _close_with(self, status: int, message: str):
        if self.ws_connection is None:
            return
        try:
            self.write_message(encode("error", message, status))
        except websocket.WebSocketClosedError:
            pass
        self.close(1011 if status < STATUS_CLIENT_BAD_REQUEST else 1008, str(status))

    async def _relay_from_guacd(self):
        guacd = self.guacd
        parser = guacd.parser
        judge = self.filter.from_guacd_head
        replies: list[str] = []

        def keep(opcode: str, first: str | None) -> bool:
            verdict = judge(opcode, first)
            if verdict.reply:
                replies.extend(encode(*reply) for reply in verdict.reply)
            return verdict.forward

        # one write to the browser may be in flight while the next read from guacd
        # happens: waiting for each write before reading again would halve throughput,
        # never waiting would buffer without bound when the browser is slow
        in_flight = None
        try:
            out = for_browser(guacd.backlog, keep)
            guacd.backlog = []
            while True:
                if replies:
                    guacd.writer.write("".join(replies).encode())
                    replies.clear()
                if out:
                    # ASCII bytes go out as a text frame unchanged
                    written = self.write_message(out)
                    if in_flight is not None:
                        await in_flight
                    in_flight = written
                data = await guacd.reader.read(READ_SIZE)
                if not data:
                    self._close_with(STATUS_UPSTREAM_NOT_FOUND, "the desktop connection ended")
                    return
                out = relay_from_guacd(parser, data, keep)
        except ProtocolError as e:
            log.warning("sandbox tunnel: guacd sent an invalid instruction: %s", e)
            self._close_with(STATUS_UPSTREAM_ERROR, "invalid data from guacd")
        except (websocket.WebSocketClosedError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            guacd.close()

    def on_message(self, message):
        if self.guacd is None:
            return
        if isinstance(message, bytes):
            message = message.decode("utf-8", "strict")
        try:
            instructions = self.browser_parser.feed_text(message)
        except ProtocolError as e:
            log.warning("sandbox tunnel: browser sent an invalid instruction: %s", e)
            self._close_with(STATUS_CLIENT_BAD_REQUEST, "invalid instruction")
            return
        out = []
        for instr in instructions:
            if instr.opcode == "":
                # the tunnel's own ping: answered here, never sent on to guacd
                if len(instr.args) == 2 and instr.args[0] == "ping":
                    self.write_message(instr.raw)
                continue
            verdict = self.filter.from_browser(instr.elements)
            if verdict.forward:
                out.append(encode(*verdict.replace) if verdict.replace else instr.raw)
                if instr.opcode in USER_INPUT:
                    on_input = self.settings.get("sandbox_on_input")
                    if on_input is not None:
                        on_input()
        if out:
            writer = self.guacd.writer
            if writer.transport.get_write_buffer_size() > MAX_PENDING_INPUT:
                # guacd is not reading: a browser flooding input must not grow memory
                self._close_with(STATUS_CLIENT_BAD_REQUEST, "too much input")
                return
            writer.write("".join(out).encode())

    def on_close(self):
        task = getattr(self, "_relay_task", None)
        if task is not None:
            task.cancel()
        if self.guacd is not None:
            self.guacd.close()


def make_target_getter(target: TunnelTarget) -> Callable[[], TunnelTarget]:
    """Wrap a fixed target for ``settings["sandbox_target"]``."""
    return lambda: target
