"""Stock Python gRPC tools against `rawgrpc serve`: grpcio-health-checking's
generated Health stub and grpcio-reflection's ProtoReflectionDescriptorDatabase.

Nothing here is generated from rawgrpc's .proto files: the health stub ships
with grpcio-health-checking, and the UserService client is built only from
what the server's reflection service returns.

Usage (run.sh calls it):
  tools_client.py --addr HOST:PORT health            Check "", UserService, unknown
  tools_client.py --addr HOST:PORT reflection        list, files, dynamic calls
  tools_client.py --addr HOST:PORT watch-shutdown --pid PID
        Watch("") and Watch("nope"), SIGTERM to PID, NOT_SERVING, stream end

Prints `ok - ...` / `not ok - ...` per check; exits 1 if any failed.
"""

import argparse
import os
import signal
import sys
import threading

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

TIMEOUT = 10  # seconds, every unary call
FAILED = 0

SERVICES = {
    "UserService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
}


def check(ok, desc, detail=""):
    global FAILED
    if ok:
        print(f"ok - {desc}", flush=True)
    else:
        FAILED += 1
        print(f"not ok - {desc}{': ' + str(detail) if detail else ''}", flush=True)


def status_name(status):
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


def channel_to(addr):
    # No proxy for a loopback server, whatever the environment says.
    return grpc.insecure_channel(addr, options=[("grpc.enable_http_proxy", 0)])


# --- health ------------------------------------------------------------------


def health(addr):
    with channel_to(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        for service in ("", "UserService"):
            try:
                reply = stub.Check(
                    health_pb2.HealthCheckRequest(service=service), timeout=TIMEOUT
                )
                check(
                    reply.status == health_pb2.HealthCheckResponse.SERVING,
                    f"health Check({service!r}) is SERVING",
                    status_name(reply.status),
                )
            except grpc.RpcError as e:
                check(False, f"health Check({service!r}) is SERVING", e)
        try:
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service="nope"), timeout=TIMEOUT
            )
            check(False, "health Check('nope') fails with NOT_FOUND", reply)
        except grpc.RpcError as e:
            check(
                e.code() == grpc.StatusCode.NOT_FOUND,
                "health Check('nope') fails with NOT_FOUND",
                e.code(),
            )


def next_or_end(stream, timeout):
    """The next message of a server stream, "END" at its end, or the RpcError,
    waiting at most `timeout` seconds (then "TIMEOUT")."""
    result = ["TIMEOUT"]

    def read():
        try:
            result[0] = next(stream)
        except StopIteration:
            result[0] = "END"
        except grpc.RpcError as e:
            result[0] = e

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return result[0]


def watch_shutdown(addr, pid):
    with channel_to(addr) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        # A deadline bounds the whole stream.
        whole = stub.Watch(health_pb2.HealthCheckRequest(service=""), timeout=60)
        unknown = stub.Watch(health_pb2.HealthCheckRequest(service="nope"), timeout=60)
        first = next_or_end(whole, TIMEOUT)
        check(
            getattr(first, "status", None) == health_pb2.HealthCheckResponse.SERVING,
            "health Watch('') first sends SERVING",
            first,
        )
        first = next_or_end(unknown, TIMEOUT)
        check(
            getattr(first, "status", None)
            == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN,
            "health Watch('nope') first sends SERVICE_UNKNOWN and stays open",
            first,
        )
        print(f"# sending SIGTERM to the server (pid {pid})", flush=True)
        os.kill(pid, signal.SIGTERM)
        update = next_or_end(whole, TIMEOUT)
        check(
            getattr(update, "status", None)
            == health_pb2.HealthCheckResponse.NOT_SERVING,
            "health Watch('') sends NOT_SERVING after SIGTERM",
            update,
        )
        end = next_or_end(whole, TIMEOUT)
        check(end == "END", "health Watch('') then ends with OK as the server drains", end)
        end = next_or_end(unknown, TIMEOUT)
        check(end == "END", "health Watch('nope') ends with OK as the server drains", end)


# --- reflection --------------------------------------------------------------


