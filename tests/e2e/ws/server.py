"""A WebSocket server on python websockets. Prints its port, then serves until killed.

Offers subprotocol "chat". Each text or binary message is echoed back as it came; the text
"close" is answered with a close frame, code 4001 and reason "bye". The request path and the
Host header it saw are the first message it sends.
"""
import sys

from websockets.sync.server import serve


def handler(ws):
    ws.send(f"hello {ws.request.path} {ws.request.headers.get('Host')}")
    for msg in ws:
        if msg == "close":
            ws.close(4001, "bye")
            return
        ws.send(msg)


with serve(handler, "127.0.0.1", 0, subprotocols=["chat"], max_size=8 << 20) as server:
    print(server.socket.getsockname()[1], flush=True)
    server.serve_forever()
