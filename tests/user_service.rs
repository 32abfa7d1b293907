//! End to end over real sockets: rawgrpc's client against rawgrpc's server, every rule of the
//! UserService, deadlines, metadata, concurrency and graceful shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestServer, TEST_TIMEOUT};
use rawgrpc::client::Channel;
use rawgrpc::proto::user::{
    CreateUserRequest, CreateUserResponse, User, UserRequest, UserResponse, UserService,
    UserServiceClient, UserServiceServer,
};
use rawgrpc::server::ServerConfig;
use rawgrpc::{Code, Request, Response, Status};

fn user(id: &str, name: &str) -> User<'static> {
    User {
        name: name.to_owned().into(),
        email: format!("{name}@example.com").into(),
        age: 42,
        id: id.to_owned().into(),
    }
}

async fn client(server: &TestServer) -> UserServiceClient {
    UserServiceClient::new(Channel::connect(&server.url()).await.expect("connect"))
}

async fn create(c: &UserServiceClient, u: User<'static>) -> Result<User<'static>, Status> {
    let r = c.create_user(CreateUserRequest { user: Some(u) }).await?;
    let view = r.message().view();
    let u = view.user.expect("user in reply");
    Ok(User {
        name: u.name.into_owned().into(),
        email: u.email.into_owned().into(),
        age: u.age,
        id: u.id.into_owned().into(),
    })
}

async fn get(c: &UserServiceClient, id: &str) -> Result<User<'static>, Status> {
    let r = c
        .get_user(UserRequest {
            user: Some(user(id, "")),
        })
        .await?;
    let u = r.message().view().user.expect("user in reply");
    Ok(User {
        name: u.name.into_owned().into(),
        email: u.email.into_owned().into(),
        age: u.age,
        id: u.id.into_owned().into(),
    })
}

#[tokio::test]
async fn create_then_get_round_trips() {
    let server = TestServer::user_service().await;
    let c = client(&server).await;
    let created = create(&c, user("", "ada")).await.expect("create");
    assert!(!created.id.is_empty(), "server assigns an id");
    assert_eq!(created.name, "ada");
    assert_eq!(get(&c, &created.id).await.expect("get"), created);

    let fixed = create(&c, user("fixed-1", "bob"))
        .await
        .expect("create with id");
    assert_eq!(fixed.id, "fixed-1");
    assert_eq!(get(&c, "fixed-1").await.expect("get"), fixed);
    server.stop().await;
}

#[tokio::test]
async fn every_error_rule() {
    let server = TestServer::user_service().await;
    let c = client(&server).await;
    create(&c, user("dup", "x")).await.expect("first create");
    let e = create(&c, user("dup", "y")).await.expect_err("duplicate");
    assert_eq!(e.code(), Code::AlreadyExists);

    let e = c
        .create_user(CreateUserRequest { user: None })
        .await
        .expect_err("no user");
    assert_eq!(e.code(), Code::InvalidArgument);

    let e = get(&c, "missing-9").await.expect_err("unknown id");
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("missing-9"), "{e}");

    let e = get(&c, "").await.expect_err("empty id");
    assert_eq!(e.code(), Code::InvalidArgument);

    let e = c
        .get_user(UserRequest { user: None })
        .await
        .expect_err("no user");
    assert_eq!(e.code(), Code::InvalidArgument);

    // A path nobody routes: the generic unary call by path.
    let channel = Channel::connect(&server.url()).await.expect("connect");
    let e = channel
        .unary::<_, UserResponse<'static>>(
            "/UserService/DeleteUser",
            Request::new(UserRequest::default()),
        )
        .await
        .expect_err("unknown method");
    assert_eq!(e.code(), Code::Unimplemented);
    let e = channel
        .unary::<_, UserResponse<'static>>("/Nope/GetUser", Request::new(UserRequest::default()))
        .await
        .expect_err("unknown service");
    assert_eq!(e.code(), Code::Unimplemented);
    server.stop().await;
}

