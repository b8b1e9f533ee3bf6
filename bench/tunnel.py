"""Throughput and round-trip time of the sandbox tunnel against a plain TCP relay.

Three processes on the loopback: a guacd stand-in (handshake, then either streams
image blobs or echoes ``sync``), the system under test (the gateway's WebSocket tunnel,
and beside it a plain byte relay as the baseline) and the client (a WebSocket client
like the browser's, or a TCP client through the relay; both equally lean). Both paths
carry the same stream in the same run: one untimed warm-up each, then rounds that
alternate which path goes first; the ratio is the median of each round's tunnel over
the same round's relay.

    python bench/tunnel.py [--megabytes 256] [--rounds 7] [--pings 2000]

Prints MB/s, median round trip and the relaying process's CPU per MB for each path,
then the ratios. Targets: tunnel throughput at least 0.95 of the relay's, under 0.5 ms
added per round trip. On a machine busy with other work the throughput ratio follows
the CPU cost ratio (each process gets its share of the CPU), so read both.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import socket
import statistics
import time

from tornado import httpserver, web

from jupyterhub_spaces.sandbox.protocol import Parser, encode
from jupyterhub_spaces.sandbox.rules import SandboxRules, VncTarget
from jupyterhub_spaces.sandbox.scripted_guacd import VNC_ARGS
from jupyterhub_spaces.sandbox.tunnel import GUACD_BUFFER, READ_SIZE, TunnelHandler, TunnelTarget

BLOB = "A" * 6048  # guacd sends image data as base64 blobs of about this size
END = b"4.sync,3.END;"
READY = encode("ready", "$bench").encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- guacd stand-in -------------------------------------------------------------


async def peer_main(port: int, total_bytes: int):
    async def serve(reader, writer):
        parser = Parser()
        ready = False
        mode = None
        while True:
            data = await reader.read(65536)
            if not data:
                break
            for instr in parser.feed(data):
                if not ready:
                    if instr.opcode == "select":
                        writer.write(encode("args", *VNC_ARGS).encode())
                    elif instr.opcode == "connect":
                        writer.write(READY)
                        ready = True
                    continue
                if instr.opcode == "nop" and mode is None:
                    # the client picks the mode: "nop" then a "key" 1 = stream, 2 = echo
                    mode = "pending"
                elif instr.opcode == "key" and mode == "pending":
                    mode = "stream" if instr.args[0] == "1" else "echo"
                    if mode == "stream":
                        await stream(writer)
                elif instr.opcode == "sync" and mode == "echo":
                    writer.write(instr.raw.encode())
            await writer.drain()
        writer.close()

    async def stream(writer):
        chunk = encode("img", 1, 14, 0, "image/png", 0, 0)
        blob = encode("blob", 1, BLOB)
        batch = (blob * 16).encode()
        sent = 0
        writer.write(chunk.encode())
        while sent < total_bytes:
            writer.write(batch)
            sent += len(batch)
            await writer.drain()
        writer.write(encode("end", 1).encode() + END)
        await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# -- system under test: tunnel and relay ----------------------------------------


async def gateway_main(guacd_port: int, ws_port: int, relay_port: int):
    target = TunnelTarget("127.0.0.1", guacd_port, VncTarget("127.0.0.1", 5900, "x"), SandboxRules())
    app = web.Application([(r"/tunnel", TunnelHandler)], sandbox_target=lambda: target)
    httpserver.HTTPServer(app).listen(ws_port, "127.0.0.1")

    # the baseline reads and buffers as the tunnel does, so the ratio is about
    # what the tunnel does with the bytes
    async def pipe(reader, writer):
        try:
            while data := await reader.read(READ_SIZE):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def relay(client_reader, client_writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", guacd_port, limit=GUACD_BUFFER)
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer), return_exceptions=True)

    server = await asyncio.start_server(relay, "127.0.0.1", relay_port, limit=GUACD_BUFFER)
    async with server:
        await server.serve_forever()


def run_process(fn, *args):
    def target():
        asyncio.run(fn(*args))

    p = multiprocessing.Process(target=target, daemon=True)
    p.start()
    return p


# -- clients ------------------------------------------------------------------
#
# Both clients are the same small asyncio protocol: they count the bytes that arrive
# and keep only the last few, without decoding or buffering the stream. The WebSocket
# one also steps over frame headers, as a browser does in native code. A client
# heavier on one path than on the other (tornado's WebSocket client decodes and queues
# every message) would measure the client: on a two-core machine it competes with the
# gateway for the same CPU.


HANDSHAKE = (
    encode("select", "vnc") + encode("size", 1024, 768, 96) + encode("audio") + encode("video")
    + encode("image", "image/png") + encode("connect", *[""] * len(VNC_ARGS))
)
TAIL = 64


class Client(asyncio.Protocol):
    """Counts received payload bytes; wakes a waiter when the payload so far ends in
    the awaited suffix."""

    def __init__(self):
        self.received = 0
        self.tail = b""
        self.suffix = b""
        self.waiter: asyncio.Future | None = None
        self.closed = asyncio.get_running_loop().create_future()

    async def connect(self, port):
        loop = asyncio.get_running_loop()
        self.transport, _ = await loop.create_connection(lambda: self, "127.0.0.1", port)
        self.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def payload(self, data, start=0, stop=None):
        stop = len(data) if stop is None else stop
        self.received += stop - start
        self.tail = (self.tail + data[max(start, stop - TAIL):stop])[-TAIL:]
        if self.waiter is not None and not self.waiter.done() and self.tail.endswith(self.suffix):
            self.waiter.set_result(None)

    async def until(self, suffix: bytes):
        self.suffix = suffix
        if self.tail.endswith(suffix):
            return
        self.waiter = asyncio.get_running_loop().create_future()
        done, _ = await asyncio.wait([self.waiter, self.closed], return_when=asyncio.FIRST_COMPLETED)
        if self.waiter not in done:
            raise ConnectionError("connection closed")

    def connection_lost(self, exc):
        if not self.closed.done():
            self.closed.set_result(None)

    def close(self):
        self.transport.close()


class TcpClient(Client):
    """guacd's protocol straight through the relay (the client does the handshake)."""

    async def open(self, port):
        await self.connect(port)
        self.send(HANDSHAKE)
        await self.until(READY)

    def data_received(self, data):
        self.payload(data)

    def send(self, text: str):
        self.transport.write(text.encode())


