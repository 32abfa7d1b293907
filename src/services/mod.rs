//! Service implementations shipped with rawgrpc.
//!
//! * [`user`]: the article's UserService (GetUser / CreateUser) over a [`user::UserStore`].
//! * [`health`]: the standard `grpc.health.v1.Health` service and its [`health::HealthReporter`].
//! * [`reflection`]: server reflection, `grpc.reflection.v1` and `v1alpha`, from descriptors
//!   built out of `proto/` at compile time.

pub mod health;
pub mod reflection;
pub mod user;
