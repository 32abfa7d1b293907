//! The smallest rawgrpc server: the article's UserService, implemented here in a dozen lines.
//!
//! `build.rs` turns `proto/user.proto` into message structs, a `UserService` trait with one
//! async method per rpc, and a `UserServiceServer` adapter that turns any implementation of
//! the trait into routes. Writing a server is therefore implementing that trait and handing it
//! to [`Server`]; everything between the socket and the method (HTTP/2, framing, status
//! trailers, deadlines) is the library's.
//!
//! Two things in the implementation are worth noticing:
//!
//! * requests arrive *borrowing from the received bytes* (`CreateUserRequest<'a>`, strings as
//!   `Cow::Borrowed`), and a reply may borrow from its request, so CreateUser echoes the user
//!   back without copying a string;
//! * a user is stored as its encoded GetUser reply ([`Encoded`]): owning bytes sidesteps the
//!   borrowed lifetimes, and GetUser sends those bytes as they are, without encoding again.
//!
//! It does no validation (a missing user is created empty, a repeated id overwrites): see
//! `src/services/user.rs`, which `rawgrpc serve` runs, for the version with status codes.
//!
//! Run it (the address comes from the first argument, else `RAWGRPC_ADDR`, else
//! 127.0.0.1:50051; port 0 picks a free one, and the line printed at start names it):
//!
//! ```sh
//! cargo run --example server -- 127.0.0.1:50051
//! ```
//!
//! and call it from another terminal with any gRPC client:
//!
//! ```sh
//! cargo run --example client -- 127.0.0.1:50051
//! grpcurl -plaintext -proto proto/user.proto -d '{"user":{"name":"Ada"}}' \
//!     127.0.0.1:50051 UserService/CreateUser
//! ```
//!
//! or with the article's Python client (README.md, "Using it"). grpcurl needs `-proto`
//! because this server registers no reflection service; `rawgrpc serve` does.
//! Ctrl-C or SIGTERM stops it gracefully: clients get GOAWAY, calls in flight finish, and the
//! process exits 0.

use std::collections::HashMap;
use std::sync::Mutex;

use rawgrpc::codec::Encoded;
use rawgrpc::proto::user::{
    CreateUserRequest, CreateUserResponse, UserRequest, UserResponse, UserService,
    UserServiceServer,
};
use rawgrpc::server::{shutdown_signal, Server};
use rawgrpc::{Request, Response, Status};

/// Users by id, each kept as the encoded GetUser reply.
#[derive(Default)]
struct Users(Mutex<HashMap<String, Encoded<UserResponse<'static>>>>);

impl UserService for Users {
    async fn create_user<'a>(
        &'a self,
        request: Request<CreateUserRequest<'a>>,
    ) -> Result<Response<CreateUserResponse<'a>>, Status> {
        let mut user = request.into_message().user.unwrap_or_default();
        let mut users = self.0.lock().unwrap();
        if user.id.is_empty() {
            user.id = format!("user-{}", users.len() + 1).into();
        }
        let stored = Encoded::new(&UserResponse {
            user: Some(user.clone()),
        });
        users.insert(user.id.to_string(), stored);
        Ok(Response::new(CreateUserResponse { user: Some(user) }))
    }

    async fn get_user<'a>(
        &'a self,
        request: Request<UserRequest<'a>>,
    ) -> Result<Response<UserResponse<'a>>, Status> {
        let id = request.message().user.as_ref().map_or("", |u| &*u.id);
        match self.0.lock().unwrap().get(id) {
            Some(stored) => Ok(Response::encoded(stored.clone())),
            None => Err(Status::not_found(format!("user {id:?} not found"))),
        }
    }
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("RAWGRPC_ADDR").ok())
        .unwrap_or_else(|| "127.0.0.1:50051".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("UserService listening on {}", listener.local_addr()?);
    Server::new()
        .add_service(UserServiceServer::new(Users::default()))
        .serve_with_shutdown(listener, shutdown_signal())
        .await?;
    println!("drained, exiting");
    Ok(())
}
