//! Server reflection (gRPC's `doc/server-reflection.md`): what lets `grpcurl`, `buf curl`,
//! Postman or a `grpcio-reflection` client call this server without a copy of its `.proto`
//! files. Both versions of the service are implemented by one [`ReflectionService`]:
//! `grpc.reflection.v1.ServerReflection` and the older `grpc.reflection.v1alpha` one, which
//! many clients still try first. Their messages are the same, field for field.
//!
//! A client opens one bidirectional `ServerReflectionInfo` stream and asks any number of
//! questions; each gets one answer, in order, carrying the question back
//! (`original_request`) and the `host` it named (`valid_host`):
//!
//! | question | answer |
//! |---|---|
//! | `list_services` | the full names of the services served (given at construction) |
//! | `file_by_filename` | that file (named as imported: `"grpc/testing/test.proto"`) and every file it imports, transitively |
//! | `file_containing_symbol` | the file declaring that fully-qualified symbol (a service, a method `pkg.Svc.Method`, a message, an enum, an enum value, a field; nested ones too), and its imports |
//! | `file_containing_extension` | the file declaring that extension, and its imports |
//! | `all_extension_numbers_of_type` | the type's extension numbers (none for a proto3 message) |
//! | an unknown file, symbol, type or extension | `error_response` NOT_FOUND; the stream goes on |
//! | no question set (or one newer than this server) | `error_response` UNIMPLEMENTED |
//!
//! Files come as serialized `google.protobuf.FileDescriptorProto`s, each at most once per
//! answer, the asked-for file first. They are made at build time from `proto/` by
//! `build/descriptors.rs` (with `protobuf-parse`) and included here as constants, so answering
//! parses nothing and copies no descriptor: the reply borrows the static bytes. Every file
//! under `proto/` can be asked for, including those of services this server does not serve.
//! Earlier answers on the same stream are not remembered: every answer is complete.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::call::Request;
use crate::proto::grpc::reflection::{v1, v1alpha};
use crate::server::{ResponseSink, Router, Server};
use crate::streaming::Streaming;
use crate::wire::status::{Code, Status};

/// The tables generated from `proto/` by build.rs (`build/descriptors.rs`).
#[allow(missing_docs)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/descriptors.rs"));
}

pub use generated::{EXTENSIONS, FILE_DEPENDENCIES, FILE_DESCRIPTORS, MESSAGES, SYMBOLS};

/// The full names of the two reflection services.
pub const SERVICE_NAMES: [&str; 2] = [
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The serialized `FileDescriptorProto` of `name` (as imported), if `proto/` has that file.
pub fn file_descriptor(name: &str) -> Option<&'static [u8]> {
    FILE_DESCRIPTORS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| FILE_DESCRIPTORS[i].1)
}

/// The file declaring fully-qualified `symbol` (a leading dot is allowed), if any.
pub fn file_containing_symbol(symbol: &str) -> Option<&'static str> {
    let symbol = symbol.strip_prefix('.').unwrap_or(symbol);
    SYMBOLS
        .binary_search_by(|(s, _)| (*s).cmp(symbol))
        .ok()
        .map(|i| SYMBOLS[i].1)
}

/// `name` and every file it imports, transitively, each once, `name` first; `None` if
/// `proto/` has no file `name`.
pub fn file_with_dependencies(name: &str) -> Option<Vec<&'static [u8]>> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut stack = vec![find_name(name)?];
    while let Some(file) = stack.pop() {
        if !seen.insert(file) {
            continue;
        }
        out.push(file_descriptor(file)?);
        let deps = FILE_DEPENDENCIES
            .iter()
            .find(|(n, _)| *n == file)
            .map_or(&[][..], |(_, d)| d);
        // Reversed, so that they come out in import order.
        stack.extend(deps.iter().rev().filter_map(|d| find_name(d)));
    }
    Some(out)
}

/// `name` as the `'static` key of [`FILE_DESCRIPTORS`].
fn find_name(name: &str) -> Option<&'static str> {
    FILE_DESCRIPTORS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| FILE_DESCRIPTORS[i].0)
}

