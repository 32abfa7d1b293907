"""The article's Python client, made runnable, plus the checks rawgrpc must pass.

Prints one `ok - ...` / `not ok - ...` line per check (run.sh counts them) and
exits 1 if any check failed.
"""
import argparse
import sys

import grpc

import user_pb2
import user_pb2_grpc

DEADLINE = 10  # seconds; every call except the article's own two is bounded
failures = 0


def report(desc, good, details=""):
    global failures
    if good:
        print(f"ok - {desc}", flush=True)
    else:
        failures += 1
        print(f"not ok - {desc}: {details}", flush=True)


def check(desc, fn):
    """Run fn(); it returns (good, details). An exception is a failure, not a crash."""
    try:
        good, details = fn()
    except grpc.RpcError as e:
        good, details = False, f"unexpected {e.code()}: {e.details()}"
    except Exception as e:  # noqa: BLE001 - report anything, keep going
        good, details = False, f"{type(e).__name__}: {e}"
    report(desc, good, details)


def expect_error(desc, codes, fn, detail_must_contain=None):
    """fn() must raise an RpcError with a code in `codes` (first is preferred)."""
    def run():
        try:
            fn()
        except grpc.RpcError as e:
            if e.code() not in codes:
                return False, f"got {e.code()}: {e.details()!r}"
            if detail_must_contain and detail_must_contain not in (e.details() or ""):
                return False, f"details {e.details()!r} lack {detail_must_contain!r}"
            print(f"# {desc}: {e.code()}: {e.details()}", flush=True)
            return True, ""
        return False, f"succeeded, expected {codes[0]}"
    check(desc, run)


def same_user(a, b):
    return (a.name, a.email, a.age, a.id) == (b.name, b.email, b.age, b.id)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--addr", default="127.0.0.1:50051")
    args = parser.parse_args()

    channel = grpc.insecure_channel(args.addr)
    stub = user_pb2_grpc.UserServiceStub(channel)
    try:
        grpc.channel_ready_future(channel).result(timeout=DEADLINE)
        report("channel connects", True)
    except grpc.FutureTimeoutError:
        report("channel connects", False, f"not ready within {DEADLINE}s")
        return 1

    # The article's two calls, as written there (no deadline): create, then get.
    created = None
    def create():
        nonlocal created
        user = user_pb2.User(name="Ada Lovelace", email="ada@example.com", age=36)
        response = stub.CreateUser(user_pb2.CreateUserRequest(user=user))
        print(response.user, flush=True)
        created = response.user
        u = response.user
        good = (u.name, u.email, u.age) == (user.name, user.email, user.age) and u.id != ""
        return good, f"got {u!r}"
    check("CreateUser echoes the user with a server-assigned id", create)
    created = created or user_pb2.User(id="(create failed)")

    def get():
        user = user_pb2.User(id=created.id)
        response = stub.GetUser(user_pb2.UserRequest(user=user))
        print(response.user, flush=True)
        return same_user(response.user, created), f"got {response.user!r}"
    check("GetUser returns the created user", get)

    def create_fixed():
        u = stub.CreateUser(user_pb2.CreateUserRequest(
            user=user_pb2.User(name="Fixed", email="f@example.com", age=1, id="fixed-1")),
            timeout=DEADLINE).user
        return u.id == "fixed-1", f"got id {u.id!r}"
    check("CreateUser keeps an explicit id", create_fixed)
    expect_error("CreateUser of an existing id is ALREADY_EXISTS", [grpc.StatusCode.ALREADY_EXISTS],
                 lambda: stub.CreateUser(user_pb2.CreateUserRequest(
                     user=user_pb2.User(name="Again", id="fixed-1")), timeout=DEADLINE))

    expect_error("GetUser of an unknown id is NOT_FOUND naming the id", [grpc.StatusCode.NOT_FOUND],
                 lambda: stub.GetUser(user_pb2.UserRequest(user=user_pb2.User(id="nope-42")),
                                      timeout=DEADLINE),
                 detail_must_contain="nope-42")
    expect_error("GetUser with an empty id is INVALID_ARGUMENT", [grpc.StatusCode.INVALID_ARGUMENT],
                 lambda: stub.GetUser(user_pb2.UserRequest(user=user_pb2.User()), timeout=DEADLINE))
    expect_error("GetUser with no user is INVALID_ARGUMENT", [grpc.StatusCode.INVALID_ARGUMENT],
                 lambda: stub.GetUser(user_pb2.UserRequest(), timeout=DEADLINE))
    expect_error("CreateUser with no user is INVALID_ARGUMENT", [grpc.StatusCode.INVALID_ARGUMENT],
                 lambda: stub.CreateUser(user_pb2.CreateUserRequest(), timeout=DEADLINE))

    # Methods the server does not have: generic calls by path.
    for path in ("/UserService/DeleteUser", "/NoSuchService/Foo"):
        call = channel.unary_unary(path,
                                   request_serializer=user_pb2.UserRequest.SerializeToString,
                                   response_deserializer=user_pb2.UserResponse.FromString)
        expect_error(f"{path} is UNIMPLEMENTED", [grpc.StatusCode.UNIMPLEMENTED],
                     lambda call=call: call(user_pb2.UserRequest(user=created), timeout=DEADLINE))

    get_req = user_pb2.UserRequest(user=user_pb2.User(id=created.id))
    check("GetUser with a 5 s deadline succeeds",
          lambda: (same_user(stub.GetUser(get_req, timeout=5).user, created), "user differs"))
    check("GetUser with custom metadata succeeds",
          lambda: (same_user(stub.GetUser(get_req, timeout=DEADLINE,
                                          metadata=(("x-test", "yes"),)).user, created),
                   "user differs"))

    def concurrent():
        futs = [stub.GetUser.future(get_req, timeout=DEADLINE) for _ in range(50)]
        bad = [f for f in futs if not same_user(f.result().user, created)]
        return not bad, f"{len(bad)} of 50 returned a different user"
    check("50 concurrent GetUser calls on one channel succeed", concurrent)

    def large():
        name = "x" * 100_000
        u = stub.CreateUser(user_pb2.CreateUserRequest(
            user=user_pb2.User(name=name, email="big@example.com", age=7)), timeout=DEADLINE).user
        back = stub.GetUser(user_pb2.UserRequest(user=user_pb2.User(id=u.id)),
                            timeout=DEADLINE).user
        return (u.name == name and back.name == name and back.id == u.id,
                f"lengths {len(u.name)}/{len(back.name)}")
    check("100 000-character name survives create and get (multi-frame DATA)", large)

    # Bytes that are not a valid UserRequest: the server must fail the call, not hang or die.
    raw = channel.unary_unary("/UserService/GetUser",
                              request_serializer=lambda b: b, response_deserializer=lambda b: b)
    expect_error("malformed request bytes give INTERNAL (or INVALID_ARGUMENT)",
                 [grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT],
                 lambda: raw(b"\xff\xff\xff\xff\x0f", timeout=DEADLINE))
    check("GetUser still works after the malformed request",
          lambda: (same_user(stub.GetUser(get_req, timeout=DEADLINE).user, created),
                   "user differs"))

    channel.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