class WsClient(Client):
    """The tunnel's WebSocket: upgrade, then unmasked server frames in, masked text
    frames out."""

    def __init__(self):
        super().__init__()
        self.head = b""  # HTTP response, then a partial frame header
        self.upgraded = False
        self.need = 0  # payload bytes of the current frame still to come

    async def open(self, port):
        await self.connect(port)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET /tunnel?width=1024&height=768 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: guacamole\r\n\r\n"
            ).encode()
        )
        await self.until(b";")  # the tunnel's uuid

    def data_received(self, data):
        if not self.upgraded:
            data = self.head + data
            end = data.find(b"\r\n\r\n")
            if end < 0:
                self.head = data
                return
            if not data.startswith(b"HTTP/1.1 101"):
                raise ConnectionError(data[:end].decode())
            self.upgraded = True
            self.head = b""
            data = data[end + 4:]
        pos, size = 0, len(data)
        while pos < size:
            if self.need:
                take = min(self.need, size - pos)
                self.payload(data, pos, pos + take)
                self.need -= take
                pos += take
                continue
            head = self.head + data[pos:pos + 14]
            if len(head) < 2:
                self.head, pos = head, size
                continue
            n = head[1] & 0x7F
            hlen, need = (2, n) if n < 126 else (4, None) if n == 126 else (10, None)
            if len(head) < hlen:
                self.head, pos = head, size
                continue
            if need is None:
                need = int.from_bytes(head[2:hlen], "big")
            pos += hlen - len(self.head)
            self.head = b""
            if head[0] & 0x0F == 0x8:  # close
                self.transport.close()
                return
            self.need = need

    def send(self, text: str):
        payload = text.encode()
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
        self.transport.write(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))