/// A question, whichever version asked it.
enum Question<'q> {
    FileByFilename(&'q str),
    FileContainingSymbol(&'q str),
    FileContainingExtension(&'q str, i32),
    AllExtensionNumbersOfType(&'q str),
    ListServices,
    Unknown,
}

/// An answer, before it is put in a version's message.
enum Answer<'s> {
    Files(Vec<&'static [u8]>),
    ExtensionNumbers(String, Vec<i32>),
    Services(&'s [String]),
    Error(Code, String),
}

/// Both versions of `ServerReflection`; serve it with
/// [`v1::ServerReflectionServer`] and [`v1alpha::ServerReflectionServer`] (or
/// [`ReflectionService::add_to`], which does both).
#[derive(Clone, Debug)]
pub struct ReflectionService {
    services: Arc<[String]>,
}

impl ReflectionService {
    /// A reflection service that lists `services` (full names, `package.Service`).
    pub fn new<S: Into<String>>(services: impl IntoIterator<Item = S>) -> Self {
        ReflectionService {
            services: services.into_iter().map(Into::into).collect(),
        }
    }

    /// Lists the services of `router`, then the two reflection services (unless already
    /// there).
    pub fn for_router(router: &Router) -> Self {
        let mut names: Vec<String> = router.services().iter().map(|s| (*s).to_owned()).collect();
        for name in SERVICE_NAMES {
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        ReflectionService::new(names)
    }

    /// Adds both reflection services to `server`, listing every service it already has and
    /// themselves. Add the other services first: those added later are not listed.
    pub fn add_to(server: Server) -> Server {
        let reflection = ReflectionService::for_router(server.router());
        server
            .add_service(v1::ServerReflectionServer::new(reflection.clone()))
            .add_service(v1alpha::ServerReflectionServer::new(reflection))
    }

    /// The services listed.
    pub fn services(&self) -> &[String] {
        &self.services
    }

    fn answer(&self, question: Question<'_>) -> Answer<'_> {
        let not_found = |what: String| Answer::Error(Code::NotFound, what);
        let files = |file: &str| match file_with_dependencies(file) {
            Some(files) => Answer::Files(files),
            None => not_found(format!("file {file:?} not found")),
        };
        match question {
            Question::ListServices => Answer::Services(&self.services),
            Question::FileByFilename(name) => files(name),
            Question::FileContainingSymbol(symbol) => match file_containing_symbol(symbol) {
                Some(file) => files(file),
                None => not_found(format!("symbol {symbol:?} not found")),
            },
            Question::FileContainingExtension(ty, number) => {
                let ty = ty.strip_prefix('.').unwrap_or(ty);
                match EXTENSIONS.iter().find(|(t, n, _)| *t == ty && *n == number) {
                    Some((_, _, file)) => files(file),
                    None => not_found(format!("extension {number} of {ty:?} not found")),
                }
            }
            Question::AllExtensionNumbersOfType(ty) => {
                let ty = ty.strip_prefix('.').unwrap_or(ty);
                if MESSAGES.binary_search(&ty).is_err() {
                    return not_found(format!("message type {ty:?} not found"));
                }
                let numbers = EXTENSIONS
                    .iter()
                    .filter(|(t, _, _)| *t == ty)
                    .map(|(_, n, _)| *n)
                    .collect();
                Answer::ExtensionNumbers(ty.to_owned(), numbers)
            }
            Question::Unknown => Answer::Error(
                Code::Unimplemented,
                "no known question is set in the request".to_owned(),
            ),
        }
    }
}

/// Implements one version's `ServerReflection` trait: its messages have the same fields under
/// another module.
macro_rules! reflection_version {
    ($version:ident) => {
        impl $version::ServerReflection for ReflectionService {
            async fn server_reflection_info(
                &self,
                requests: Request<Streaming<$version::ServerReflectionRequest<'static>>>,
                mut responses: ResponseSink<$version::ServerReflectionResponse<'static>>,
            ) -> Result<(), Status> {
                use $version::mod_ServerReflectionRequest::OneOfmessage_request as Q;
                use $version::mod_ServerReflectionResponse::OneOfmessage_response as A;
                let mut requests = requests.into_message();
                while let Some(request) = requests.message().await? {
                    let request = request.view();
                    let question = match &request.message_request {
                        Q::file_by_filename(name) => Question::FileByFilename(name),
                        Q::file_containing_symbol(symbol) => Question::FileContainingSymbol(symbol),
                        Q::file_containing_extension(e) => Question::FileContainingExtension(
                            &e.containing_type,
                            e.extension_number,
                        ),
                        Q::all_extension_numbers_of_type(ty) => {
                            Question::AllExtensionNumbersOfType(ty)
                        }
                        Q::list_services(_) => Question::ListServices,
                        Q::None => Question::Unknown,
                    };
                    let message_response = match self.answer(question) {
                        Answer::Files(files) => {
                            A::file_descriptor_response($version::FileDescriptorResponse {
                                file_descriptor_proto: files
                                    .into_iter()
                                    .map(Cow::Borrowed)
                                    .collect(),
                            })
                        }
                        Answer::ExtensionNumbers(base_type_name, extension_number) => {
                            A::all_extension_numbers_response($version::ExtensionNumberResponse {
                                base_type_name: Cow::Owned(base_type_name),
                                extension_number,
                            })
                        }
                        Answer::Services(names) => {
                            A::list_services_response($version::ListServiceResponse {
                                service: names
                                    .iter()
                                    .map(|name| $version::ServiceResponse {
                                        name: Cow::Borrowed(name.as_str()),
                                    })
                                    .collect(),
                            })
                        }
                        Answer::Error(code, message) => {
                            A::error_response($version::ErrorResponse {
                                error_code: code as i32,
                                error_message: Cow::Owned(message),
                            })
                        }
                    };
                    let response = $version::ServerReflectionResponse {
                        valid_host: request.host.clone(),
                        original_request: Some(request.clone()),
                        message_response,
                    };
                    responses.send(&response).await?;
                }
                Ok(())
            }
        }
    };
}

reflection_version!(v1);
reflection_version!(v1alpha);

#[cfg(test)]
mod tests {
    use super::*;

    /// The string field 1 (`name`) of a serialized FileDescriptorProto.
    fn name_of(file: &[u8]) -> &str {
        assert_eq!(file[0], 0x0a, "field 1, length-delimited, comes first");
        let len = file[1] as usize; // every name here is shorter than 128 bytes
        std::str::from_utf8(&file[2..2 + len]).expect("utf-8 name")
    }

    #[test]
    fn tables_cover_proto_dir() {
        for (name, bytes) in FILE_DESCRIPTORS {
            assert_eq!(name_of(bytes), *name);
        }
        assert!(FILE_DESCRIPTORS.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(SYMBOLS.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(file_containing_symbol("UserService"), Some("user.proto"));
        assert_eq!(
            file_containing_symbol(".grpc.health.v1.Health.Watch"),
            Some("grpc/health/v1/health.proto")
        );
        assert_eq!(
            file_containing_symbol("grpc.health.v1.HealthCheckResponse.ServingStatus"),
            Some("grpc/health/v1/health.proto")
        );
        // Enum values are siblings of their enum.
        assert_eq!(
            file_containing_symbol("grpc.health.v1.HealthCheckResponse.SERVING"),
            Some("grpc/health/v1/health.proto")
        );
        assert_eq!(
            file_containing_symbol("grpc.testing.Payload.body"),
            Some("grpc/testing/messages.proto")
        );
        assert_eq!(file_containing_symbol("grpc.testing"), None);
        assert!(MESSAGES.contains(&"grpc.reflection.v1alpha.ServerReflectionRequest"));
        assert!(EXTENSIONS.is_empty());
    }

    #[test]
    fn files_come_with_their_imports_once() {
        let files = file_with_dependencies("grpc/testing/test.proto").expect("known file");
        let names: Vec<_> = files.iter().map(|f| name_of(f)).collect();
        assert_eq!(
            names,
            [
                "grpc/testing/test.proto",
                "grpc/testing/empty.proto",
                "grpc/testing/messages.proto"
            ]
        );
        let names: Vec<_> = file_with_dependencies("user.proto")
            .expect("known file")
            .iter()
            .map(|f| name_of(f))
            .collect();
        assert_eq!(names, ["user.proto"]);
        assert!(file_with_dependencies("nope.proto").is_none());
    }

    #[test]
    fn answers_errors_in_band() {
        let service = ReflectionService::new(["UserService"]);
        assert!(matches!(
            service.answer(Question::FileContainingSymbol("no.Such")),
            Answer::Error(Code::NotFound, _)
        ));
        assert!(matches!(
            service.answer(Question::AllExtensionNumbersOfType("grpc.testing.Payload")),
            Answer::ExtensionNumbers(ref t, ref n) if t == "grpc.testing.Payload" && n.is_empty()
        ));
        assert!(matches!(
            service.answer(Question::AllExtensionNumbersOfType("grpc.testing.Nope")),
            Answer::Error(Code::NotFound, _)
        ));
        assert!(matches!(
            service.answer(Question::FileContainingExtension(
                "grpc.testing.Payload",
                100
            )),
            Answer::Error(Code::NotFound, _)
        ));
        assert!(matches!(
            service.answer(Question::Unknown),
            Answer::Error(Code::Unimplemented, _)
        ));
        assert!(matches!(
            service.answer(Question::ListServices),
            Answer::Services(s) if s == ["UserService".to_owned()]
        ));
    }
}
