"""A guacd stand-in that speaks the real Guacamole protocol over TCP.

For tests and the tunnel benchmark on machines without guacd: it answers ``select``
with the argument list guacd 1.5 announces for VNC, records everything the client
sends during the handshake and after ``ready``, and lets the caller send any
instruction back. It draws nothing by itself and has no VNC behind it.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field

from .protocol import Instruction, Parser, encode

#: The arguments guacd 1.5.x lists for the VNC protocol, in its order.
VNC_ARGS = (
    "VERSION_1_5_0", "hostname", "port", "read-only", "encodings", "username", "password",
    "swap-red-blue", "color-depth", "cursor", "autoretry", "clipboard-encoding",
    "dest-host", "dest-port", "create-recording-path", "enable-audio", "audio-servername",
    "reverse-connect", "listen-timeout", "enable-sftp", "sftp-hostname", "sftp-host-key",
    "sftp-port", "sftp-username", "sftp-password", "sftp-private-key", "sftp-passphrase",
    "sftp-directory", "sftp-root-directory", "sftp-server-alive-interval",
    "sftp-disable-download", "sftp-disable-upload", "recording-path", "recording-name",
    "recording-exclude-output", "recording-exclude-mouse", "recording-include-keys",
    "disable-copy", "disable-paste", "wol-send-packet", "wol-mac-addr",
    "wol-broadcast-addr", "wol-udp-port", "wol-wait-time", "force-lossless",
)


@dataclass
class PeerSession:
    """One client connection to the scripted guacd."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    connection_id: str = field(default_factory=lambda: "$" + str(uuid.uuid4()))
    #: handshake instructions by opcode (``select``, ``size``, ``image``, ...)
    handshake: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: ``connect`` values by the argument names announced in ``args``
    params: dict[str, str] = field(default_factory=dict)
    #: every instruction received after ``ready``
    received: list[Instruction] = field(default_factory=list)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def send(self, *elements) -> None:
        self.writer.write(encode(*elements).encode())

    def send_raw(self, data: bytes | str) -> None:
        self.writer.write(data if isinstance(data, bytes) else data.encode())

    async def wait_for(self, opcode: str, timeout: float = 10.0, predicate=None) -> Instruction:
        """Wait until an instruction with ``opcode`` arrived after ``ready``."""

        def found():
            for instr in self.received:
                if instr.opcode == opcode and (predicate is None or predicate(instr)):
                    return instr
            return None

        async def wait():
            async with self._arrived:
                await self._arrived.wait_for(lambda: found() is not None or self.closed.is_set())
            return found()

        instr = await asyncio.wait_for(wait(), timeout)
        if instr is None:
            raise AssertionError(f"connection closed before {opcode!r} arrived")
        return instr

    def opcodes(self) -> list[str]:
        return [i.opcode for i in self.received]


class ScriptedGuacd:
    """Listen on a random loopback port; ``sessions`` queues each new connection
    once its handshake is done."""

    def __init__(self, args: tuple[str, ...] = VNC_ARGS, fail_with: tuple[str, str] | None = None):
        self.args = args
        #: when set, answer ``connect`` with this ``error`` (message, status)
        self.fail_with = fail_with
        self.sessions: asyncio.Queue[PeerSession] = asyncio.Queue()
        self.all_sessions: list[PeerSession] = []
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> ScriptedGuacd:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
        for s in self.all_sessions:
            s.writer.close()

    async def _serve(self, reader, writer):
        session = PeerSession(reader, writer)
        self.all_sessions.append(session)
        parser = Parser()
        try:
            while True:
                data = await reader.read(256 * 1024)
                if not data:
                    break
                for instr in parser.feed(data):
                    await self._handle(session, instr)
        except (ConnectionError, ValueError):
            pass
        finally:
            session.closed.set()
            async with session._arrived:
                session._arrived.notify_all()
            writer.close()

    async def _handle(self, session: PeerSession, instr: Instruction):
        if session.ready.is_set():
            session.received.append(instr)
            async with session._arrived:
                session._arrived.notify_all()
            return
        session.handshake[instr.opcode] = instr.args
        if instr.opcode == "select":
            session.send("args", *self.args)
        elif instr.opcode == "connect":
            session.params = dict(zip(self.args, instr.args))
            if self.fail_with:
                session.send("error", *self.fail_with)
                await session.writer.drain()
                session.writer.close()
                return
            session.send("ready", session.connection_id)
            session.ready.set()
            await self.sessions.put(session)
