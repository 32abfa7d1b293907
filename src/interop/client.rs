//! The interop client test cases (the "Client" section of interop-test-descriptions.md).
//!
//! Each case is a function that runs the procedure the spec describes against a TestService
//! and checks its assertions; [`run`] picks one by name. A case returns `Err(reason)` on the
//! first assertion that fails.

use std::borrow::Cow;
use std::time::Duration;

use crate::call::Request;
use crate::client::Channel;
use crate::interop::server::{ECHO_INITIAL, ECHO_TRAILING};
use crate::proto::grpc::testing::{
    BoolValue, EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest,
    StreamingInputCallRequest, StreamingOutputCallRequest, TestServiceClient,
    UnimplementedServiceClient,
};
use crate::wire::compression::Encoding;
use crate::wire::status::{Code, Status};

/// The result of one case: `Err` carries the failed assertion.
pub type CaseResult = Result<(), String>;

/// Every case this client implements, in the order `--test_case=all` runs them.
pub const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_streaming",
    "client_compressed_streaming",
    "server_streaming",
    "server_compressed_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "custom_metadata",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
];

/// Runs the case called `name` over `channel`.
pub async fn run(channel: &Channel, name: &str) -> CaseResult {
    let client = TestServiceClient::new(channel.clone());
    match name {
        "empty_unary" => empty_unary(&client).await,
        "large_unary" => large_unary(&client).await,
        "client_compressed_unary" => client_compressed_unary(&client).await,
        "server_compressed_unary" => server_compressed_unary(&client).await,
        "client_streaming" => client_streaming(&client).await,
        "client_compressed_streaming" => client_compressed_streaming(&client).await,
        "server_streaming" => server_streaming(&client).await,
        "server_compressed_streaming" => server_compressed_streaming(&client).await,
        "ping_pong" => ping_pong(&client).await,
        "empty_stream" => empty_stream(&client).await,
        "timeout_on_sleeping_server" => timeout_on_sleeping_server(&client).await,
        "cancel_after_begin" => cancel_after_begin(&client).await,
        "cancel_after_first_response" => cancel_after_first_response(&client).await,
        "custom_metadata" => custom_metadata(&client).await,
        "status_code_and_message" => status_code_and_message(&client).await,
        "special_status_message" => special_status_message(&client).await,
        "unimplemented_method" => unimplemented_method(&client).await,
        "unimplemented_service" => {
            let client = UnimplementedServiceClient::new(channel.clone());
            let outcome = client.unimplemented_call(Empty {}).await;
            expect_code(outcome.map(drop), Code::Unimplemented)
        }
        other => Err(format!("unknown test case {other:?}")),
    }
}

fn zeros(size: usize) -> Option<Payload<'static>> {
    Some(Payload {
        type_pb: PayloadType::COMPRESSABLE,
        body: Cow::Owned(vec![0; size]),
    })
}

fn params(size: i32) -> ResponseParameters {
    ResponseParameters {
        size,
        ..Default::default()
    }
}

fn check(ok: bool, what: impl FnOnce() -> String) -> CaseResult {
    if ok {
        Ok(())
    } else {
        Err(what())
    }
}

fn failed(status: Status) -> String {
    format!("call failed: {status}")
}

fn expect_code<T>(outcome: Result<T, Status>, code: Code) -> CaseResult {
    match outcome {
        Ok(_) => Err(format!("call succeeded, expected {code}")),
        Err(s) if s.code() == code => Ok(()),
        Err(s) => Err(format!("expected {code}, got {s}")),
    }
}

fn check_body(payload: &Option<Payload<'_>>, size: usize) -> CaseResult {
    let body = payload.as_ref().map_or(&[][..], |p| &p.body[..]);
    check(body.len() == size && body.iter().all(|&b| b == 0), || {
        format!(
            "payload body is {} bytes, expected {size} zeros",
            body.len()
        )
    })
}

fn large_request() -> SimpleRequest<'static> {
    SimpleRequest {
        response_size: 314_159,
        payload: zeros(271_828),
        ..Default::default()
    }
}

