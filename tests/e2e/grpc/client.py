"""A gRPC client on python grpcio: calls every method of server.py through ADDR with the
channel authority AUTHORITY, and prints what it saw as JSON (one object)."""
import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

addr, authority = sys.argv[1], sys.argv[2]
out = {}
with grpc.insecure_channel(addr, options=[("grpc.default_authority", authority),
                                          ("grpc.max_receive_message_length", 8 << 20)]) as ch:
    unary = ch.unary_unary("/echo.Echo/Unary")
    try:
        resp, call = unary.with_call(b"hi", metadata=(("x-meta", "m1"),), timeout=10)
        out["unary"] = resp.decode()
        out["trailer"] = dict(call.trailing_metadata()).get("x-trailer")
    except grpc.RpcError as e:
        out["unary_error"] = f"{e.code().name}: {e.details()}"
    try:
        unary(b"fail", timeout=10)
        out["fail"] = "no error"
    except grpc.RpcError as e:
        out["fail"] = f"{e.code().name}: {e.details()}"
        details = dict(e.trailing_metadata() or ()).get("grpc-status-details-bin")
        out["fail_details"] = details.hex() if details else None
    try:
        out["stream"] = [m.decode() for m in ch.unary_stream("/echo.Echo/Stream")(b"s", timeout=10)]
        out["collect"] = ch.stream_unary("/echo.Echo/Collect")(iter([b"a", b"b", b"c"]), timeout=10).decode()
        out["chat"] = [m.decode() for m in ch.stream_stream("/echo.Echo/Chat")(iter([b"x", b"y"]), timeout=10)]
        big = b"z" * (3 << 20)
        out["big"] = len(unary(big, timeout=20))
        calls = [unary.future(b"c%d" % i, timeout=30) for i in range(200)]
        out["concurrent"] = sum(1 for i, c in enumerate(calls) if c.result() == b"echo:c%d:" % i)
        stub = health_pb2_grpc.HealthStub(ch)
        name = health_pb2.HealthCheckResponse.ServingStatus.Name
        req = health_pb2.HealthCheckRequest(service="echo.Echo")
        out["health"] = name(stub.Check(req, timeout=10).status)
        watch = stub.Watch(req, timeout=10)
        out["watch"] = name(next(watch).status)
        watch.cancel()
    except grpc.RpcError as e:
        out["error"] = f"{e.code().name}: {e.details()}"
    try:
        ch.unary_unary("/echo.Echo/Slow")(b"late", timeout=0.5)
        out["deadline"] = "answered"
    except grpc.RpcError as e:
        out["deadline"] = e.code().name
print(json.dumps(out), flush=True)
