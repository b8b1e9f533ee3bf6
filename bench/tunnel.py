"""Throughput and per-message latency of the sandbox tunnel against a direct TCP relay.

Three processes on the loopback: a guacd stand-in (handshake, then either streams
image blobs or echoes ``sync``), the system under test (the gateway's WebSocket tunnel,
and beside it a plain byte relay as the baseline) and the client (a WebSocket client
like the browser's, or a TCP client through the relay). Both paths carry the same
stream in the same run; rounds alternate between them.

    python bench/tunnel.py [--megabytes 64] [--rounds 5] [--pings 2000]

Prints bytes/s and round-trip time for each path and the ratios. Targets: tunnel
throughput at least 90% of the relay's, under 1 ms added per message.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import socket
import statistics
import time

from tornado import httpserver, web, websocket

from jupyterhub_spaces.sandbox.protocol import Parser, encode
from jupyterhub_spaces.sandbox.rules import SandboxRules, VncTarget
from jupyterhub_spaces.sandbox.scripted_guacd import VNC_ARGS
from jupyterhub_spaces.sandbox.tunnel import TunnelHandler, TunnelTarget

BLOB = "A" * 6048  # guacd sends image data as base64 blobs of about this size
END = "4.sync,3.END;"


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
                        writer.write(encode("ready", "$bench").encode())
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
        writer.write((encode("end", 1) + END).encode())
        await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


# -- system under test: tunnel and relay ----------------------------------------


async def gateway_main(guacd_port: int, ws_port: int, relay_port: int):
    target = TunnelTarget("127.0.0.1", guacd_port, VncTarget("127.0.0.1", 5900, "x"), SandboxRules())
    app = web.Application([(r"/tunnel", TunnelHandler)], sandbox_target=lambda: target)
    httpserver.HTTPServer(app).listen(ws_port, "127.0.0.1")

    async def pipe(reader, writer):
        try:
            while data := await reader.read(262144):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def relay(client_reader, client_writer):
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", guacd_port)
        await asyncio.gather(pipe(client_reader, up_writer), pipe(up_reader, client_writer), return_exceptions=True)

    server = await asyncio.start_server(relay, "127.0.0.1", relay_port)
    async with server:
        await server.serve_forever()


def run_process(fn, *args):
    def target():
        asyncio.run(fn(*args))

    p = multiprocessing.Process(target=target, daemon=True)
    p.start()
    return p


# -- clients ------------------------------------------------------------------


HANDSHAKE = (
    encode("select", "vnc") + encode("size", 1024, 768, 96) + encode("audio") + encode("video")
    + encode("image", "image/png") + encode("connect", *[""] * len(VNC_ARGS))
)


class WsClient:
    async def open(self, port):
        self.conn = await websocket.websocket_connect(
            f"ws://127.0.0.1:{port}/tunnel?width=1024&height=768", subprotocols=["guacamole"],
            max_message_size=64 * 1024 * 1024,
        )
        # browsers send without delay (TCP_NODELAY); tornado's client does not by default
        self.conn.protocol.stream.set_nodelay(True)
        await self.conn.read_message()  # the tunnel's uuid

    def send(self, text):
        self.conn.write_message(text)

    async def recv(self) -> str:
        msg = await self.conn.read_message()
        if msg is None:
            raise ConnectionError("tunnel closed")
        return msg

    def close(self):
        self.conn.close()


class TcpClient:
    async def open(self, port):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        self.writer.write(HANDSHAKE.encode())
        buf = b""
        while b"5.ready," not in buf or not buf.endswith(b";"):
            buf += await self.reader.read(65536)

    def send(self, text):
        self.writer.write(text.encode())

    async def recv(self) -> str:
        data = await self.reader.read(262144)
        if not data:
            raise ConnectionError("relay closed")
        return data.decode()

    def close(self):
        self.writer.close()


async def throughput(client) -> float:
    client.send(encode("nop") + encode("key", 1, 1))
    received = 0
    tail = ""
    start = time.perf_counter()
    while True:
        msg = await client.recv()
        received += len(msg)
        tail = (tail + msg)[-len(END):]
        if tail == END:
            break
    return received / (time.perf_counter() - start)


async def latency(client, pings: int) -> list[float]:
    client.send(encode("nop") + encode("key", 2, 1))
    times = []
    for i in range(pings):
        start = time.perf_counter()
        client.send(encode("sync", i))
        got = ""
        while not got.endswith(";"):
            got += await client.recv()
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
    results = {"tunnel": [], "relay": []}
    try:
        for _ in range(args.rounds):
            for kind, port in (("relay", relay_port), ("tunnel", ws_port)):
                results[kind].append(await measure(kind, port, args.pings, procs[1].pid))
    finally:
        for p in procs:
            p.terminate()
    rate = {k: statistics.median(r[0] for r in v) for k, v in results.items()}
    rtt = {k: statistics.median(r[1] for r in v) for k, v in results.items()}
    # CPU the relaying process spent per MB: steadier than wall time on a busy machine
    cpu = {k: statistics.median(r[2] for r in v) / args.megabytes for k, v in results.items()}
    print(f"{'path':8} {'MB/s':>10} {'median RTT (ms)':>16} {'CPU ms/MB':>10}")
    for k in ("relay", "tunnel"):
        print(f"{k:8} {rate[k] / 1e6:10.1f} {rtt[k] * 1e3:16.3f} {cpu[k] * 1e3:10.2f}")
    ratio = rate["tunnel"] / rate["relay"]
    added = (rtt["tunnel"] - rtt["relay"]) * 1e3
    print(f"throughput ratio tunnel/relay: {ratio:.2f} (target >= 0.90)")
    print(f"added round-trip latency: {added:.3f} ms (target < 1 ms)")
    if cpu["relay"]:
        print(f"CPU cost ratio tunnel/relay: {cpu['tunnel'] / cpu['relay']:.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=64, help="stream size per throughput round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pings", type=int, default=2000, help="sync round trips per latency round")
    asyncio.run(main(parser.parse_args()))
