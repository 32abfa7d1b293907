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
use crate::codec::Encoded;
use crate::proto::user::{
    CreateUserRequest, CreateUserResponse, User, UserRequest, UserResponse, UserService,
};
use crate::wire::status::Status;

/// A stored user, kept as the encoded GetUser reply (`UserResponse { user }`): serving it is a
/// reference-count increment, not a copy of its strings and a fresh encode.
pub type StoredUser = Encoded<UserResponse<'static>>;

/// Where users live. The service only needs these two operations.
pub trait UserStore: Send + Sync + 'static {
    /// The user with `id`, if any.
    fn get(&self, id: &str) -> Option<StoredUser>;

    /// Stores `user` and returns its id. An empty id is replaced by a fresh unique one; an id
    /// already present is refused with ALREADY_EXISTS (before anything is copied).
    fn create(&self, user: &User<'_>) -> Result<String, Status>;
}

/// The default store: a map in memory, like the article's `self.users = {}`.
#[derive(Default)]
pub struct InMemoryUserStore {
    users: RwLock<HashMap<String, StoredUser>>,
    next_id: AtomicU64,
}

impl InMemoryUserStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl UserStore for InMemoryUserStore {
    fn get(&self, id: &str) -> Option<StoredUser> {
        // A poisoned lock only means a panic happened elsewhere mid-insert; the map is intact.
        let users = self.users.read().unwrap_or_else(|e| e.into_inner());
        users.get(id).cloned()
    }

    fn create(&self, user: &User<'_>) -> Result<String, Status> {
        let mut users = self.users.write().unwrap_or_else(|e| e.into_inner());
        let id = if user.id.is_empty() {
            // Ids a client chose may collide with generated ones: skip those.
            loop {
                let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
                let id = format!("user-{n}");
                if !users.contains_key(&id) {
                    break id;
                }
            }
        } else if users.contains_key(user.id.as_ref()) {
            return Err(Status::already_exists(format!(
                "user {:?} already exists",
                user.id
            )));
        } else {
            user.id.to_string()
        };
        let stored = StoredUser::new(&UserResponse {
            user: Some(User {
                id: Cow::Borrowed(&id),
                ..user.clone()
            }),
        });
        users.insert(id.clone(), stored);
        Ok(id)
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
            Some(stored) => Ok(Response::encoded(stored)),
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
        let id = self.store.create(&user)?;
        // The reply borrows the request's strings; only the id is the store's.
        Ok(Response::new(CreateUserResponse {
            user: Some(User {
                id: Cow::Owned(id),
                ..user
            }),
        }))
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
        assert_eq!(store.create(&user("user-2")).expect("new id"), "user-2");
        assert_eq!(store.create(&user("")).expect("assigned"), "user-1");
        assert_eq!(store.create(&user("")).expect("assigned"), "user-3");
        let err = store.create(&user("user-1")).expect_err("duplicate");
        assert_eq!(err.code(), Code::AlreadyExists);
        let stored = store.get("user-3").expect("stored");
        assert_eq!(stored.view().user, Some(user("user-3")));
        assert!(store.get("nope").is_none());
    }
}