#[tokio::test]
async fn ids_are_unique_under_concurrency_on_one_channel() {
    let server = TestServer::user_service().await;
    let c = client(&server).await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let c = c.clone();
        tasks.push(tokio::spawn(async move {
            create(&c, user("", &format!("u{i}")))
                .await
                .expect("create")
                .id
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        assert!(ids.insert(t.await.expect("task")), "ids are unique");
    }
    assert_eq!(ids.len(), 200);
    server.stop().await;
}

#[tokio::test]
async fn large_messages_cross_many_frames() {
    let server = TestServer::user_service().await;
    let c = client(&server).await;
    // Name and email together ~3 MiB: beyond the 1 MiB windows, under the 4 MiB limit.
    let name = "n".repeat(1536 * 1024);
    let created = create(&c, user("big", &name)).await.expect("create");
    assert_eq!(created.name.len(), name.len());
    assert_eq!(get(&c, "big").await.expect("get").name, name);
    server.stop().await;
}

#[tokio::test]
async fn a_request_over_the_receive_limit_is_resource_exhausted() {
    let config = ServerConfig {
        max_receive_message_len: 1024,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(
        config,
        UserServiceServer::new(rawgrpc::services::user::UserServiceImpl::in_memory()),
    )
    .await;
    let c = client(&server).await;
    let e = create(&c, user("x", &"x".repeat(2000)))
        .await
        .expect_err("too large");
    assert_eq!(e.code(), Code::ResourceExhausted);
    create(&c, user("y", "small"))
        .await
        .expect("server still serves");
    server.stop().await;
}

/// A UserService that sleeps before answering and echoes request metadata into the reply.
struct Slow {
    delay: Duration,
}

impl UserService for Slow {
    async fn get_user<'a>(
        &'a self,
        request: Request<UserRequest<'a>>,
    ) -> Result<Response<UserResponse<'a>>, Status> {
        tokio::time::sleep(self.delay).await;
        let echo = request.metadata().get("x-echo").unwrap_or("").to_owned();
        let mut response = Response::new(UserResponse {
            user: Some(user("slow", &echo)),
        });
        response
            .metadata_mut()
            .insert("x-served-by", "slow")
            .expect("valid metadata");
        Ok(response)
    }

    async fn create_user<'a>(
        &'a self,
        _request: Request<CreateUserRequest<'a>>,
    ) -> Result<Response<CreateUserResponse<'a>>, Status> {
        Err(Status::unimplemented("read-only"))
    }
}

async fn slow_server(delay: Duration) -> TestServer {
    TestServer::start_with(
        ServerConfig::default(),
        UserServiceServer::new(Slow { delay }),
    )
    .await
}

#[tokio::test]
async fn metadata_reaches_the_handler_and_comes_back() {
    let server = slow_server(Duration::ZERO).await;
    let c = client(&server).await;
    let mut request = Request::new(UserRequest::default());
    request
        .metadata_mut()
        .insert("x-echo", "hello there")
        .expect("valid");
    let response = c.get_user(request).await.expect("call");
    assert_eq!(
        response.message().view().user.expect("user").name,
        "hello there"
    );
    assert_eq!(response.metadata().get("x-served-by"), Some("slow"));
    server.stop().await;
}

#[tokio::test]
async fn client_deadline_gives_deadline_exceeded() {
    let server = slow_server(Duration::from_secs(5)).await;
    let c = client(&server).await;
    let mut request = Request::new(UserRequest::default());
    request.set_timeout(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let e = c.get_user(request).await.expect_err("deadline");
    assert_eq!(e.code(), Code::DeadlineExceeded);
    assert!(started.elapsed() < Duration::from_secs(4));
    server.stop().await;
}

#[tokio::test]
async fn server_enforces_grpc_timeout() {
    // A raw client sends grpc-timeout but does not enforce it itself: the server must.
    let server = slow_server(Duration::from_secs(5)).await;
    let mut head = common::grpc_head(server.addr, "/UserService/GetUser");
    head.headers_mut()
        .insert("grpc-timeout", http::HeaderValue::from_static("100m"));
    let reply = common::raw_call(server.addr, head, vec![common::framed(b"")]).await;
    assert_eq!(reply.grpc_status().as_deref(), Some("4"), "{reply:?}");
    server.stop().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_in_flight_calls_finish() {
    let mut server = slow_server(Duration::from_millis(500)).await;
    let c = Arc::new(client(&server).await);
    let in_flight = {
        let c = Arc::clone(&c);
        tokio::spawn(async move { c.get_user(UserRequest::default()).await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    server.begin_shutdown();
    let reply = tokio::time::timeout(TEST_TIMEOUT, in_flight)
        .await
        .expect("in time")
        .expect("task");
    assert!(reply.is_ok(), "the in-flight call completes: {reply:?}");
    server.stop().await;
}
