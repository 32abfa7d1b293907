//! A UserService client: create a user, read it back, and meet a gRPC error.
//!
//! A [`Channel`] is one HTTP/2 connection; the generated [`UserServiceClient`] wraps it with
//! one async method per rpc, and clones of either share the connection, so a program connects
//! once and calls from as many tasks as it likes.
//!
//! What it shows:
//!
//! * a call takes a bare message or a [`Request`] that adds a deadline (sent as
//!   `grpc-timeout`; past it the call fails with DEADLINE_EXCEEDED and the stream is reset)
//!   and metadata (HTTP/2 headers);
//! * a reply is `Decoded`: it owns the received bytes, and `view()` reads the message
//!   borrowing from them, with no string copied;
//! * a failed call is `Err(Status)`, whose [`Code`] the caller matches on: NOT_FOUND for an
//!   unknown id is an answer, not an accident.
//!
//! It checks every answer and exits non-zero on anything unexpected, so CI runs it
//! (`examples/run.sh`) against `examples/server.rs`. It works against `rawgrpc serve` too:
//!
//! ```sh
//! cargo run --example server &                   # or: cargo run --release -- serve
//! cargo run --example client -- 127.0.0.1:50051  # address: argument, RAWGRPC_ADDR, default
//! ```

use std::error::Error;
use std::time::Duration;

use rawgrpc::client::Channel;
use rawgrpc::proto::user::{CreateUserRequest, User, UserRequest, UserServiceClient};
use rawgrpc::{Code, Request};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("RAWGRPC_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:50051".to_owned());
    let client = UserServiceClient::new(Channel::connect(&addr).await?);

    // CreateUser, with a deadline and a request id. No id: the server assigns one.
    let ada = User {
        name: "Ada Lovelace".into(),
        email: "ada@example.com".into(),
        age: 36,
        ..User::default()
    };
    let mut request = Request::new(CreateUserRequest {
        user: Some(ada.clone()),
    });
    request.set_timeout(Duration::from_secs(5));
    request.metadata_mut().insert("x-request-id", "example-1")?;
    let reply = client.create_user(request).await?;
    let created = reply.message().view().user.ok_or("CreateUser: no user")?;
    println!("CreateUser -> {created:?}");
    if created.id.is_empty()
        || created
            != (User {
                id: created.id.clone(),
                ..ada
            })
    {
        return Err(format!("CreateUser returned {created:?}").into());
    }

    // GetUser: the same user back. A bare message is a request without deadline or metadata.
    let lookup = User {
        id: created.id.clone(),
        ..User::default()
    };
    let reply = client.get_user(UserRequest { user: Some(lookup) }).await?;
    let fetched = reply.message().view().user.ok_or("GetUser: no user")?;
    println!("GetUser({:?}) -> {fetched:?}", created.id);
    if fetched != created {
        return Err(format!("GetUser returned {fetched:?}, expected {created:?}").into());
    }

    // GetUser of an unknown id: the status is the answer.
    let nobody = User {
        id: "no-such-user".into(),
        ..User::default()
    };
    match client.get_user(UserRequest { user: Some(nobody) }).await {
        Err(status) if status.code() == Code::NotFound => {
            println!("GetUser(\"no-such-user\") -> {status}");
        }
        other => return Err(format!("expected NOT_FOUND, got {other:?}").into()),
    }
    println!("client: all calls answered as expected");
    Ok(())
}
