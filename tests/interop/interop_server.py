#!/usr/bin/env python3
"""grpcio reference server for the gRPC interop cases (interop-test-descriptions.md, "Server").

Usage: interop_server.py --port P [--use_tls=false]
Listens on 127.0.0.1 only; stops gracefully (exit 0) on SIGTERM or SIGINT.

Implements grpc.testing.TestService: EmptyCall, UnaryCall, CacheableUnaryCall,
StreamingOutputCall, StreamingInputCall, FullDuplexCall, HalfDuplexCall, with
Echo Status, Echo Metadata, CompressedRequest, CompressedResponse and
ResponseParameters.interval_us. UnimplementedCall and UnimplementedService are
not registered, so grpcio answers them with UNIMPLEMENTED.

CompressedRequest: grpcio strips `grpc-encoding` and decompresses before the
handler runs, so the server is started with per-message decompression off and
decompresses in interop_common.decoder(), which records each message's
compressed flag. As in grpc's C++ server, `expect_compressed: true` needs a
compressed message and `expect_compressed: false` an uncompressed one; a request
without the field may be either.
"""

import argparse
import signal
import sys
import threading
import time
from concurrent import futures

import grpc

from interop_common import (
    CODE_BY_NUMBER,
    NO_DECOMPRESSION,
    decoder,
    empty_pb2,
    encode,
    messages_pb2,
    parse_bool,
    zeros,
)

ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


def start_call(context, compress, extra_initial=()):
    """Echo Metadata, after choosing the call's compression.

    grpcio fixes the call's compression when it sends the initial metadata, so
    set_compression() must come first.
    """
    if compress:
        context.set_compression(grpc.Compression.Gzip)
    md = dict(context.invocation_metadata())
    initial = list(extra_initial)
    if ECHO_INITIAL in md:
        initial.append((ECHO_INITIAL, md[ECHO_INITIAL]))
    if initial:
        context.send_initial_metadata(initial)
    if ECHO_TRAILING in md:
        context.set_trailing_metadata([(ECHO_TRAILING, md[ECHO_TRAILING])])


def check_compression(context, decoded):
    """CompressedRequest: INVALID_ARGUMENT when expect_compressed is not met."""
    if decoded.msg.HasField("expect_compressed"):
        want = decoded.msg.expect_compressed.value
        if want != decoded.compressed:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"expect_compressed={want} but the request was "
                + ("compressed" if decoded.compressed else "uncompressed"),
            )


def echo_status(context, request):
    """Echo Status: end the call with the requested code and message."""
    if request.HasField("response_status") and request.response_status.code != 0:
        status = request.response_status
        context.abort(CODE_BY_NUMBER.get(status.code, grpc.StatusCode.UNKNOWN), status.message)


def check_type(context, request):
    if request.response_type != messages_pb2.COMPRESSABLE:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported response_type")


def stream_replies(context, request):
    """One reply per ResponseParameters, sleeping interval_us before each."""
    for params in request.response_parameters:
        if params.interval_us > 0:
            time.sleep(params.interval_us / 1e6)
        if not (params.HasField("compressed") and params.compressed.value):
            context.disable_next_message_compression()
        yield messages_pb2.StreamingOutputCallResponse(payload=zeros(params.size))


def wants_compression(request):
    return any(p.compressed.value for p in request.response_parameters)


def empty_call(decoded, context):
    start_call(context, False)
    return empty_pb2.Empty()


def unary_call(decoded, context):
    request = decoded.msg
    start_call(context, request.response_compressed.value)
    check_compression(context, decoded)
    echo_status(context, request)
    check_type(context, request)
    return messages_pb2.SimpleResponse(payload=zeros(request.response_size))


def cacheable_unary_call(decoded, context):
    # The request is ignored; a proxy in between may cache this for 60 s.
    start_call(context, False, [("cache-control", "max-age=60, public")])
    stamp = str(time.time_ns()).encode()
    return messages_pb2.SimpleResponse(payload=messages_pb2.Payload(body=stamp))


def streaming_input_call(decoded_iter, context):
    start_call(context, False)
    total = 0
    for decoded in decoded_iter:
        check_compression(context, decoded)
        total += len(decoded.msg.payload.body)
    return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=total)


def streaming_output_call(decoded, context):
    request = decoded.msg
    start_call(context, wants_compression(request))
    echo_status(context, request)
    check_type(context, request)
    yield from stream_replies(context, request)


def full_duplex_call(decoded_iter, context):
    # The initial metadata waits for the first request: only it can tell whether
    # the call should be compressed (see start_call).
    started = False
    for decoded in decoded_iter:
        request = decoded.msg
        if not started:
            start_call(context, wants_compression(request))
            started = True
        echo_status(context, request)
        check_type(context, request)
        yield from stream_replies(context, request)
    if not started:
        start_call(context, False)


def half_duplex_call(decoded_iter, context):
    requests = [d.msg for d in decoded_iter]
    start_call(context, any(wants_compression(r) for r in requests))
    for request in requests:
        echo_status(context, request)
        check_type(context, request)
        yield from stream_replies(context, request)


def handlers():
    m = messages_pb2
    simple = dict(request_deserializer=decoder(m.SimpleRequest), response_serializer=encode)
    output = dict(request_deserializer=decoder(m.StreamingOutputCallRequest), response_serializer=encode)
    methods = {
        "EmptyCall": grpc.unary_unary_rpc_method_handler(
            empty_call, request_deserializer=decoder(empty_pb2.Empty), response_serializer=encode
        ),
        "UnaryCall": grpc.unary_unary_rpc_method_handler(unary_call, **simple),
        "CacheableUnaryCall": grpc.unary_unary_rpc_method_handler(cacheable_unary_call, **simple),
        "StreamingInputCall": grpc.stream_unary_rpc_method_handler(
            streaming_input_call,
            request_deserializer=decoder(m.StreamingInputCallRequest),
            response_serializer=encode,
        ),
        "StreamingOutputCall": grpc.unary_stream_rpc_method_handler(streaming_output_call, **output),
        "FullDuplexCall": grpc.stream_stream_rpc_method_handler(full_duplex_call, **output),
        "HalfDuplexCall": grpc.stream_stream_rpc_method_handler(half_duplex_call, **output),
        # UnimplementedCall: deliberately absent.
    }
    return grpc.method_handlers_generic_handler("grpc.testing.TestService", methods)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--use_tls", type=parse_bool, default=False)
    args = parser.parse_args()
    if args.use_tls:
        sys.exit("interop_server.py: --use_tls=true is not supported (plaintext only)")

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16), handlers=[handlers()], options=NO_DECOMPRESSION
    )
    if server.add_insecure_port(f"127.0.0.1:{args.port}") == 0:
        sys.exit(f"interop_server.py: cannot listen on 127.0.0.1:{args.port}")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    server.start()
    print(f"interop_server.py listening on 127.0.0.1:{args.port}", flush=True)
    while not stop.wait(0.5):  # a timeout keeps the main thread responsive to signals
        pass
    # Graceful: refuse new calls, give running ones 2 s, then cancel them.
    server.stop(grace=2).wait()
    print("interop_server.py stopped", flush=True)


if __name__ == "__main__":
    main()