async def throughput(client) -> float:
    client.send(encode("nop") + encode("key", 1, 1))
    start = time.perf_counter()
    before = client.received
    await client.until(END)
    return (client.received - before) / (time.perf_counter() - start)


async def latency(client, pings: int) -> list[float]:
    client.send(encode("nop") + encode("key", 2, 1))
    times = []
    for i in range(pings):
        start = time.perf_counter()
        client.send(encode("sync", i))
        await client.until(f"4.sync,{len(str(i))}.{i};".encode())
        times.append(time.perf_counter() - start)
    return times


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far (Linux), 0 elsewhere."""
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(kind, port, pings, gateway_pid):
    client = WsClient() if kind == "tunnel" else TcpClient()
    await client.open(port)
    cpu_before = cpu_seconds(gateway_pid)
    rate = await throughput(client)
    cpu = cpu_seconds(gateway_pid) - cpu_before
    client.close()
    client = WsClient() if kind == "tunnel" else TcpClient()
    await client.open(port)
    rtts = await latency(client, pings)
    client.close()
    return rate, statistics.median(rtts), cpu


async def main(args):
    guacd_port, ws_port, relay_port = free_port(), free_port(), free_port()
    procs = [
        run_process(peer_main, guacd_port, args.megabytes * 1024 * 1024),
        run_process(gateway_main, guacd_port, ws_port, relay_port),
    ]
    await asyncio.sleep(1.5)
    paths = (("relay", relay_port), ("tunnel", ws_port))
    results = {"tunnel": [], "relay": []}
    try:
        # one round of each path untimed, so neither pays for a cold start
        for kind, port in paths:
            await measure(kind, port, 50, procs[1].pid)
        for round_ in range(args.rounds):
            # the order alternates so a machine getting busier or quieter during the
            # run favours neither path
            for kind, port in paths if round_ % 2 == 0 else paths[::-1]:
                results[kind].append(await measure(kind, port, args.pings, procs[1].pid))
    finally:
        for p in procs:
            p.terminate()
    rate = {k: statistics.median(r[0] for r in v) for k, v in results.items()}
    rtt = {k: statistics.median(r[1] for r in v) for k, v in results.items()}
    # CPU the relaying process spent per MB: steadier than wall time on a busy machine
    cpu = {k: statistics.median(r[2] for r in v) / args.megabytes for k, v in results.items()}
    # each round's tunnel against the same round's relay, then the median of those
    ratios = [t[0] / r[0] for t, r in zip(results["tunnel"], results["relay"])]
    added = [(t[1] - r[1]) * 1e3 for t, r in zip(results["tunnel"], results["relay"])]
    print(f"{args.rounds} rounds of {args.megabytes} MiB and {args.pings} round trips per path")
    print(f"{'path':8} {'MB/s':>10} {'median RTT (ms)':>16} {'CPU ms/MB':>10}")
    for k in ("relay", "tunnel"):
        print(f"{k:8} {rate[k] / 1e6:10.1f} {rtt[k] * 1e3:16.3f} {cpu[k] * 1e3:10.2f}")
    print("throughput ratio tunnel/relay per round: " + " ".join(f"{r:.2f}" for r in ratios))
    print(f"throughput ratio tunnel/relay (median): {statistics.median(ratios):.2f} (target >= 0.95)")
    print(f"added round trip (median): {statistics.median(added):.3f} ms (target < 0.5 ms)")
    if cpu["relay"]:
        print(f"CPU cost ratio tunnel/relay: {cpu['tunnel'] / cpu['relay']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=256, help="stream size per throughput round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pings", type=int, default=2000, help="sync round trips per latency round")
    asyncio.run(main(parser.parse_args()))
