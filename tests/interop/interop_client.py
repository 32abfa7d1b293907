#!/usr/bin/env python3
"""grpcio reference client for the gRPC interop cases (interop-test-descriptions.md, "Client").

Usage: interop_client.py --server_host H --server_port P --test_case NAME [--use_tls=false]
Exit status 0 iff the case passed; on failure the reason is printed (2: bad usage).

Response compression is checked for real: the channel is built with per-message
decompression off and interop_common.decoder() decompresses, recording each
message's compressed flag (grpcio exposes that flag no other way).
Every call has a 30 s deadline (except timeout_on_sleeping_server's 1 ms) so a
stuck server fails the case instead of hanging it.
"""

import argparse
import queue
import sys

import grpc
from grpc._cython import cygrpc

from interop_common import NO_DECOMPRESSION, decoder, empty_pb2, encode, messages_pb2, parse_bool, zeros

m = messages_pb2
DEADLINE = 30.0
ECHO_INITIAL = ("x-grpc-test-echo-initial", "test_initial_metadata_value")
ECHO_TRAILING = ("x-grpc-test-echo-trailing-bin", b"\xab\xab\xab")
CASES = {}


class Failure(Exception):
    pass


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def expect(cond, what):
    if not cond:
        raise Failure(what)


def expect_payload(payload, size, what="response"):
    expect(payload.type == m.COMPRESSABLE, f"{what}: payload type {payload.type}, want COMPRESSABLE")
    expect(len(payload.body) == size, f"{what}: payload body is {len(payload.body)} bytes, want {size}")
    expect(payload.body == bytes(size), f"{what}: payload body is not all zeros")


def expect_status(code, details, fn):
    """Runs fn, which must fail with `code` (and `details`, unless None)."""
    try:
        fn()
    except grpc.RpcError as e:
        expect(e.code() == code, f"status {e.code()} ({e.details()!r}), want {code}")
        if details is not None:
            expect(e.details() == details, f"status message {e.details()!r}, want {details!r}")
        return
    raise Failure(f"call succeeded, want status {code}")


class Requests:
    """A request stream the case feeds one message at a time (ping-pong), or
    leaves open (no half-close) until close()."""

    def __init__(self, *msgs):
        self.q = queue.Queue()
        for msg in msgs:
            self.q.put(msg)

    def send(self, msg):
        self.q.put(msg)

    def close(self):
        self.q.put(None)

    def __iter__(self):
        return self

    def __next__(self):
        msg = self.q.get()
        if msg is None:
            raise StopIteration
        return msg


def uncompressed_in_compressed_call(items):
    """Yields (msg, compress) items; those with compress=False are sent uncompressed.

    C++ does this with WriteOptions::set_no_compression(); grpcio has no public
    per-message switch on the client side. grpcio reads the module constant
    grpc._channel._EMPTY_FLAGS when it builds each send operation, right after
    taking the message from this generator (on the same thread), so setting it to
    gRPC core's no-compress write flag affects exactly that message.
    """
    if not hasattr(grpc._channel, "_EMPTY_FLAGS"):
        raise Failure("this grpcio has no grpc._channel._EMPTY_FLAGS: cannot send a message uncompressed")
    for msg, compress in items:
        grpc._channel._EMPTY_FLAGS = 0 if compress else cygrpc.WriteFlag.no_compress
        try:
            yield msg
        finally:
            grpc._channel._EMPTY_FLAGS = 0


class Stub:
    """TestService methods with compression-aware deserializers (see interop_common)."""

    def __init__(self, channel):
        def rpc(kind, name, response_type, service="grpc.testing.TestService"):
            return getattr(channel, kind)(
                f"/{service}/{name}", request_serializer=encode, response_deserializer=decoder(response_type)
            )

        self.EmptyCall = rpc("unary_unary", "EmptyCall", empty_pb2.Empty)
        self.UnaryCall = rpc("unary_unary", "UnaryCall", m.SimpleResponse)
        self.StreamingInputCall = rpc("stream_unary", "StreamingInputCall", m.StreamingInputCallResponse)
        self.StreamingOutputCall = rpc("unary_stream", "StreamingOutputCall", m.StreamingOutputCallResponse)
        self.FullDuplexCall = rpc("stream_stream", "FullDuplexCall", m.StreamingOutputCallResponse)
        self.UnimplementedCall = rpc("unary_unary", "UnimplementedCall", empty_pb2.Empty)
        self.UnimplementedServiceCall = rpc(
            "unary_unary", "UnimplementedCall", empty_pb2.Empty, service="grpc.testing.UnimplementedService"
        )


def streaming_request(sizes, body=0):
    params = [m.ResponseParameters(size=s) for s in sizes]
    return m.StreamingOutputCallRequest(response_parameters=params, payload=zeros(body) if body else None)


@case
def empty_unary(stub):
    resp = stub.EmptyCall(empty_pb2.Empty(), timeout=DEADLINE)
    expect(isinstance(resp.msg, empty_pb2.Empty), "response is not an Empty")


