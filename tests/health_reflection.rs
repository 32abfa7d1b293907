//! End to end over real sockets: the health service (`grpc.health.v1.Health`) and server
//! reflection (`grpc.reflection.v1` and `v1alpha`), called with rawgrpc's generated clients on
//! a server set up as `rawgrpc serve` sets up its own.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rawgrpc::client::Channel;
use rawgrpc::proto::grpc::health::v1::mod_HealthCheckResponse::ServingStatus;
use rawgrpc::proto::grpc::health::v1::{
    HealthCheckRequest, HealthCheckResponse, HealthClient, HealthServer,
};
use rawgrpc::proto::grpc::reflection::{v1, v1alpha};
use rawgrpc::proto::user::UserServiceServer;
use rawgrpc::server::{Server, ServerConfig};
use rawgrpc::services::health::HealthReporter;
use rawgrpc::services::reflection::ReflectionService;
use rawgrpc::services::user::UserServiceImpl;
use rawgrpc::{Code, Streaming};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Every test is bounded: nothing here may hang CI.
const TEST_TIMEOUT: Duration = Duration::from_secs(20);

/// UserService, Health and both reflection versions, with the server's own shutdown grace
/// long enough (30 s) that a drain finishing quickly proves every call had ended.
struct Running {
    addr: SocketAddr,
    health: HealthReporter,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

const GRACE: Duration = Duration::from_secs(30);

async fn start() -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let health = HealthReporter::new();
    health.set_serving("");
    health.set_serving("UserService");
    let config = ServerConfig {
        shutdown_grace: GRACE,
        ..ServerConfig::default()
    };
    let server = Server::with_config(config)
        .add_service(UserServiceServer::new(UserServiceImpl::in_memory()))
        .add_service(HealthServer::new(health.service()));
    let server = ReflectionService::add_to(server);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve_with_shutdown(listener, async {
        let _ = stopped.await;
    }));
    Running {
        addr,
        health,
        stop,
        task,
    }
}

impl Running {
    async fn channel(&self) -> Channel {
        Channel::connect(&format!("http://{}", self.addr))
            .await
            .expect("connect")
    }

    /// Stops the server and returns how long the drain took.
    async fn stop(self) -> Duration {
        let started = Instant::now();
        let _ = self.stop.send(());
        tokio::time::timeout(TEST_TIMEOUT + GRACE, self.task)
            .await
            .expect("server stops")
            .expect("server task")
            .expect("server result");
        started.elapsed()
    }
}

fn health_request(service: &str) -> HealthCheckRequest<'static> {
    HealthCheckRequest {
        service: Cow::Owned(service.to_owned()),
    }
}

async fn check(client: &HealthClient, service: &str) -> Result<ServingStatus, rawgrpc::Status> {
    let reply = client.check(health_request(service)).await?;
    Ok(reply.message().view().status)
}

async fn next_status(watch: &mut Streaming<HealthCheckResponse>) -> Option<ServingStatus> {
    tokio::time::timeout(TEST_TIMEOUT, watch.message())
        .await
        .expect("a Watch message in time")
        .expect("Watch stream not failed")
        .map(|m| m.view().status)
}

#[tokio::test]
async fn check_reports_registered_services_and_not_found_otherwise() {
    let server = start().await;
    let client = HealthClient::new(server.channel().await);
    assert_eq!(
        check(&client, "").await.expect("\"\""),
        ServingStatus::SERVING
    );
    assert_eq!(
        check(&client, "UserService").await.expect("UserService"),
        ServingStatus::SERVING
    );
    let err = check(&client, "nope").await.expect_err("unknown service");
    assert_eq!(err.code(), Code::NotFound, "{err:?}");

    server.health.set_not_serving("UserService");
    assert_eq!(
        check(&client, "UserService").await.expect("UserService"),
        ServingStatus::NOT_SERVING
    );
    server.health.shutdown();
    assert_eq!(
        check(&client, "").await.expect("\"\""),
        ServingStatus::NOT_SERVING
    );
    server.stop().await;
}

