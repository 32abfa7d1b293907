//! The protobuf messages and service glue generated from `proto/` by `build.rs`.
//!
//! One module per protobuf package; a file without a package (like the article's
//! `user.proto`) gets a module named after the file. Each module holds the pb-rs message
//! structs and, for each `service`, the server trait, the `…Server` adapter for the router and
//! the `…Client` stub. See `build.rs` for how they are made.

include!(concat!(env!("OUT_DIR"), "/protos.rs"));