async fn empty_unary(client: &TestServiceClient) -> CaseResult {
    client.empty_call(Empty {}).await.map_err(failed)?;
    Ok(())
}

async fn large_unary(client: &TestServiceClient) -> CaseResult {
    let response = client.unary_call(large_request()).await.map_err(failed)?;
    check_body(&response.message().view().payload, 314_159)
}

async fn client_compressed_unary(client: &TestServiceClient) -> CaseResult {
    let with_expectation = |expect: bool| SimpleRequest {
        expect_compressed: Some(BoolValue { value: expect }),
        ..large_request()
    };
    // The probe: an uncompressed message that claims to be compressed must be refused.
    let probe = client.unary_call(with_expectation(true)).await;
    expect_code(probe, Code::InvalidArgument).map_err(|e| format!("probe: {e}"))?;
    let mut compressed = Request::new(with_expectation(true));
    compressed.set_compression(Encoding::Gzip);
    let response = client.unary_call(compressed).await.map_err(failed)?;
    check_body(&response.message().view().payload, 314_159)?;
    let response = client
        .unary_call(with_expectation(false))
        .await
        .map_err(failed)?;
    check_body(&response.message().view().payload, 314_159)
}

async fn server_compressed_unary(client: &TestServiceClient) -> CaseResult {
    for compress in [true, false] {
        let request = SimpleRequest {
            response_compressed: Some(BoolValue { value: compress }),
            ..large_request()
        };
        let response = client.unary_call(request).await.map_err(failed)?;
        check(response.message().was_compressed() == compress, || {
            format!("response_compressed={compress} but the compressed flag disagrees")
        })?;
        check_body(&response.message().view().payload, 314_159)?;
    }
    Ok(())
}

async fn client_streaming(client: &TestServiceClient) -> CaseResult {
    let (mut requests, response) = client.streaming_input_call(()).await.map_err(failed)?;
    for size in [27_182, 8, 1_828, 45_904] {
        let request = StreamingInputCallRequest {
            payload: zeros(size),
            ..Default::default()
        };
        requests.send(&request).await.map_err(failed)?;
    }
    requests.finish().map_err(failed)?;
    let response = response.single().await.map_err(failed)?;
    let total = response.message().view().aggregated_payload_size;
    check(total == 74_922, || {
        format!("aggregated size {total}, expected 74922")
    })
}

async fn client_compressed_streaming(client: &TestServiceClient) -> CaseResult {
    let message = |expect: bool, size: usize| StreamingInputCallRequest {
        payload: zeros(size),
        expect_compressed: Some(BoolValue { value: expect }),
    };
    // The probe: an uncompressed message that claims to be compressed.
    let (mut requests, response) = client.streaming_input_call(()).await.map_err(failed)?;
    let _ = requests.send(&message(true, 27_182)).await;
    let _ = requests.finish();
    expect_code(response.single().await, Code::InvalidArgument)
        .map_err(|e| format!("probe: {e}"))?;

    let mut call = Request::new(());
    call.set_compression(Encoding::Gzip);
    let (mut requests, response) = client.streaming_input_call(call).await.map_err(failed)?;
    requests
        .send_with(&message(true, 27_182), true)
        .await
        .map_err(failed)?;
    requests
        .send_with(&message(false, 45_904), false)
        .await
        .map_err(failed)?;
    requests.finish().map_err(failed)?;
    let response = response.single().await.map_err(failed)?;
    let total = response.message().view().aggregated_payload_size;
    check(total == 73_086, || {
        format!("aggregated size {total}, expected 73086")
    })
}

