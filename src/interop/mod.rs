//! gRPC's interoperability suite: the TestService and the client test cases.
//!
//! gRPC implementations prove they speak the same protocol by running a shared list of test
//! cases against each other (`doc/interop-test-descriptions.md` in grpc/grpc), over the
//! `grpc.testing` protos (`proto/grpc/testing/`). This module is rawgrpc's side of it:
//!
//! * [`server`]: the TestService every interop server implements — echoing metadata and
//!   statuses, compressing on request, checking that requests arrived compressed, sleeping
//!   between streamed replies;
//! * [`client`]: the client test cases, each a function that returns `Ok` iff the case passes.
//!
//! The `interop-server` and `interop-client` binaries wrap them with the standard flags, so
//! the reference implementations (grpcio, grpc-js) can run against rawgrpc and rawgrpc against
//! them (`tests/interop/run.sh`).

pub mod client;
pub mod server;