#[tokio::test]
async fn watch_sends_current_status_then_changes_and_ends_at_shutdown() {
    let server = start().await;
    let client = HealthClient::new(server.channel().await);
    let mut whole = client
        .watch(health_request(""))
        .await
        .expect("Watch(\"\")")
        .into_message();
    assert_eq!(next_status(&mut whole).await, Some(ServingStatus::SERVING));
    let mut user = client
        .watch(health_request("UserService"))
        .await
        .expect("Watch(UserService)")
        .into_message();
    assert_eq!(next_status(&mut user).await, Some(ServingStatus::SERVING));

    // An unknown name: SERVICE_UNKNOWN, and the stream stays open for a later registration.
    let mut later = client
        .watch(health_request("later.Service"))
        .await
        .expect("Watch(later.Service)")
        .into_message();
    assert_eq!(
        next_status(&mut later).await,
        Some(ServingStatus::SERVICE_UNKNOWN)
    );
    server.health.set_serving("later.Service");
    assert_eq!(next_status(&mut later).await, Some(ServingStatus::SERVING));

    // A change to one service reaches its watchers only.
    server.health.set_not_serving("UserService");
    assert_eq!(
        next_status(&mut user).await,
        Some(ServingStatus::NOT_SERVING)
    );
    server.health.set_serving("UserService");
    assert_eq!(next_status(&mut user).await, Some(ServingStatus::SERVING));

    // Shutdown: every stream gets NOT_SERVING, then ends with OK.
    server.health.shutdown();
    for watch in [&mut whole, &mut user, &mut later] {
        assert_eq!(next_status(watch).await, Some(ServingStatus::NOT_SERVING));
        assert_eq!(
            next_status(watch).await,
            None,
            "the stream ends after NOT_SERVING"
        );
    }
    // A Watch started after shutdown says so and ends at once.
    let mut after = client
        .watch(health_request(""))
        .await
        .expect("Watch after shutdown")
        .into_message();
    assert_eq!(
        next_status(&mut after).await,
        Some(ServingStatus::NOT_SERVING)
    );
    assert_eq!(next_status(&mut after).await, None);

    let drain = server.stop().await;
    assert!(
        drain < GRACE / 2,
        "drain took {drain:?}: a call was left open"
    );
}

#[tokio::test]
async fn a_watch_ends_when_its_client_goes_away() {
    let server = start().await;
    let channel = server.channel().await;
    let client = HealthClient::new(channel.clone());
    let mut watch = client
        .watch(health_request(""))
        .await
        .expect("Watch")
        .into_message();
    assert_eq!(next_status(&mut watch).await, Some(ServingStatus::SERVING));
    // The client drops the stream and its connection; no health.shutdown() here: only the
    // client going away can end the handler, and a handler left running would hold the
    // drain for the whole 30 s grace.
    drop(watch);
    drop(client);
    drop(channel);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let drain = server.stop().await;
    assert!(
        drain < GRACE / 2,
        "drain took {drain:?}: the Watch outlived its client"
    );
}

// ---------------------------------------------------------------------------------------------
// Reflection.