async fn server_streaming(client: &TestServiceClient) -> CaseResult {
    let sizes = [31_415, 9, 2_653, 58_979];
    let request = StreamingOutputCallRequest {
        response_parameters: sizes.iter().map(|&s| params(s)).collect(),
        ..Default::default()
    };
    let response = client
        .streaming_output_call(request)
        .await
        .map_err(failed)?;
    let mut stream = response.into_message();
    for size in sizes {
        let reply = stream
            .message()
            .await
            .map_err(failed)?
            .ok_or_else(|| "fewer than four responses".to_owned())?;
        check_body(&reply.view().payload, size as usize)?;
    }
    check(stream.message().await.map_err(failed)?.is_none(), || {
        "more than four responses".to_owned()
    })
}

async fn server_compressed_streaming(client: &TestServiceClient) -> CaseResult {
    let request = StreamingOutputCallRequest {
        response_parameters: vec![
            ResponseParameters {
                compressed: Some(BoolValue { value: true }),
                ..params(31_415)
            },
            ResponseParameters {
                compressed: Some(BoolValue { value: false }),
                ..params(92_653)
            },
        ],
        ..Default::default()
    };
    let response = client
        .streaming_output_call(request)
        .await
        .map_err(failed)?;
    let mut stream = response.into_message();
    for (size, compressed) in [(31_415, true), (92_653, false)] {
        let reply = stream
            .message()
            .await
            .map_err(failed)?
            .ok_or_else(|| "fewer than two responses".to_owned())?;
        check(reply.was_compressed() == compressed, || {
            format!("reply of {size} bytes: compressed flag is not {compressed}")
        })?;
        check_body(&reply.view().payload, size)?;
    }
    check(stream.message().await.map_err(failed)?.is_none(), || {
        "more than two responses".to_owned()
    })
}

fn duplex_request(reply_size: i32, request_size: usize) -> StreamingOutputCallRequest<'static> {
    StreamingOutputCallRequest {
        response_parameters: vec![params(reply_size)],
        payload: zeros(request_size),
        ..Default::default()
    }
}

async fn ping_pong(client: &TestServiceClient) -> CaseResult {
    let (mut requests, response) = client.full_duplex_call(()).await.map_err(failed)?;
    let rounds = [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)];
    requests
        .send(&duplex_request(rounds[0].0, rounds[0].1))
        .await
        .map_err(failed)?;
    // Response headers come with the first reply.
    let mut replies = response.streaming().await.map_err(failed)?.into_message();
    for (i, &(reply_size, _)) in rounds.iter().enumerate() {
        if i > 0 {
            let (reply_size, request_size) = rounds[i];
            requests
                .send(&duplex_request(reply_size, request_size))
                .await
                .map_err(failed)?;
        }
        let reply = replies
            .message()
            .await
            .map_err(failed)?
            .ok_or_else(|| format!("no reply to request {}", i + 1))?;
        check_body(&reply.view().payload, reply_size as usize)?;
    }
    requests.finish().map_err(failed)?;
    check(replies.message().await.map_err(failed)?.is_none(), || {
        "more than four responses".to_owned()
    })
}

async fn empty_stream(client: &TestServiceClient) -> CaseResult {
    let (requests, response) = client.full_duplex_call(()).await.map_err(failed)?;
    requests.finish().map_err(failed)?;
    let mut replies = response.streaming().await.map_err(failed)?.into_message();
    check(replies.message().await.map_err(failed)?.is_none(), || {
        "expected zero responses".to_owned()
    })
}

async fn timeout_on_sleeping_server(client: &TestServiceClient) -> CaseResult {
    let mut call = Request::new(());
    call.set_timeout(Duration::from_millis(1));
    let outcome = async {
        let (mut requests, response) = client.full_duplex_call(call).await?;
        requests
            .send(&StreamingOutputCallRequest {
                payload: zeros(27_182),
                ..Default::default()
            })
            .await?;
        let mut replies = response.streaming().await?.into_message();
        while replies.message().await?.is_some() {}
        Ok::<(), Status>(())
    };
    expect_code(outcome.await, Code::DeadlineExceeded)
}

async fn cancel_after_begin(client: &TestServiceClient) -> CaseResult {
    let (requests, response) = client.streaming_input_call(()).await.map_err(failed)?;
    requests.cancel();
    expect_code(response.single().await, Code::Cancelled)
}

