"""Shared by interop_client.py and interop_server.py.

* Imports the generated message modules (run.sh puts them on PYTHONPATH).
* Message (de)serializers that see whether a message arrived compressed: both
  scripts build their grpcio channel/server with `grpc.per_message_decompression`
  set to 0, so gRPC core hands the application the message bytes as they came
  off the wire, and `decoder()` below decompresses them itself. That is the only
  way grpcio exposes the per-message "compressed" flag, which the compression
  interop cases are about.
"""

import gzip
import os
import sys
import zlib

import grpc

# protoc names the generated modules after the proto path, grpc/testing/*_pb2.py,
# i.e. package `grpc.testing` -- which the installed `grpc` package hides. Graft
# the generated folder onto grpc's package path so `grpc.testing` resolves.
for _entry in sys.path:
    _gen = os.path.join(_entry or ".", "grpc")
    if os.path.isfile(os.path.join(_gen, "testing", "messages_pb2.py")):
        grpc.__path__.append(_gen)
        break
else:
    sys.exit("interop: generated grpc/testing/messages_pb2.py not on PYTHONPATH (see run.sh)")

from grpc.testing import empty_pb2, messages_pb2  # noqa: E402

NO_DECOMPRESSION = [("grpc.per_message_decompression", 0)]

# Status code number -> grpc.StatusCode (code 2 is UNKNOWN, and so on).
CODE_BY_NUMBER = {c.value[0]: c for c in grpc.StatusCode}


class Decoded:
    """A received message and whether it came with the compressed flag set."""

    def __init__(self, msg, compressed):
        self.msg, self.compressed = msg, compressed


def decoder(message_type):
    """Deserializer for raw wire bytes: gzip or deflate (zlib), else plain.

    No valid protobuf starts with 0x1f (field 3 with the unused wire type 7), so
    the gzip magic is unambiguous; a zlib header (0x78, checksum) would be field
    15, which no message here has.
    """

    def decode(raw):
        compressed = True
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
        elif len(raw) >= 2 and raw[0] == 0x78 and (raw[0] * 256 + raw[1]) % 31 == 0:
            raw = zlib.decompress(raw)
        else:
            compressed = False
        return Decoded(message_type.FromString(raw), compressed)

    return decode


def encode(msg):
    return msg.SerializeToString()


def zeros(n):
    return messages_pb2.Payload(type=messages_pb2.COMPRESSABLE, body=bytes(n))


def parse_bool(text):
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise ValueError(f"not a boolean: {text!r}")