/// The name (field 1, a string) of a serialized FileDescriptorProto, decoded by hand.
fn file_name(file: &[u8]) -> String {
    assert_eq!(
        file.first(),
        Some(&0x0a),
        "field 1, length-delimited, first"
    );
    let (mut len, mut shift, mut i) = (0usize, 0, 1);
    loop {
        let b = file[i];
        len |= usize::from(b & 0x7f) << shift;
        i += 1;
        if b & 0x80 == 0 {
            break;
        }
        shift += 7;
    }
    String::from_utf8(file[i..i + len].to_vec()).expect("UTF-8 file name")
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// What one reflection answer said, whichever version gave it.
#[derive(Debug, PartialEq)]
enum Answer {
    Files(Vec<(String, Vec<u8>)>),
    Services(Vec<String>),
    ExtensionNumbers(String, Vec<i32>),
    Error(i32, String),
}

impl Answer {
    fn file_names(&self) -> Vec<&str> {
        match self {
            Answer::Files(files) => files.iter().map(|(n, _)| n.as_str()).collect(),
            other => panic!("expected files, got {other:?}"),
        }
    }
}

/// Generates an `ask` for one reflection version: sends every question on one stream, then
/// reads one answer per question, checking it echoes its question.
macro_rules! asker {
    ($name:ident, $version:ident) => {
        async fn $name(channel: Channel, questions: Vec<Question>) -> Vec<Answer> {
            use $version::mod_ServerReflectionRequest::OneOfmessage_request as Q;
            use $version::mod_ServerReflectionResponse::OneOfmessage_response as A;
            let client = $version::ServerReflectionClient::new(channel);
            let (mut requests, replies) = client
                .server_reflection_info(())
                .await
                .expect("open the stream");
            let mut sent = Vec::new();
            for question in &questions {
                let message_request = match question {
                    Question::File(f) => Q::file_by_filename(Cow::Borrowed(f)),
                    Question::Symbol(s) => Q::file_containing_symbol(Cow::Borrowed(s)),
                    Question::Extensions(t) => Q::all_extension_numbers_of_type(Cow::Borrowed(t)),
                    Question::Extension(t, n) => {
                        Q::file_containing_extension($version::ExtensionRequest {
                            containing_type: Cow::Borrowed(t),
                            extension_number: *n,
                        })
                    }
                    Question::List => Q::list_services(Cow::Borrowed("*")),
                    Question::Nothing => Q::None,
                };
                let request = $version::ServerReflectionRequest {
                    host: Cow::Borrowed("localhost"),
                    message_request,
                };
                requests.send(&request).await.expect("send a question");
                sent.push(request);
            }
            requests.finish().expect("half-close");
            let mut replies = replies.streaming().await.expect("replies").into_message();
            let mut answers = Vec::new();
            while let Some(reply) = tokio::time::timeout(TEST_TIMEOUT, replies.message())
                .await
                .expect("an answer in time")
                .expect("the stream does not fail")
            {
                let reply = reply.view();
                assert_eq!(reply.valid_host, "localhost");
                assert_eq!(
                    reply.original_request.as_ref(),
                    sent.get(answers.len()),
                    "answer {} echoes its question",
                    answers.len()
                );
                answers.push(match reply.message_response {
                    A::file_descriptor_response(r) => Answer::Files(
                        r.file_descriptor_proto
                            .iter()
                            .map(|f| (file_name(f), f.to_vec()))
                            .collect(),
                    ),
                    A::list_services_response(r) => {
                        Answer::Services(r.service.iter().map(|s| s.name.to_string()).collect())
                    }
                    A::all_extension_numbers_response(r) => {
                        Answer::ExtensionNumbers(r.base_type_name.to_string(), r.extension_number)
                    }
                    A::error_response(e) => {
                        Answer::Error(e.error_code, e.error_message.to_string())
                    }
                    A::None => panic!("an answer with no response set"),
                });
            }
            answers
        }
    };
}

#[derive(Clone, Debug)]
enum Question {
    File(&'static str),
    Symbol(&'static str),
    Extensions(&'static str),
    Extension(&'static str, i32),
    List,
    Nothing,
}

asker!(ask_v1, v1);
asker!(ask_v1alpha, v1alpha);

const SERVICES: [&str; 4] = [
    "UserService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

fn check_answers(answers: &[Answer]) {
    let mut answers = answers.iter();
    let mut next = || answers.next().expect("one answer per question");

    // List
    match next() {
        Answer::Services(names) => {
            let mut names = names.clone();
            names.sort();
            assert_eq!(names, SERVICES);
        }
        other => panic!("list_services: {other:?}"),
    }
    // Symbol("UserService"): user.proto alone (it imports nothing).
    let user = next();
    assert_eq!(user.file_names(), ["user.proto"]);
    if let Answer::Files(files) = user {
        for name in [
            "UserService",
            "GetUser",
            "CreateUserRequest",
            "UserResponse",
        ] {
            assert!(contains(&files[0].1, name), "user.proto lacks {name}");
        }
    }
    // File("grpc/testing/test.proto"): itself, then its imports, each once.
    assert_eq!(
        next().file_names(),
        [
            "grpc/testing/test.proto",
            "grpc/testing/empty.proto",
            "grpc/testing/messages.proto"
        ]
    );
    // A method, a nested enum, a message of another file of the package.
    assert_eq!(
        next().file_names(),
        [
            "grpc/testing/test.proto",
            "grpc/testing/empty.proto",
            "grpc/testing/messages.proto"
        ]
    );
    assert_eq!(next().file_names(), ["grpc/health/v1/health.proto"]);
    assert_eq!(next().file_names(), ["grpc/testing/messages.proto"]);
    assert_eq!(
        next().file_names(),
        ["grpc/reflection/v1alpha/reflection.proto"]
    );
    // Unknown symbol and file: NOT_FOUND in band; the stream goes on.
    assert!(matches!(next(), Answer::Error(5, m) if m.contains("no.Such")));
    assert!(matches!(next(), Answer::Error(5, m) if m.contains("nope.proto")));
    // Extensions: none in proto3; unknown types and extensions NOT_FOUND.
    assert_eq!(
        next(),
        &Answer::ExtensionNumbers("grpc.testing.Payload".to_owned(), vec![])
    );
    assert!(matches!(next(), Answer::Error(5, _)));
    assert!(matches!(next(), Answer::Error(5, _)));
    // No question: UNIMPLEMENTED.
    assert!(matches!(next(), Answer::Error(12, _)));
    assert!(answers.next().is_none(), "one answer per question, no more");
}

fn questions() -> Vec<Question> {
    vec![
        Question::List,
        Question::Symbol("UserService"),
        Question::File("grpc/testing/test.proto"),
        Question::Symbol("grpc.testing.TestService.UnaryCall"),
        Question::Symbol("grpc.health.v1.HealthCheckResponse.ServingStatus"),
        Question::Symbol(".grpc.testing.Payload"),
        Question::Symbol("grpc.reflection.v1alpha.ServerReflection"),
        Question::Symbol("no.Such"),
        Question::File("nope.proto"),
        Question::Extensions("grpc.testing.Payload"),
        Question::Extensions("grpc.testing.Nope"),
        Question::Extension("grpc.testing.Payload", 100),
        Question::Nothing,
    ]
}

#[tokio::test]
async fn reflection_v1_answers_every_question_on_one_stream() {
    let server = start().await;
    let answers = ask_v1(server.channel().await, questions()).await;
    check_answers(&answers);
    server.stop().await;
}

#[tokio::test]
async fn reflection_v1alpha_answers_the_same() {
    let server = start().await;
    let channel = server.channel().await;
    let alpha = ask_v1alpha(channel.clone(), questions()).await;
    check_answers(&alpha);
    assert_eq!(alpha, ask_v1(channel, questions()).await);
    server.stop().await;
}
