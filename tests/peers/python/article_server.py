"""The article's Python UserService server, made runnable and correct.

Differences from the article, and why:
  * --addr (default 127.0.0.1:50051) instead of '[::]:50051', so tests can pick
    a free loopback port;
  * errors are real gRPC status codes via context.abort(): the article returned
    UserResponse(error=...), a field the proto does not have;
  * a lock around self.users, since the thread pool runs handlers concurrently;
  * SIGTERM stops the server gracefully (server.stop(grace=2)) and exits 0.
"""
import argparse
import signal
import sys
import threading
from concurrent import futures

import grpc

import user_pb2
import user_pb2_grpc


class UserService(user_pb2_grpc.UserServiceServicer):
    def __init__(self):
        self.users = {}
        self.lock = threading.Lock()
        self.next_id = 0

    def GetUser(self, user_request, context):
        if not user_request.HasField("user") or not user_request.user.id:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "user.id is required")
        with self.lock:
            user = self.users.get(user_request.user.id, None)
        if user is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f'user "{user_request.user.id}" not found')
        return user_pb2.UserResponse(user=user)

    def CreateUser(self, user_request, context):
        if not user_request.HasField("user"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "user is required")
        user = user_pb2.User()
        user.CopyFrom(user_request.user)
        with self.lock:
            if not user.id:
                self.next_id += 1
                user.id = f"user-{self.next_id}"
            if user.id in self.users:
                context.abort(grpc.StatusCode.ALREADY_EXISTS, f'user "{user.id}" already exists')
            self.users[user.id] = user
        return user_pb2.CreateUserResponse(user=user)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1:50051")
    args = parser.parse_args()

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=10))
    user_pb2_grpc.add_UserServiceServicer_to_server(UserService(), server)
    if not server.add_insecure_port(args.addr):  # older grpcio returns 0 instead of raising
        sys.exit(f"cannot listen on {args.addr}")
    server.start()
    print(f"article_server listening on {args.addr}", flush=True)

    # The handler only sets a flag; the stop itself runs in the main loop.
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    while not stopping.wait(0.2):
        pass
    server.stop(grace=2).wait()
    print("article_server stopped", flush=True)


if __name__ == "__main__":
    main()
