//! One client call on the wire, and reading its outcome back to a [`Status`].
//!
//! The request is one HEADERS frame (`:method POST`, `:scheme`, `:path`, `:authority`,
//! `te: trailers`, `content-type: application/grpc`, `grpc-timeout` when there is a deadline,
//! then the custom metadata) and one DATA frame with END_STREAM holding the message.
//!
//! The response can take three shapes (gRPC over HTTP/2, "Responses"):
//! * HEADERS, DATA…, trailers: the message(s), then `grpc-status` in the trailers;
//! * Trailers-Only: one HEADERS frame with END_STREAM holding `grpc-status`;
//! * not gRPC at all (a proxy's 404, a 503 page): the HTTP status is mapped to a code
//!   (`doc/http-grpc-status-mapping.md`), as [`Status::from_http_status`] does.
//!
//! A deadline bounds the whole call: when it passes, the stream is reset with CANCEL (which is
//! how a client cancels, "Client Cancellation") and the call fails with DEADLINE_EXCEEDED.

use bytes::Bytes;
use h2::RecvStream;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE, TE, USER_AGENT};
use http::{Method, Uri};
use quick_protobuf::MessageWrite;

use crate::call::{Request, Response};
use crate::client::channel::Channel;
use crate::codec::{self, Decoded, Message};
use crate::wire::frame::{MessageDecoder, WireMessage};
use crate::wire::metadata::Metadata;
use crate::wire::status::{Code, Status};
use crate::wire::timeout;

const USER_AGENT_VALUE: &str = concat!("grpc-rust-rawgrpc/", env!("CARGO_PKG_VERSION"));

impl Channel {
    /// Makes a unary call to `path` (`/package.Service/Method`).
    ///
    /// Generated clients call this; it is public so a method can be called by path alone.
    pub async fn unary<Req, Resp>(
        &self,
        path: &str,
        request: Request<Req>,
    ) -> Result<Response<Decoded<Resp>>, Status>
    where
        Req: MessageWrite,
        Resp: Message,
    {
        let (message, metadata, timeout) = request.into_parts();
        let encoded = codec::encode(&message, self.config.max_send_message_len)?;
        let head = self.request_head(path, &metadata, timeout)?;
        let call = self.exchange(head, encoded);
        match timeout {
            None => call.await,
            Some(t) => tokio::time::timeout(t, call)
                .await
                .unwrap_or_else(|_| Err(Status::deadline_exceeded("deadline exceeded"))),
        }
    }

    fn request_head(
        &self,
        path: &str,
        metadata: &Metadata,
        timeout: Option<std::time::Duration>,
    ) -> Result<http::Request<()>, Status> {
        let uri = Uri::builder()
            .scheme("http")
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|_| Status::internal(format!("invalid method path {path:?}")))?;
        let mut head = http::Request::new(());
        *head.method_mut() = Method::POST;
        *head.uri_mut() = uri;
        let headers = head.headers_mut();
        // The spec asks for grpc-timeout right after the pseudo-headers.
        if let Some(t) = timeout {
            if let Ok(v) = HeaderValue::from_str(&timeout::format(t)) {
                headers.insert("grpc-timeout", v);
            }
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        headers.insert(TE, HeaderValue::from_static("trailers"));
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        for (name, value) in metadata.headers() {
            headers.append(name, value.clone());
        }
        Ok(head)
    }

    /// Sends the request and reads the response. Dropping this future (the deadline passed)
    /// drops the h2 stream handles, which resets the stream with CANCEL.
    async fn exchange<Resp: Message>(
        &self,
        head: http::Request<()>,
        encoded: Bytes,
    ) -> Result<Response<Decoded<Resp>>, Status> {
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .map_err(|e| Status::from_h2(&e))?;
        let (response, mut stream) = send
            .send_request(head, false)
            .map_err(|e| Status::from_h2(&e))?;
        stream
            .send_data(encoded, true)
            .map_err(|e| Status::from_h2(&e))?;
        let response = response.await.map_err(|e| Status::from_h2(&e))?;
        let (parts, mut body) = response.into_parts();
        if parts.status != http::StatusCode::OK {
            return Err(Status::from_http_status(parts.status.as_u16()));
        }
        let is_grpc = parts
            .headers
            .get(CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        if !is_grpc {
            return Err(Status::unknown(
                "response content-type is not application/grpc",
            ));
        }
        if body.is_end_stream() {
            // Trailers-Only: the status is in the headers, and there is no message.
            let status = status_from(&parts.headers);
            return Err(if status.code() == Code::Ok {
                Status::internal("server sent OK without a response message")
            } else {
                status
            });
        }
        let message = self.read_message(&mut body).await?;
        let trailers = body
            .trailers()
            .await
            .map_err(|e| Status::from_h2(&e))?
            .ok_or_else(|| Status::internal("response ended without trailers"))?;
        let status = status_from(&trailers);
        if status.code() != Code::Ok {
            return Err(status);
        }
        let message =
            message.ok_or_else(|| Status::internal("server sent OK without a response message"))?;
        if message.compressed {
            return Err(Status::internal(
                "compressed response message without negotiated grpc-encoding",
            ));
        }
        let decoded = Decoded::<Resp>::new(message.payload)?;
        Ok(Response::from_parts(
            decoded,
            Metadata::from_headers(parts.headers),
        ))
    }

    async fn read_message(&self, body: &mut RecvStream) -> Result<Option<WireMessage>, Status> {
        let mut decoder = MessageDecoder::new(self.config.max_receive_message_len);
        let mut message = None;
        while let Some(chunk) = body.data().await {
            let chunk = chunk.map_err(|e| Status::from_h2(&e))?;
            let _ = body.flow_control().release_capacity(chunk.len());
            decoder.push(chunk);
            while let Some(m) = decoder.next_message()? {
                if message.is_some() {
                    return Err(Status::internal(
                        "more than one response message for a unary call",
                    ));
                }
                message = Some(m);
            }
        }
        decoder.finish()?;
        Ok(message)
    }
}

/// The status carried by a trailer block (or Trailers-Only headers). A block without
/// `grpc-status` is a broken response: UNKNOWN, as the spec asks implementations to synthesize.
fn status_from(headers: &HeaderMap) -> Status {
    match headers.get("grpc-status") {
        Some(code) => Status::from_headers(
            code.as_bytes(),
            headers.get("grpc-message").map(HeaderValue::as_bytes),
        ),
        None => Status::unknown("response has no grpc-status"),
    }
}
