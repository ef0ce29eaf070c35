"""A gRPC server on python grpcio (gRPC C-core), with generic byte handlers so no generated
code is needed. Prints its port, then serves until killed.

echo.Echo/Unary: answers b"echo:<request>:<x-meta metadata>", sets trailing metadata
x-trailer: t1; a request of b"fail" ends with INVALID_ARGUMENT "bad input" and binary
details in grpc-status-details-bin.
echo.Echo/Stream: answers three messages, request + "0", "1", "2".
echo.Echo/Collect: a client stream, answered with the messages joined by ",".
echo.Echo/Chat: bidirectional, each message answered with "re:" + message.
echo.Echo/Slow: answers after 3 s (for deadlines).
grpc.health.v1.Health: echo.Echo is SERVING.
"""
import sys
from concurrent import futures

import time

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


DETAILS = b"\x08\x03\x12\x09bad input"


def unary(req, ctx):
    md = dict(ctx.invocation_metadata())
    if req == b"fail":
        # Rich error details (a google.rpc.Status, code 3, message "bad input"), binary.
        ctx.set_trailing_metadata((("x-trailer", "t1"), ("grpc-status-details-bin", DETAILS)))
        ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad input")
    ctx.set_trailing_metadata((("x-trailer", "t1"),))
    return b"echo:" + req + b":" + md.get("x-meta", "").encode()


def stream(req, ctx):
    for i in range(3):
        yield req + str(i).encode()


def collect(reqs, ctx):
    return b",".join(reqs)


def slow(req, ctx):
    time.sleep(3)
    return req


def chat(reqs, ctx):
    for r in reqs:
        yield b"re:" + r


handler = grpc.method_handlers_generic_handler(
    "echo.Echo",
    {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.unary_stream_rpc_method_handler(stream),
        "Collect": grpc.stream_unary_rpc_method_handler(collect),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Slow": grpc.unary_unary_rpc_method_handler(slow),
    },
)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=64), options=[("grpc.max_receive_message_length", 8 << 20)])
server.add_generic_rpc_handlers((handler,))
health_servicer = health.HealthServicer()
health_servicer.set("echo.Echo", health_pb2.HealthCheckResponse.SERVING)
health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination()
