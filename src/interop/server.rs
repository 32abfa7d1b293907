//! The interop TestService ("Server" section of interop-test-descriptions.md).
//!
//! | feature | what the server does |
//! |---|---|
//! | EmptyCall | returns the empty message |
//! | UnaryCall | a payload of `response_size` zero bytes |
//! | StreamingOutputCall / FullDuplexCall | one reply per `ResponseParameters`, after `interval_us` |
//! | StreamingInputCall | the sum of the request payload sizes, at half-close |
//! | HalfDuplexCall | buffers the requests, replies after half-close |
//! | Echo Status | `response_status` ends the call with that code and message |
//! | Echo Metadata | `x-grpc-test-echo-initial` back in headers, `x-grpc-test-echo-trailing-bin` in trailers |
//! | CompressedResponse | `response_compressed` / `compressed` set the reply's Compressed-Flag |
//! | CompressedRequest | `expect_compressed: true` on an uncompressed request: INVALID_ARGUMENT |

use std::borrow::Cow;
use std::time::Duration;

use crate::call::{Request, Response};
use crate::proto::grpc::testing::{
    EchoStatus, Empty, Payload, PayloadType, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse, TestService,
};
use crate::server::ResponseSink;
use crate::streaming::Streaming;
use crate::wire::compression::Encoding;
use crate::wire::metadata::Metadata;
use crate::wire::status::{Code, Status};

/// Header metadata echoed back as initial metadata.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Binary metadata echoed back as trailing metadata.
pub const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

/// Largest payload a request may ask for: the 4 MiB message limit, so a request cannot make
/// the server allocate more than it would accept itself.
const MAX_PAYLOAD: i32 = 4 * 1024 * 1024;

/// The interop TestService.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestServiceImpl;

fn zeros(size: i32) -> Result<Payload<'static>, Status> {
    if !(0..=MAX_PAYLOAD).contains(&size) {
        return Err(Status::invalid_argument(format!(
            "payload size {size} out of range"
        )));
    }
    Ok(Payload {
        type_pb: PayloadType::COMPRESSABLE,
        body: Cow::Owned(vec![0; size as usize]),
    })
}

fn echo_status(status: &Option<EchoStatus<'_>>) -> Result<(), Status> {
    match status {
        Some(s) if s.code != 0 => Err(Status::new(
            Code::from_i32(s.code),
            s.message.clone().into_owned(),
        )),
        _ => Ok(()),
    }
}

/// The metadata to echo: (initial, trailing).
fn echo_metadata(request: &Metadata) -> Result<(Metadata, Metadata), Status> {
    let mut initial = Metadata::new();
    if let Some(v) = request.get(ECHO_INITIAL) {
        initial.insert(ECHO_INITIAL, v)?;
    }
    let mut trailing = Metadata::new();
    if let Some(v) = request.get_bin(ECHO_TRAILING) {
        trailing.insert_bin(ECHO_TRAILING, &v)?;
    }
    Ok((initial, trailing))
}

fn check_compressed(expect: Option<bool>, was_compressed: bool) -> Result<(), Status> {
    if expect == Some(true) && !was_compressed {
        return Err(Status::invalid_argument(
            "expected a compressed request message",
        ));
    }
    Ok(())
}

/// Sends one reply per parameter, sleeping `interval_us` before each.
async fn stream_replies(
    params: &[ResponseParameters],
    responses: &mut ResponseSink<StreamingOutputCallResponse<'static>>,
) -> Result<(), Status> {
    for p in params {
        if p.interval_us > 0 {
            tokio::time::sleep(Duration::from_micros(p.interval_us as u64)).await;
        }
        let reply = StreamingOutputCallResponse {
            payload: Some(zeros(p.size)?),
            ..Default::default()
        };
        let compress = p.compressed.as_ref().is_some_and(|b| b.value);
        responses.send_with(&reply, compress).await?;
    }
    Ok(())
}

