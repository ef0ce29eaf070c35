"""A WebSocket client on python websockets: opens ws://AUTHORITY/PATH over a TCP connection
to ADDR (a proxy's listener), exchanges text, binary, a ping and a close with server.py, and
prints what it saw as JSON (one object)."""
import json
import socket
import sys

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

addr, authority, path = sys.argv[1], sys.argv[2], sys.argv[3]
host, port = addr.rsplit(":", 1)
out = {}
try:
    sock = socket.create_connection((host, int(port)), timeout=10)
    with connect(f"ws://{authority}{path}", sock=sock, subprotocols=["chat"], max_size=8 << 20,
                 open_timeout=10, close_timeout=10) as ws:
        out["subprotocol"] = ws.subprotocol
        out["hello"] = ws.recv(timeout=10)
        ws.send("ping through two proxies")
        out["text"] = ws.recv(timeout=10)
        big = bytes(range(256)) * 4096
        ws.send(big)
        back = ws.recv(timeout=20)
        out["binary"] = len(back) if back == big else f"differs: {len(back)} bytes"
        out["pong"] = ws.ping(b"p").wait(10)
        ws.send("close")
        try:
            ws.recv(timeout=10)
            out["closed"] = "not closed"
        except ConnectionClosed as e:
            out["closed"] = [e.rcvd.code, e.rcvd.reason] if e.rcvd else "no close frame"
except Exception as e:  # what failed, for the test's message
    out["error"] = f"{type(e).__name__}: {e}"
print(json.dumps(out))
