//! The routing table: `:path` → handler.
//!
//! A gRPC method lives at the HTTP/2 path `/{package.Service}/{Method}` (gRPC over HTTP/2,
//! "Path"; case-sensitive). The router is a hash map from that exact string to a type-erased
//! handler; an unknown path is answered UNIMPLEMENTED by the caller of [`Router::route`].
//!
//! The entries come from generated code. For each rpc, build.rs writes a marker type that
//! implements [`UnaryMethod`] for any implementation `S` of the service trait: it names the
//! path, the request and response types, and forwards to `S`'s method. [`Route::unary`] turns
//! such a marker into a handler that runs the whole call (see [`super::call`]). So adding an
//! rpc to a `.proto` adds a route with no hand-written glue.

use std::collections::HashMap;
use std::future::Future;
use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use crate::call::{Request, Response};
use crate::codec::Message;
use crate::server::call::ServerCall;
use crate::server::sink::ResponseSink;
use crate::streaming::Streaming;
use crate::wire::status::Status;

/// The borrowed form of message family `M`, living for `'a`.
pub type View<'a, M> = <M as Message>::View<'a>;

/// A unary rpc of service `S`, implemented by generated marker types.
pub trait UnaryMethod<S: ?Sized>: Send + Sync + 'static {
    /// The HTTP/2 path, `/package.Service/Method`.
    const PATH: &'static str;
    /// The request message family.
    type Request: Message;
    /// The response message family.
    type Response: Message;
    /// Runs the method: forwards to the service implementation.
    fn call<'a>(
        service: &'a S,
        request: Request<View<'a, Self::Request>>,
    ) -> impl Future<Output = Result<Response<View<'a, Self::Response>>, Status>> + Send + 'a;
}

/// A server-streaming rpc of service `S`: one request, a stream of replies into a sink.
pub trait ServerStreamingMethod<S: ?Sized>: Send + Sync + 'static {
    /// The HTTP/2 path, `/package.Service/Method`.
    const PATH: &'static str;
    /// The request message family.
    type Request: Message;
    /// The response message family.
    type Response: Message;
    /// Runs the method: forwards to the service implementation.
    fn call<'a>(
        service: &'a S,
        request: Request<View<'a, Self::Request>>,
        responses: ResponseSink<Self::Response>,
    ) -> impl Future<Output = Result<(), Status>> + Send + 'a;
}

/// A client-streaming rpc of service `S`: a stream of requests, one reply.
pub trait ClientStreamingMethod<S: ?Sized>: Send + Sync + 'static {
    /// The HTTP/2 path, `/package.Service/Method`.
    const PATH: &'static str;
    /// The request message family.
    type Request: Message;
    /// The response message family.
    type Response: Message;
    /// Runs the method: forwards to the service implementation.
    fn call<'a>(
        service: &'a S,
        requests: Request<Streaming<Self::Request>>,
    ) -> impl Future<Output = Result<Response<View<'a, Self::Response>>, Status>> + Send + 'a;
}

/// A bidirectional-streaming rpc of service `S`: a stream each way.
pub trait BidiStreamingMethod<S: ?Sized>: Send + Sync + 'static {
    /// The HTTP/2 path, `/package.Service/Method`.
    const PATH: &'static str;
    /// The request message family.
    type Request: Message;
    /// The response message family.
    type Response: Message;
    /// Runs the method: forwards to the service implementation.
    fn call<'a>(
        service: &'a S,
        requests: Request<Streaming<Self::Request>>,
        responses: ResponseSink<Self::Response>,
    ) -> impl Future<Output = Result<(), Status>> + Send + 'a;
}

/// A generated service adapter (`…Server`): a name and a list of routes.
pub trait Service {
    /// The full service name, `package.Service`.
    const NAME: &'static str;
    /// One route per rpc.
    fn routes(&self) -> Vec<Route>;
}

/// A type-erased handler: starts a call, which then runs to its final status.
///
/// A streaming call spawns its own concrete future, so starting it allocates the task and
/// nothing else. A unary call joins the connection's [`CallBatch`], to be polled in place.
pub trait Handler: Send + Sync {
    /// Starts the call, inside `span`; a unary call is added to `batch`.
    fn start(&self, call: ServerCall, span: tracing::Span, batch: &mut CallBatch);
}

/// A call future, boxed so that it can be spawned after it was polled.
type BoxedCall = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Unary calls accepted together, run in the connection task before any task is spawned.
///
/// When h2 hands over a new stream it has already processed every frame read with it, so a
/// small unary request usually arrives complete: HEADERS, then DATA with END_STREAM. If its
/// handler then finishes without waiting (like GetUser, a map lookup), one poll runs the whole
/// call (decode, handler, reply queued in h2), with no task to schedule, wake and free.
///
/// The connection first accepts every stream h2 already has and only then runs the batch
/// ([`CallBatch::run`]): the replies are all queued before h2 next writes, so they leave
/// together in one write, as the replies of spawned tasks would, instead of one write each.
///
/// The first poll uses a waker that does nothing. That is sound because a call still pending
/// after it is spawned at once, and a spawned task is polled right away, which registers the
/// task's real waker with whatever the call waits on (the request body, the deadline timer,
/// the handler's own futures). A call that cannot finish in place costs one more allocation
/// than a plain spawn: the future was boxed before its first poll, since a polled future
/// cannot move.
#[derive(Default)]
pub struct CallBatch {
    calls: Vec<BoxedCall>,
}