/// Turns on compression for a streaming reply if any parameter asks for it (each message then
/// chooses with its own flag).
fn enable_compression(
    params: &[ResponseParameters],
    responses: &mut ResponseSink<StreamingOutputCallResponse<'static>>,
) {
    if params
        .iter()
        .any(|p| p.compressed.as_ref().is_some_and(|b| b.value))
    {
        responses.set_compression(Encoding::Gzip);
    }
}

impl TestService for TestServiceImpl {
    async fn empty_call(&self, _request: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call<'a>(
        &'a self,
        request: Request<SimpleRequest<'a>>,
    ) -> Result<Response<SimpleResponse<'a>>, Status> {
        let (initial, trailing) = echo_metadata(request.metadata())?;
        let message = request.message();
        echo_status(&message.response_status)?;
        check_compressed(
            message.expect_compressed.as_ref().map(|b| b.value),
            request.was_compressed(),
        )?;
        let reply = SimpleResponse {
            payload: Some(zeros(message.response_size)?),
            ..Default::default()
        };
        let mut response = Response::from_parts(reply, initial);
        *response.trailers_mut() = trailing;
        if message
            .response_compressed
            .as_ref()
            .is_some_and(|b| b.value)
        {
            response.set_compression(Encoding::Gzip);
        }
        Ok(response)
    }

    async fn cacheable_unary_call<'a>(
        &'a self,
        _request: Request<SimpleRequest<'a>>,
    ) -> Result<Response<SimpleResponse<'a>>, Status> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        Ok(Response::new(SimpleResponse {
            payload: Some(Payload {
                type_pb: PayloadType::COMPRESSABLE,
                body: Cow::Owned(now.to_string().into_bytes()),
            }),
            ..Default::default()
        }))
    }

    async fn streaming_output_call<'a>(
        &'a self,
        request: Request<StreamingOutputCallRequest<'a>>,
        mut responses: ResponseSink<StreamingOutputCallResponse<'static>>,
    ) -> Result<(), Status> {
        let message = request.message();
        enable_compression(&message.response_parameters, &mut responses);
        stream_replies(&message.response_parameters, &mut responses).await?;
        echo_status(&message.response_status)
    }

    async fn streaming_input_call(
        &self,
        requests: Request<Streaming<StreamingInputCallRequest<'static>>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let mut stream = requests.into_message();
        let mut total: i32 = 0;
        while let Some(request) = stream.message().await? {
            let view = request.view();
            check_compressed(
                view.expect_compressed.as_ref().map(|b| b.value),
                request.was_compressed(),
            )?;
            let size = view.payload.as_ref().map_or(0, |p| p.body.len());
            total = total.saturating_add(i32::try_from(size).unwrap_or(i32::MAX));
        }
        Ok(Response::new(StreamingInputCallResponse {
            aggregated_payload_size: total,
        }))
    }

    async fn full_duplex_call(
        &self,
        requests: Request<Streaming<StreamingOutputCallRequest<'static>>>,
        mut responses: ResponseSink<StreamingOutputCallResponse<'static>>,
    ) -> Result<(), Status> {
        let (initial, trailing) = echo_metadata(requests.metadata())?;
        if let Some(headers) = responses.metadata_mut() {
            *headers = initial;
        }
        responses.set_trailers(trailing).await?;
        let mut stream = requests.into_message();
        while let Some(request) = stream.message().await? {
            let view = request.view();
            echo_status(&view.response_status)?;
            enable_compression(&view.response_parameters, &mut responses);
            stream_replies(&view.response_parameters, &mut responses).await?;
        }
        Ok(())
    }

    async fn half_duplex_call(
        &self,
        requests: Request<Streaming<StreamingOutputCallRequest<'static>>>,
        mut responses: ResponseSink<StreamingOutputCallResponse<'static>>,
    ) -> Result<(), Status> {
        let mut stream = requests.into_message();
        let mut received = Vec::new();
        while let Some(request) = stream.message().await? {
            received.push(request);
        }
        for request in &received {
            let view = request.view();
            echo_status(&view.response_status)?;
            stream_replies(&view.response_parameters, &mut responses).await?;
        }
        Ok(())
    }

    async fn unimplemented_call(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "UnimplementedCall is deliberately not implemented",
        ))
    }
}
