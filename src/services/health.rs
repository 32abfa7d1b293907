//! The standard health checking service, `grpc.health.v1.Health` (gRPC's
//! `doc/health-checking.md`), which load balancers, Kubernetes gRPC probes,
//! `grpc_health_probe` and `grpcio-health-checking` ask.
//!
//! The server keeps one status per service name, plus one for `""`, the server as a whole. The
//! application sets them through a [`HealthReporter`], a cloneable handle shared with the
//! [`HealthService`] that answers the calls:
//!
//! | call | condition | answer |
//! |---|---|---|
//! | Check | name has a status | OK, that status |
//! | Check | name never registered | NOT_FOUND |
//! | Watch | any name | the current status at once (SERVICE_UNKNOWN for an unregistered name), then one message per change; the stream stays open |
//! | Watch | after [`HealthReporter::shutdown`] | NOT_SERVING, then the stream ends with OK so the server can drain |
//!
//! A name is the full service name, `package.Service` (`grpc.health.v1.Health`), or just
//! `Service` for a file without a package (the article's `UserService`).
//!
//! Statuses live in one [`tokio::sync::watch`] channel holding the whole table: a change wakes
//! every Watch stream, and each sends only if its own service's status changed. A watch channel
//! keeps the latest value only, so a reader that is slow sees the newest status, not every
//! intermediate one (gRPC's health service behaves the same). A Watch of a name nobody
//! registers costs one task and no entry in the table. A Watch ends when its client goes
//! away: the call's task drops the handler when the client resets the stream or the
//! connection closes.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::call::{Request, Response};
use crate::proto::grpc::health::v1::mod_HealthCheckResponse::ServingStatus;
use crate::proto::grpc::health::v1::{Health, HealthCheckRequest, HealthCheckResponse};
use crate::server::ResponseSink;
use crate::wire::status::Status;

/// The status table, as the watch channel carries it.
#[derive(Clone, Debug, Default)]
struct Table {
    statuses: HashMap<String, ServingStatus>,
    /// Set by [`HealthReporter::shutdown`]: every status is NOT_SERVING for good.
    shut_down: bool,
}

impl Table {
    /// The status of `service` as Watch reports it.
    fn watch_status(&self, service: &str) -> ServingStatus {
        self.statuses
            .get(service)
            .copied()
            .unwrap_or(ServingStatus::SERVICE_UNKNOWN)
    }
}

/// Sets the statuses a [`HealthService`] reports. Clones share one table.
#[derive(Clone, Debug)]
pub struct HealthReporter {
    table: Arc<watch::Sender<Table>>,
}

impl Default for HealthReporter {
    fn default() -> Self {
        Self::new()
    }
}

impl HealthReporter {
    /// An empty table: every name is unknown, `""` included, until set.
    pub fn new() -> Self {
        HealthReporter {
            table: Arc::new(watch::Sender::new(Table::default())),
        }
    }

    /// The service answering Check and Watch from this table.
    pub fn service(&self) -> HealthService {
        HealthService {
            reporter: self.clone(),
        }
    }

    /// Reports `service` (`""`: the whole server) as SERVING.
    pub fn set_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::SERVING);
    }

    /// Reports `service` (`""`: the whole server) as NOT_SERVING.
    pub fn set_not_serving(&self, service: &str) {
        self.set_status(service, ServingStatus::NOT_SERVING);
    }

    /// Sets the status of `service`, waking its Watch streams if it changed. Ignored after
    /// [`shutdown`](Self::shutdown), as in grpc-go, so that a component still reporting
    /// SERVING cannot undo it while the server drains.
    pub fn set_status(&self, service: &str, status: ServingStatus) {
        self.table.send_if_modified(|table| {
            if table.shut_down {
                return false;
            }
            let old = table.statuses.insert(service.to_owned(), status);
            old != Some(status)
        });
    }

    /// Forgets `service`: Check answers NOT_FOUND again, Watch SERVICE_UNKNOWN.
    pub fn clear_status(&self, service: &str) {
        self.table
            .send_if_modified(|table| !table.shut_down && table.statuses.remove(service).is_some());
    }

    /// The status of `service`, if it has one.
    pub fn status(&self, service: &str) -> Option<ServingStatus> {
        self.table.borrow().statuses.get(service).copied()
    }

    /// The server is going away: every service and `""` become NOT_SERVING for good (later
    /// changes are ignored), and every Watch stream sends NOT_SERVING and then ends, so that
    /// it does not hold up a graceful drain. Call it before the server starts draining.
    pub fn shutdown(&self) {
        self.table.send_modify(|table| {
            table.shut_down = true;
            table
                .statuses
                .insert(String::new(), ServingStatus::NOT_SERVING);
            for status in table.statuses.values_mut() {
                *status = ServingStatus::NOT_SERVING;
            }
        });
    }

    /// Whether [`shutdown`](Self::shutdown) was called.
    pub fn is_shut_down(&self) -> bool {
        self.table.borrow().shut_down
    }
}

/// `grpc.health.v1.Health`, answering from a [`HealthReporter`]'s table; serve it with
/// [`HealthServer`](crate::proto::grpc::health::v1::HealthServer).
#[derive(Clone, Debug)]
pub struct HealthService {
    reporter: HealthReporter,
}

impl HealthService {
    /// A service with an empty table of its own, and the reporter that sets it.
    pub fn new() -> (HealthService, HealthReporter) {
        let reporter = HealthReporter::new();
        (reporter.service(), reporter)
    }
}

impl Health for HealthService {
    async fn check<'a>(
        &'a self,
        request: Request<HealthCheckRequest<'a>>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let service = &request.message().service;
        match self.reporter.status(service) {
            Some(status) => Ok(Response::new(HealthCheckResponse { status })),
            None => Err(Status::not_found(format!("unknown service {service:?}"))),
        }
    }

    async fn watch<'a>(
        &'a self,
        request: Request<HealthCheckRequest<'a>>,
        mut responses: ResponseSink<HealthCheckResponse>,
    ) -> Result<(), Status> {
        let service = request.into_message().service.into_owned();
        let mut table = self.reporter.table.subscribe();
        let mut last = None;
        loop {
            // Read under the lock, send after it is released (the guard must not be held
            // across an await).
            let (status, shut_down) = {
                let table = table.borrow_and_update();
                (table.watch_status(&service), table.shut_down)
            };
            if last != Some(status) {
                responses.send(&HealthCheckResponse { status }).await?;
                last = Some(status);
            }
            if shut_down {
                return Ok(());
            }
            if table.changed().await.is_err() {
                // Every reporter is gone: the status can no longer change.
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shutdown_flips_everything_and_freezes_the_table() {
        let reporter = HealthReporter::new();
        assert_eq!(reporter.status(""), None);
        reporter.set_serving("");
        reporter.set_serving("a.A");
        reporter.set_not_serving("b.B");
        assert_eq!(reporter.status("a.A"), Some(ServingStatus::SERVING));
        reporter.clear_status("b.B");
        assert_eq!(reporter.status("b.B"), None);
        reporter.shutdown();
        assert!(reporter.is_shut_down());
        assert_eq!(reporter.status(""), Some(ServingStatus::NOT_SERVING));
        assert_eq!(reporter.status("a.A"), Some(ServingStatus::NOT_SERVING));
        reporter.set_serving("a.A");
        assert_eq!(reporter.status("a.A"), Some(ServingStatus::NOT_SERVING));
        assert_eq!(reporter.status("b.B"), None);
    }
}