impl CallBatch {
    /// An empty batch.
    pub fn new() -> CallBatch {
        CallBatch::default()
    }

    fn push(&mut self, call: impl Future<Output = ()> + Send + 'static) {
        self.calls.push(Box::pin(call));
    }

    /// Polls every call once, here; spawns the ones not finished.
    ///
    /// A handler that panics takes down only its own call, as it would in a task of its own
    /// (where tokio catches the panic): the call is dropped, so h2 resets its stream, and the
    /// connection and its other calls go on.
    pub fn run(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        for mut call in self.calls.drain(..) {
            let poll = std::panic::catch_unwind(AssertUnwindSafe(|| call.as_mut().poll(&mut cx)));
            match poll {
                Ok(Poll::Ready(())) => {}
                Ok(Poll::Pending) => {
                    tokio::spawn(call);
                }
                Err(_) => tracing::error!("a handler panicked; its call was dropped"),
            }
        }
    }
}

/// One entry of the routing table.
pub struct Route {
    path: &'static str,
    handler: Arc<dyn Handler>,
}

/// Adds a unary call to the batch.
fn batched<F>(call: F, batch: &mut CallBatch)
where
    F: Future<Output = ()> + Send + 'static,
{
    batch.push(call);
}

/// Spawns a streaming call: it would not finish on a first poll anyway.
fn spawn<F>(call: F, _: &mut CallBatch)
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(call);
}

/// Generates, per call kind, a route constructor and the handler that runs the call.
macro_rules! call_kinds {
    ($($(#[$doc:meta])* $ctor:ident, $handler:ident, $method:ident, $run:ident, $start:path;)*) => {
        impl Route {
            $(
                $(#[$doc])*
                pub fn $ctor<M, S>(service: Arc<S>) -> Route
                where
                    M: $method<S>,
                    S: Send + Sync + 'static + ?Sized,
                {
                    Route {
                        path: M::PATH,
                        handler: Arc::new($handler::<M, S> {
                            service,
                            _method: PhantomData,
                        }),
                    }
                }
            )*
        }

        $(
            struct $handler<M, S: ?Sized> {
                service: Arc<S>,
                _method: PhantomData<fn() -> M>,
            }

            impl<M, S> Handler for $handler<M, S>
            where
                M: $method<S>,
                S: Send + Sync + 'static + ?Sized,
            {
                fn start(&self, call: ServerCall, span: tracing::Span, batch: &mut CallBatch) {
                    let run = call.$run::<M, S>(Arc::clone(&self.service));
                    $start(tracing::Instrument::instrument(run, span), batch);
                }
            }
        )*
    };
}

call_kinds! {
    /// The route of unary method `M` of `service`.
    unary, UnaryHandler, UnaryMethod, run_unary, batched;
    /// The route of server-streaming method `M` of `service`.
    server_streaming, ServerStreamingHandler, ServerStreamingMethod, run_server_streaming, spawn;
    /// The route of client-streaming method `M` of `service`.
    client_streaming, ClientStreamingHandler, ClientStreamingMethod, run_client_streaming, spawn;
    /// The route of bidirectional-streaming method `M` of `service`.
    bidi_streaming, BidiStreamingHandler, BidiStreamingMethod, run_bidi_streaming, spawn;
}

impl Route {
    /// A route with a hand-written handler.
    pub fn new(path: &'static str, handler: Arc<dyn Handler>) -> Route {
        Route { path, handler }
    }

    /// The path this route serves.
    pub fn path(&self) -> &'static str {
        self.path
    }
}

/// The routing table.
#[derive(Default)]
pub struct Router {
    routes: HashMap<&'static str, Arc<dyn Handler>>,
    services: Vec<&'static str>,
}

impl Router {
    /// An empty table.
    pub fn new() -> Self {
        Router::default()
    }

    /// Adds every route of `service`; a path added twice keeps the later handler.
    pub fn add_service<T: Service>(&mut self, service: T) {
        self.services.push(T::NAME);
        for route in service.routes() {
            self.add_route(route);
        }
    }

    /// Adds one route.
    pub fn add_route(&mut self, route: Route) {
        self.routes.insert(route.path, route.handler);
    }

    /// The handler for `path`, if any.
    pub fn route(&self, path: &str) -> Option<&Arc<dyn Handler>> {
        self.routes.get(path)
    }

    /// The full names of the services added, in order.
    pub fn services(&self) -> &[&'static str] {
        &self.services
    }

    /// Every routed path, sorted.
    pub fn paths(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.routes.keys().copied().collect();
        v.sort_unstable();
        v
    }
}
