//! The client: a [`Channel`] to one server, shared by concurrent calls.
//!
//! * [`channel`]: one HTTP/2 connection, multiplexing every call made through it.
//! * [`call`]: one call on the wire — request headers, the message, and reading the response
//!   back to a [`Status`](crate::Status), including responses that are not gRPC at all.

pub mod call;
pub mod channel;

pub use call::{PendingResponse, RequestSink};
pub use channel::Channel;