async fn cancel_after_first_response(client: &TestServiceClient) -> CaseResult {
    let (mut requests, response) = client.full_duplex_call(()).await.map_err(failed)?;
    requests
        .send(&duplex_request(31_415, 27_182))
        .await
        .map_err(failed)?;
    let mut replies = response.streaming().await.map_err(failed)?.into_message();
    let first = replies.message().await.map_err(failed)?;
    check(first.is_some(), || "no first response".to_owned())?;
    requests.cancel();
    expect_code(replies.message().await, Code::Cancelled)
}

fn echo_request<T>(message: T) -> Result<Request<T>, String> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata
        .insert(ECHO_INITIAL, "test_initial_metadata_value")
        .map_err(failed)?;
    metadata
        .insert_bin(ECHO_TRAILING, &[0xab, 0xab, 0xab])
        .map_err(failed)?;
    Ok(request)
}

fn check_echo(initial: &crate::Metadata, trailing: &crate::Metadata) -> CaseResult {
    check(
        initial.get(ECHO_INITIAL) == Some("test_initial_metadata_value"),
        || format!("initial metadata: {:?}", initial.get(ECHO_INITIAL)),
    )?;
    check(
        trailing.get_bin(ECHO_TRAILING).as_deref() == Some(&[0xab, 0xab, 0xab][..]),
        || format!("trailing metadata: {:?}", trailing.get_bin(ECHO_TRAILING)),
    )
}

async fn custom_metadata(client: &TestServiceClient) -> CaseResult {
    let response = client
        .unary_call(echo_request(large_request())?)
        .await
        .map_err(failed)?;
    check_echo(response.metadata(), response.trailers()).map_err(|e| format!("unary: {e}"))?;

    let (mut requests, response) = client
        .full_duplex_call(echo_request(())?)
        .await
        .map_err(failed)?;
    requests
        .send(&duplex_request(314_159, 271_828))
        .await
        .map_err(failed)?;
    requests.finish().map_err(failed)?;
    let response = response.streaming().await.map_err(failed)?;
    let initial = response.metadata().clone();
    let mut replies = response.into_message();
    while replies.message().await.map_err(failed)?.is_some() {}
    check_echo(&initial, replies.trailers()).map_err(|e| format!("full duplex: {e}"))
}

async fn echo_status_case(client: &TestServiceClient, message: &str) -> CaseResult {
    let status = || {
        Some(EchoStatus {
            code: 2,
            message: Cow::Owned(message.to_owned()),
        })
    };
    let expect = |outcome: Result<(), Status>, step: &str| match outcome {
        Err(s) if s.code() == Code::Unknown && s.message() == message => Ok(()),
        other => Err(format!(
            "{step}: expected UNKNOWN {message:?}, got {other:?}"
        )),
    };
    let unary = client
        .unary_call(SimpleRequest {
            response_status: status(),
            ..Default::default()
        })
        .await;
    expect(unary.map(drop), "unary")?;

    let duplex = async {
        let (mut requests, response) = client.full_duplex_call(()).await?;
        requests
            .send(&StreamingOutputCallRequest {
                response_status: status(),
                ..Default::default()
            })
            .await?;
        requests.finish()?;
        let mut replies = response.streaming().await?.into_message();
        while replies.message().await?.is_some() {}
        Ok(())
    };
    expect(duplex.await, "full duplex")
}

async fn status_code_and_message(client: &TestServiceClient) -> CaseResult {
    echo_status_case(client, "test status message").await
}

async fn special_status_message(client: &TestServiceClient) -> CaseResult {
    echo_status_case(
        client,
        "\t\ntest with whitespace\r\nand Unicode BMP \u{263a} and non-BMP \u{1f608}\t\n",
    )
    .await
}

async fn unimplemented_method(client: &TestServiceClient) -> CaseResult {
    expect_code(
        client.unimplemented_call(Empty {}).await.map(drop),
        Code::Unimplemented,
    )
}
