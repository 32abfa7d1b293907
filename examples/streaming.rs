//! The four gRPC call kinds, server and client in one process, on grpc-go's Echo service.
//!
//! `proto/examples/echo.proto` is grpc-go's echo example: one rpc of each kind over a
//! one-string message. The generated `Echo` trait gives each kind its own signature, and this
//! file implements all four, then calls them through the generated `EchoClient`:
//!
//! | kind | server receives | server replies through | client gets |
//! |---|---|---|---|
//! | unary | `Request<EchoRequest<'a>>` | return value | `Response<Decoded<…>>` |
//! | server streaming | `Request<EchoRequest<'a>>` | [`ResponseSink`] | `Response<Streaming<…>>` |
//! | client streaming | `Request<Streaming<…>>` | return value | `RequestSink` + `PendingResponse` |
//! | bidirectional | `Request<Streaming<…>>` | [`ResponseSink`] | `RequestSink` + `PendingResponse` |
//!
//! A [`Streaming`] yields `Ok(None)` when the other side has finished (on the client: with
//! status OK) and `Err(status)` when the call failed. Sending waits for the peer's HTTP/2
//! flow-control window, so a slow reader slows the writer instead of filling memory.
//!
//! The bidirectional call runs in lockstep, each reply read before the next request is sent,
//! which only works if both directions really are open at once. Its client opens the reply
//! stream after sending the first request: a server sends its response headers with its first
//! reply, and opening the reply stream waits for them.
//!
//! It checks every reply and exits non-zero otherwise, so CI runs it (`examples/run.sh`):
//!
//! ```sh
//! cargo run --example streaming                    # a free port on 127.0.0.1
//! cargo run --example streaming -- 127.0.0.1:50052 # or this address
//! ```

use std::error::Error;
use std::time::Duration;

use rawgrpc::client::Channel;
use rawgrpc::proto::grpc::examples::echo::{
    Echo, EchoClient, EchoRequest, EchoResponse, EchoServer,
};
use rawgrpc::server::{ResponseSink, Server};
use rawgrpc::{Request, Response, Status, Streaming};

/// Echoes what it is sent, in each call shape.
struct EchoService;

impl Echo for EchoService {
    async fn unary_echo<'a>(
        &'a self,
        request: Request<EchoRequest<'a>>,
    ) -> Result<Response<EchoResponse<'a>>, Status> {
        let message = request.into_message().message;
        Ok(Response::new(EchoResponse { message }))
    }

    /// One reply per word of the request.
    async fn server_streaming_echo<'a>(
        &'a self,
        request: Request<EchoRequest<'a>>,
        mut responses: ResponseSink<EchoResponse<'static>>,
    ) -> Result<(), Status> {
        for word in request.message().message.split_whitespace() {
            responses
                .send(&EchoResponse {
                    message: word.into(),
                })
                .await?;
        }
        Ok(())
    }

    /// One reply joining the words of every request.
    async fn client_streaming_echo<'a>(
        &'a self,
        requests: Request<Streaming<EchoRequest<'static>>>,
    ) -> Result<Response<EchoResponse<'a>>, Status> {
        let mut requests = requests.into_message();
        let mut words = Vec::new();
        while let Some(request) = requests.message().await? {
            words.push(request.view().message.into_owned());
        }
        let message = words.join(" ").into();
        Ok(Response::new(EchoResponse { message }))
    }

    /// Each request straight back, as it arrives.
    async fn bidirectional_streaming_echo(
        &self,
        requests: Request<Streaming<EchoRequest<'static>>>,
        mut responses: ResponseSink<EchoResponse<'static>>,
    ) -> Result<(), Status> {
        let mut requests = requests.into_message();
        while let Some(request) = requests.message().await? {
            let message = request.view().message;
            responses.send(&EchoResponse { message }).await?;
        }
        Ok(())
    }
}

const SENTENCE: &str = "the quick brown fox";
const WORDS: [&str; 4] = ["the", "quick", "brown", "fox"];

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_owned());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let addr = listener.local_addr()?;
    println!("Echo listening on {addr}");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(
        Server::new()
            .add_service(EchoServer::new(EchoService))
            .serve_with_shutdown(listener, async {
                let _ = stopped.await;
            }),
    );

    let client = EchoClient::new(Channel::connect(&addr.to_string()).await?);
    // A hung call would hang CI: the whole conversation gets ten seconds.
    tokio::time::timeout(Duration::from_secs(10), converse(&client))
        .await
        .map_err(|_| "timed out")??;

    let _ = stop.send(());
    server.await??;
    println!("streaming: all four call kinds behaved");
    Ok(())
}

/// One call of each kind, checking what comes back.
async fn converse(client: &EchoClient) -> Result<(), Box<dyn Error>> {
    println!("UnaryEcho");
    let reply = client
        .unary_echo(EchoRequest {
            message: "hello".into(),
        })
        .await?;
    let echoed = reply.message().view().message;
    println!("  -> \"hello\"\n  <- {echoed:?}");
    assert_eq!(echoed, "hello");

    println!("ServerStreamingEcho");
    println!("  -> {SENTENCE:?}");
    let request = EchoRequest {
        message: SENTENCE.into(),
    };
    let mut replies = client.server_streaming_echo(request).await?.into_message();
    let mut words = Vec::new();
    while let Some(reply) = replies.message().await? {
        println!("  <- {:?}", reply.view().message);
        words.push(reply.view().message.into_owned());
    }
    assert_eq!(words, WORDS);

    println!("ClientStreamingEcho");
    let (mut requests, reply) = client.client_streaming_echo(()).await?;
    for word in WORDS {
        println!("  -> {word:?}");
        requests
            .send(&EchoRequest {
                message: word.into(),
            })
            .await?;
    }
    requests.finish()?; // half-close: the server's loop ends, and it replies
    let reply = reply.single().await?;
    let joined = reply.message().view().message;
    println!("  <- {joined:?}");
    assert_eq!(joined, SENTENCE);

    println!("BidirectionalStreamingEcho");
    let (mut requests, replies) = client.bidirectional_streaming_echo(()).await?;
    requests
        .send(&EchoRequest {
            message: WORDS[0].into(),
        })
        .await?;
    let mut replies = replies.streaming().await?.into_message();
    for (i, word) in WORDS.into_iter().enumerate() {
        if i > 0 {
            requests
                .send(&EchoRequest {
                    message: word.into(),
                })
                .await?;
        }
        let reply = replies.message().await?.ok_or("the replies ended early")?;
        println!("  -> {word:?}\n  <- {:?}", reply.view().message);
        assert_eq!(reply.view().message, word);
    }
    requests.finish()?;
    // After the half-close the server's loop ends and it returns OK, ending the replies.
    assert!(replies.message().await?.is_none(), "a reply too many");
    Ok(())
}