def reflection(addr):
    with channel_to(addr) as channel:
        db = ProtoReflectionDescriptorDatabase(channel)
        try:
            services = set(db.get_services())
        except grpc.RpcError as e:
            check(False, "reflection v1alpha lists the services", e)
            return
        check(
            services == SERVICES,
            "reflection v1alpha lists exactly the four services",
            sorted(services),
        )
        pool = descriptor_pool.DescriptorPool(db)

        # UserService's file, as the server describes it.
        try:
            service = pool.FindServiceByName("UserService")
        except KeyError as e:
            check(False, "reflection resolves UserService", e)
            return
        check(
            service.file.name == "user.proto"
            and sorted(m.name for m in service.methods) == ["CreateUser", "GetUser"],
            "reflection: UserService comes from user.proto with GetUser and CreateUser",
            (service.file.name, [m.name for m in service.methods]),
        )
        proto = descriptor_pb2.FileDescriptorProto()
        service.file.CopyToProto(proto)
        user = next((m for m in proto.message_type if m.name == "User"), None)
        fields = [(f.name, f.number) for f in user.field] if user else None
        check(
            fields == [("name", 1), ("email", 2), ("age", 3), ("id", 4)],
            "reflection: user.proto's User has name=1 email=2 age=3 id=4",
            fields,
        )

        # A file with imports: the pool must resolve types across files.
        try:
            method = pool.FindMethodByName("grpc.testing.TestService.UnaryCall")
            payload = method.input_type.fields_by_name["payload"].message_type
            check(
                method.input_type.full_name == "grpc.testing.SimpleRequest"
                and payload.file.name == "grpc/testing/messages.proto"
                and pool.FindFileByName("grpc/testing/empty.proto").name
                == "grpc/testing/empty.proto",
                "reflection: test.proto arrives with its imports (messages, empty)",
                (method.input_type.full_name, payload.file.name),
            )
        except KeyError as e:
            check(False, "reflection: test.proto arrives with its imports", e)
        try:
            status = pool.FindEnumTypeByName(
                "grpc.health.v1.HealthCheckResponse.ServingStatus"
            )
            check(
                [v.name for v in status.values]
                == ["UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"],
                "reflection: the nested enum HealthCheckResponse.ServingStatus resolves",
                [v.name for v in status.values],
            )
        except KeyError as e:
            check(False, "reflection: the nested enum resolves", e)
        try:
            db.FindFileContainingSymbol("no.such.Symbol")
            check(False, "reflection: an unknown symbol is not found", "found")
        except KeyError:
            check(True, "reflection: an unknown symbol is not found (NOT_FOUND error_response)")

        dynamic_calls(channel, pool)
        reflection_v1(channel)


def dynamic_calls(channel, pool):
    """GetUser / CreateUser through classes made from the reflected descriptors."""
    service = pool.FindServiceByName("UserService")
    stubs = {}
    for method in service.methods:
        request = message_factory.GetMessageClass(method.input_type)
        reply = message_factory.GetMessageClass(method.output_type)
        stubs[method.name] = (
            request,
            channel.unary_unary(
                f"/{service.full_name}/{method.name}",
                request_serializer=request.SerializeToString,
                response_deserializer=reply.FromString,
            ),
        )
    create_request, create = stubs["CreateUser"]
    get_request, get = stubs["GetUser"]
    try:
        created = create(
            create_request(user={"name": "Ada", "email": "ada@example.com", "age": 36}),
            timeout=TIMEOUT,
        ).user
        check(
            created.name == "Ada" and created.age == 36 and created.id != "",
            "dynamic client: CreateUser returns the user with an id",
            created,
        )
        fetched = get(get_request(user={"id": created.id}), timeout=TIMEOUT).user
        check(
            fetched == created,
            f"dynamic client: GetUser({created.id}) returns the same user",
            fetched,
        )
    except grpc.RpcError as e:
        check(False, "dynamic client: CreateUser then GetUser", e)
    try:
        get(get_request(user={"id": "nobody-7"}), timeout=TIMEOUT)
        check(False, "dynamic client: GetUser of an unknown id is NOT_FOUND", "OK")
    except grpc.RpcError as e:
        check(
            e.code() == grpc.StatusCode.NOT_FOUND and "nobody-7" in (e.details() or ""),
            "dynamic client: GetUser of an unknown id is NOT_FOUND naming it",
            (e.code(), e.details()),
        )


def reflection_v1(channel):
    """grpcio-reflection's client speaks v1alpha only; v1's messages are the same
    on the wire, so v1 is asked with v1alpha's classes at v1's path."""
    call = channel.stream_stream(
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    questions = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="grpc.health.v1.Health.Watch"),
        reflection_pb2.ServerReflectionRequest(file_by_filename="nope.proto"),
    ]
    try:
        answers = list(call(iter(questions), timeout=TIMEOUT))
    except grpc.RpcError as e:
        check(False, "reflection v1 answers on one stream", e)
        return
    check(len(answers) == 3, "reflection v1: one answer per question", len(answers))
    if len(answers) != 3:
        return
    names = {s.name for s in answers[0].list_services_response.service}
    check(names == SERVICES, "reflection v1 lists exactly the four services", sorted(names))
    files = []
    for raw in answers[1].file_descriptor_response.file_descriptor_proto:
        f = descriptor_pb2.FileDescriptorProto()
        f.ParseFromString(raw)
        files.append(f.name)
    check(
        files == ["grpc/health/v1/health.proto"],
        "reflection v1: grpc.health.v1.Health.Watch is in grpc/health/v1/health.proto",
        files,
    )
    check(
        answers[2].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0],
        "reflection v1: an unknown file is a NOT_FOUND error_response",
        answers[2],
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", required=True)
    parser.add_argument("what", choices=["health", "reflection", "watch-shutdown"])
    parser.add_argument("--pid", type=int)
    args = parser.parse_args()
    if args.what == "health":
        health(args.addr)
    elif args.what == "reflection":
        reflection(args.addr)
    else:
        watch_shutdown(args.addr, args.pid)
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
