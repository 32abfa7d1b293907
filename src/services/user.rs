//! The article's UserService: GetUser and CreateUser over a pluggable [`UserStore`].
//!
//! The article stores users in a dict and answers a missing user with a field that does not
//! exist in its proto. This version keeps the dict (an in-memory map, the default store) and
//! answers with gRPC status codes instead:
//!
//! | call | condition | status |
//! |---|---|---|
//! | CreateUser | `user` missing | INVALID_ARGUMENT |
//! | CreateUser | `user.id` empty | OK; the server assigns a fresh unique id |
//! | CreateUser | `user.id` already stored | ALREADY_EXISTS |
//! | CreateUser | otherwise | OK; the stored user, with its id |
//! | GetUser | `user` missing or `user.id` empty | INVALID_ARGUMENT |
//! | GetUser | no user with that id | NOT_FOUND, naming the id |
//! | GetUser | otherwise | OK; the stored user |

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use crate::call::{Request, Response};
use crate::proto::user::{
    CreateUserRequest, CreateUserResponse, User, UserRequest, UserResponse, UserService,
};
use crate::wire::status::Status;

/// Where users live. The service only needs these two operations.
pub trait UserStore: Send + Sync + 'static {
    /// The user with `id`, if any.
    fn get(&self, id: &str) -> Option<User<'static>>;

    /// Stores `user`. An empty id is replaced by a fresh unique one; an id already present is
    /// refused with ALREADY_EXISTS. Returns the user as stored.
    fn create(&self, user: User<'_>) -> Result<User<'static>, Status>;
}

/// The default store: a map in memory, like the article's `self.users = {}`.
#[derive(Default)]
pub struct InMemoryUserStore {
    users: RwLock<HashMap<String, User<'static>>>,
    next_id: AtomicU64,
}

impl InMemoryUserStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

fn into_owned(user: User<'_>) -> User<'static> {
    User {
        name: Cow::Owned(user.name.into_owned()),
        email: Cow::Owned(user.email.into_owned()),
        age: user.age,
        id: Cow::Owned(user.id.into_owned()),
    }
}

impl UserStore for InMemoryUserStore {
    fn get(&self, id: &str) -> Option<User<'static>> {
        // A poisoned lock only means a panic happened elsewhere mid-insert; the map is intact.
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.get(id).cloned()
    }

    fn create(&self, user: User<'_>) -> Result<User<'static>, Status> {
        let mut user = into_owned(user);
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        if user.id.is_empty() {
            // Ids a client chose may collide with generated ones: skip those.
            loop {
                let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                let id = format!("user-{n}");
                if !users.contains_key(&id) {
                    user.id = Cow::Owned(id);
                    break;
                }
            }
        } else if users.contains_key(user.id.as_ref()) {
            return Err(Status::already_exists(format!(
                "user {:?} already exists",
                user.id
            )));
        }
        users.insert(user.id.to_string(), user.clone());
        Ok(user)
    }
}

/// The UserService over a store.
pub struct UserServiceImpl<S = InMemoryUserStore> {
    store: S,
}

impl UserServiceImpl<InMemoryUserStore> {
    /// The service over an empty in-memory store.
    pub fn in_memory() -> Self {
        UserServiceImpl::new(InMemoryUserStore::new())
    }
}

impl<S: UserStore> UserServiceImpl<S> {
    /// The service over `store`.
    pub fn new(store: S) -> Self {
        UserServiceImpl { store }
    }
}

impl<S: UserStore> UserService for UserServiceImpl<S> {
    async fn get_user<'a>(
        &'a self,
        request: Request<UserRequest<'a>>,
    ) -> Result<Response<UserResponse<'a>>, Status> {
        let id = match &request.message().user {
            Some(user) if !user.id.is_empty() => &user.id,
            Some(_) => return Err(Status::invalid_argument("user.id is required")),
            None => return Err(Status::invalid_argument("user is required")),
        };
        match self.store.get(id) {
            Some(user) => Ok(Response::new(UserResponse { user: Some(user) })),
            None => Err(Status::not_found(format!("user {id:?} not found"))),
        }
    }

    async fn create_user<'a>(
        &'a self,
        request: Request<CreateUserRequest<'a>>,
    ) -> Result<Response<CreateUserResponse<'a>>, Status> {
        let Some(user) = request.into_message().user else {
            return Err(Status::invalid_argument("user is required"));
        };
        let stored = self.store.create(user)?;
        Ok(Response::new(CreateUserResponse { user: Some(stored) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Code;

    fn user(id: &str) -> User<'static> {
        User {
            name: "Ada".into(),
            email: "ada@example.com".into(),
            age: 36,
            id: Cow::Owned(id.to_owned()),
        }
    }

    #[test]
    fn store_assigns_unique_ids_around_client_chosen_ones() {
        let store = InMemoryUserStore::new();
        store.create(user("user-2")).expect("new id");
        let a = store.create(user("")).expect("assigned");
        let b = store.create(user("")).expect("assigned");
        assert_eq!(a.id, "user-1");
        assert_eq!(b.id, "user-3");
        let err = store.create(user("user-1")).expect_err("duplicate");
        assert_eq!(err.code(), Code::AlreadyExists);
        assert_eq!(store.get("user-3"), Some(b));
        assert_eq!(store.get("nope"), None);
    }
}