@case
def large_unary(stub):
    req = m.SimpleRequest(response_size=314159, payload=zeros(271828))
    expect_payload(stub.UnaryCall(req, timeout=DEADLINE).msg.payload, 314159)


@case
def client_compressed_unary(stub):
    def req(expect_compressed):
        return m.SimpleRequest(
            expect_compressed=m.BoolValue(value=expect_compressed), response_size=314159, payload=zeros(271828)
        )

    none, gzip = grpc.Compression.NoCompression, grpc.Compression.Gzip
    # Probe: uncompressed although expect_compressed=true; the server must refuse it.
    expect_status(grpc.StatusCode.INVALID_ARGUMENT, None, lambda: stub.UnaryCall(req(True), timeout=DEADLINE, compression=none))
    for expected, compression in ((True, gzip), (False, none)):
        resp = stub.UnaryCall(req(expected), timeout=DEADLINE, compression=compression)
        expect_payload(resp.msg.payload, 314159, f"expect_compressed={expected}")


@case
def server_compressed_unary(stub):
    for compressed in (True, False):
        req = m.SimpleRequest(
            response_compressed=m.BoolValue(value=compressed), response_size=314159, payload=zeros(271828)
        )
        resp = stub.UnaryCall(req, timeout=DEADLINE)
        expect(resp.compressed == compressed, f"response_compressed={compressed} but the response's compressed flag is {resp.compressed}")
        expect_payload(resp.msg.payload, 314159, f"response_compressed={compressed}")


@case
def client_streaming(stub):
    reqs = [m.StreamingInputCallRequest(payload=zeros(n)) for n in (27182, 8, 1828, 45904)]
    resp = stub.StreamingInputCall(iter(reqs), timeout=DEADLINE)
    expect(resp.msg.aggregated_payload_size == 74922, f"aggregated_payload_size {resp.msg.aggregated_payload_size}, want 74922")


@case
def client_compressed_streaming(stub):
    def req(expect_compressed, size):
        return m.StreamingInputCallRequest(expect_compressed=m.BoolValue(value=expect_compressed), payload=zeros(size))

    # Probe: one uncompressed message with expect_compressed=true; must be refused.
    expect_status(
        grpc.StatusCode.INVALID_ARGUMENT,
        None,
        lambda: stub.StreamingInputCall(iter([req(True, 27182)]), timeout=DEADLINE, compression=grpc.Compression.NoCompression),
    )
    # A gzip call whose first message is compressed and second is not.
    msgs = uncompressed_in_compressed_call([(req(True, 27182), True), (req(False, 45904), False)])
    resp = stub.StreamingInputCall(msgs, timeout=DEADLINE, compression=grpc.Compression.Gzip)
    expect(resp.msg.aggregated_payload_size == 73086, f"aggregated_payload_size {resp.msg.aggregated_payload_size}, want 73086")


@case
def server_streaming(stub):
    sizes = [31415, 9, 2653, 58979]
    resps = list(stub.StreamingOutputCall(streaming_request(sizes), timeout=DEADLINE))
    expect(len(resps) == 4, f"{len(resps)} responses, want 4")
    for i, (resp, size) in enumerate(zip(resps, sizes)):
        expect_payload(resp.msg.payload, size, f"response {i}")


@case
def server_compressed_streaming(stub):
    plan = [(True, 31415), (False, 92653)]
    params = [m.ResponseParameters(compressed=m.BoolValue(value=c), size=s) for c, s in plan]
    resps = list(stub.StreamingOutputCall(m.StreamingOutputCallRequest(response_parameters=params), timeout=DEADLINE))
    expect(len(resps) == 2, f"{len(resps)} responses, want 2")
    for i, (resp, (compressed, size)) in enumerate(zip(resps, plan)):
        expect(resp.compressed == compressed, f"response {i}: compressed flag {resp.compressed}, want {compressed}")
        expect_payload(resp.msg.payload, size, f"response {i}")


@case
def ping_pong(stub):
    reqs = Requests()
    call = stub.FullDuplexCall(reqs, timeout=DEADLINE)
    try:
        for i, (size, body) in enumerate([(31415, 27182), (9, 8), (2653, 1828), (58979, 45904)]):
            reqs.send(streaming_request([size], body))
            resp = next(call, None)
            expect(resp is not None, f"stream ended before response {i}")
            expect_payload(resp.msg.payload, size, f"response {i}")
    finally:
        reqs.close()  # half-close
    rest = list(call)
    expect(not rest, f"{len(rest)} extra responses after the fourth")
    expect(call.code() == grpc.StatusCode.OK, f"status {call.code()}, want OK")


@case
def empty_stream(stub):
    resps = list(stub.FullDuplexCall(iter([]), timeout=DEADLINE))
    expect(not resps, f"{len(resps)} responses, want 0")


