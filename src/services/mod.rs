//! Service implementations shipped with rawgrpc.
//!
//! * [`user`]: the article's UserService (GetUser / CreateUser) over a [`user::UserStore`].

pub mod user;
