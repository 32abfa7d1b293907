"""grpcio over TLS against `rawgrpc serve --tls-cert --tls-key`.

Trusting the right CA, CreateUser then GetUser work (ALPN h2 negotiated by grpcio); trusting
another CA, the call fails cleanly with UNAVAILABLE. Prints `ok - ...` / `not ok - ...` lines.
"""
import argparse
import sys

import grpc
import user_pb2
import user_pb2_grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--addr", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--wrong-ca", required=True)
    args = ap.parse_args()
    failed = 0

    def check(ok, desc, detail=""):
        nonlocal failed
        print(("ok - " if ok else "not ok - ") + desc + ("" if ok else ": " + detail))
        failed += 0 if ok else 1

    # The certificate is for "localhost"; we connect to 127.0.0.1, so name it explicitly.
    options = (("grpc.ssl_target_name_override", "localhost"),)
    with open(args.ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    with grpc.secure_channel(args.addr, creds, options=options) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        try:
            user = stub.CreateUser(
                user_pb2.CreateUserRequest(user=user_pb2.User(name="Tls", age=1)), timeout=10
            ).user
            got = stub.GetUser(user_pb2.UserRequest(user=user), timeout=10).user
            check(got == user and user.id, "grpcio over TLS: CreateUser then GetUser")
        except grpc.RpcError as e:
            check(False, "grpcio over TLS: CreateUser then GetUser", f"{e.code()}: {e.details()}")

    with open(args.wrong_ca, "rb") as f:
        creds = grpc.ssl_channel_credentials(root_certificates=f.read())
    with grpc.secure_channel(args.addr, creds, options=options) as channel:
        stub = user_pb2_grpc.UserServiceStub(channel)
        try:
            stub.GetUser(user_pb2.UserRequest(user=user_pb2.User(id="x")), timeout=5)
            check(False, "grpcio with a wrong CA fails cleanly", "the call succeeded")
        except grpc.RpcError as e:
            check(e.code() == grpc.StatusCode.UNAVAILABLE, "grpcio with a wrong CA fails cleanly",
                  f"{e.code()}: {e.details()}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