@case
def timeout_on_sleeping_server(stub):
    # The request stream stays open (no half-close): the call can only end by
    # the 1 ms deadline.
    reqs = Requests(m.StreamingOutputCallRequest(payload=zeros(27182)))
    try:
        expect_status(grpc.StatusCode.DEADLINE_EXCEEDED, None, lambda: list(stub.FullDuplexCall(reqs, timeout=0.001)))
    finally:
        reqs.close()  # releases grpcio's request-sending thread


@case
def cancel_after_begin(stub):
    reqs = Requests()  # never sends a message
    call = stub.StreamingInputCall.future(reqs, timeout=DEADLINE)
    try:
        call.cancel()
        expect(call.code() == grpc.StatusCode.CANCELLED, f"status {call.code()}, want CANCELLED")
    finally:
        reqs.close()


@case
def cancel_after_first_response(stub):
    reqs = Requests(streaming_request([31415], 27182))
    call = stub.FullDuplexCall(reqs, timeout=DEADLINE)
    try:
        resp = next(call, None)
        expect(resp is not None, "stream ended before the first response")
        expect_payload(resp.msg.payload, 31415)
        call.cancel()
        expect(call.code() == grpc.StatusCode.CANCELLED, f"status {call.code()}, want CANCELLED")
    finally:
        reqs.close()


def expect_echoed_metadata(call, what):
    initial, trailing = dict(call.initial_metadata() or ()), dict(call.trailing_metadata() or ())
    key, value = ECHO_INITIAL
    expect(initial.get(key) == value, f"{what}: initial metadata {key}={initial.get(key)!r}, want {value!r}")
    key, value = ECHO_TRAILING
    expect(trailing.get(key) == value, f"{what}: trailing metadata {key}={trailing.get(key)!r}, want {value!r}")


@case
def custom_metadata(stub):
    md = (ECHO_INITIAL, ECHO_TRAILING)
    req = m.SimpleRequest(response_size=314159, payload=zeros(271828))
    resp, call = stub.UnaryCall.with_call(req, metadata=md, timeout=DEADLINE)
    expect_payload(resp.msg.payload, 314159, "UnaryCall")
    expect_echoed_metadata(call, "UnaryCall")

    call = stub.FullDuplexCall(iter([streaming_request([314159], 271828)]), metadata=md, timeout=DEADLINE)
    resps = list(call)
    expect(len(resps) == 1, f"FullDuplexCall: {len(resps)} responses, want 1")
    expect_payload(resps[0].msg.payload, 314159, "FullDuplexCall")
    expect_echoed_metadata(call, "FullDuplexCall")


def expect_echoed_status(stub, message, duplex=True):
    status = m.EchoStatus(code=2, message=message)
    expect_status(
        grpc.StatusCode.UNKNOWN, message, lambda: stub.UnaryCall(m.SimpleRequest(response_status=status), timeout=DEADLINE)
    )
    if duplex:
        reqs = iter([m.StreamingOutputCallRequest(response_status=status)])
        expect_status(grpc.StatusCode.UNKNOWN, message, lambda: list(stub.FullDuplexCall(reqs, timeout=DEADLINE)))


@case
def status_code_and_message(stub):
    expect_echoed_status(stub, "test status message")


@case
def special_status_message(stub):
    expect_echoed_status(stub, "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n", duplex=False)


@case
def unimplemented_method(stub):
    expect_status(grpc.StatusCode.UNIMPLEMENTED, None, lambda: stub.UnimplementedCall(empty_pb2.Empty(), timeout=DEADLINE))


@case
def unimplemented_service(stub):
    expect_status(
        grpc.StatusCode.UNIMPLEMENTED, None, lambda: stub.UnimplementedServiceCall(empty_pb2.Empty(), timeout=DEADLINE)
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server_host", default="127.0.0.1")
    parser.add_argument("--server_host_override", default="")
    parser.add_argument("--server_port", type=int, required=True)
    parser.add_argument("--test_case", required=True, choices=sorted(CASES))
    parser.add_argument("--use_tls", type=parse_bool, default=False)
    args = parser.parse_args()
    if args.use_tls:
        parser.error("--use_tls=true is not supported (plaintext only)")

    # No proxy from the environment: the server is on this machine.
    options = NO_DECOMPRESSION + [("grpc.enable_http_proxy", 0)]
    if args.server_host_override:
        options.append(("grpc.default_authority", args.server_host_override))
    with grpc.insecure_channel(f"{args.server_host}:{args.server_port}", options=options) as channel:
        try:
            CASES[args.test_case](Stub(channel))
        except Failure as e:
            print(f"FAIL {args.test_case}: {e}", file=sys.stderr)
            sys.exit(1)
        except grpc.RpcError as e:
            print(f"FAIL {args.test_case}: unexpected status {e.code()}: {e.details()!r}", file=sys.stderr)
            sys.exit(1)
    print(f"PASS {args.test_case}")


if __name__ == "__main__":
    main()
