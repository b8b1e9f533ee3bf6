"""Run Python code inside a real session, as its user would from a notebook: start a
kernel through the session's Jupyter server API (behind the hub's proxy), send an
``execute_request`` over the kernel's WebSocket and collect what it prints.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import requests
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect


def _message(code: str, session: str) -> dict:
    return {
        "header": {
            "msg_id": uuid.uuid4().hex, "msg_type": "execute_request", "session": session,
            "username": "test", "version": "5.3",
        },
        "parent_header": {}, "metadata": {}, "buffers": [], "channel": "shell",
        "content": {
            "code": code, "silent": False, "store_history": False, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True,
        },
    }


async def _execute(ws_url: str, headers: dict, code: str, timeout: float) -> tuple[str, str]:
    ws = await websocket_connect(HTTPRequest(ws_url, headers=headers, connect_timeout=timeout))
    try:
        msg = _message(code, uuid.uuid4().hex)
        await ws.write_message(json.dumps(msg))
        out, err = [], []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            raw = await asyncio.wait_for(ws.read_message(), max(1, deadline - loop.time()))
            if raw is None:
                raise RuntimeError("the kernel's WebSocket closed")
            reply = json.loads(raw)
            if reply.get("parent_header", {}).get("msg_id") != msg["header"]["msg_id"]:
                continue
            kind, content = reply["msg_type"], reply["content"]
            if kind == "stream":
                (out if content["name"] == "stdout" else err).append(content["text"])
            elif kind == "error":
                err.append("\n".join(content.get("traceback", [])) or content.get("evalue", ""))
            elif kind == "status" and content.get("execution_state") == "idle":
                return "".join(out), "".join(err)
    finally:
        ws.close()


def run_code(base_url: str, token: str, code: str, timeout: float = 120) -> tuple[str, str]:
    """Run ``code`` in a new kernel of the session at ``base_url``
    (``http://host:port/user/<name>/<server>/``); returns (stdout, stderr)."""
    headers = {"Authorization": f"token {token}"}
    r = requests.post(base_url + "api/kernels", headers=headers, json={"name": "python3"}, timeout=60)
    r.raise_for_status()
    kernel = r.json()["id"]
    ws_url = base_url.replace("http://", "ws://", 1) + f"api/kernels/{kernel}/channels"
    try:
        return asyncio.run(_execute(ws_url, headers, code, timeout))
    finally:
        requests.delete(base_url + f"api/kernels/{kernel}", headers=headers, timeout=60)
