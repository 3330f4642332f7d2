//! [`ActixStore`]: actix-session's `SessionStore` over any store-api engine.

use std::fmt;
use std::sync::Arc;

use actix_session::storage::{
    LoadError, SaveError, SessionKey, SessionStore as ActixSessionStore, UpdateError,
    generate_session_key,
};
use actix_web::cookie::time::Duration as CookieDuration;
use store_api::{Error as StoreError, Expiry, Key, SessionStore, WriteMode};
use store_async::AsyncStore;

use crate::state::{self, State};

/// The key prefix by default: `actix-session:<session key>`.
pub const DEFAULT_PREFIX: &str = "actix-session:";

/// How many fresh session keys `save` draws when the ones before collide with live
/// sessions, by default.
pub const DEFAULT_SAVE_ATTEMPTS: u32 = 8;

/// An actix-session store over any [`store_api::SessionStore`]: `store-fastmmap`,
/// `store-memory`, `store-redis` or a third-party engine.
///
/// - `save` (a new session) draws a session key and writes create-only, drawing again
///   when the key is a live session of someone else;
/// - `update` writes replace-only: a session deleted meanwhile (logout in another
///   request) stays deleted; nothing is written and the stale request's update is
///   dropped with a warning in the log (actix-session's Redis store saves the stale
///   state under a new key, which logs the user back in);
/// - `update_ttl` is [`SessionStore::touch`];
/// - a session key that cannot be a store key (a forged cookie with control bytes or
///   over the store's key length) is a session that does not exist;
/// - bytes under a session's key that are not this adapter's state are a
///   deserialization error naming the key, never an empty session.
///
/// Engine calls run as [`AsyncStore`] decides: inline for `store-memory` and
/// `store-fastmmap`, on the tokio blocking pool for `store-redis`.
pub struct ActixStore<S: ?Sized = dyn SessionStore> {
    store: AsyncStore<S>,
    prefix: Arc<str>,
    save_attempts: u32,
    generate: fn() -> SessionKey,
}

impl<S: ?Sized> Clone for ActixStore<S> {
    fn clone(&self) -> Self {
        ActixStore {
            store: self.store.clone(),
            prefix: Arc::clone(&self.prefix),
            save_attempts: self.save_attempts,
            generate: self.generate,
        }
    }
}

impl<S: ?Sized + fmt::Debug> fmt::Debug for ActixStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActixStore")
            .field("store", &self.store)
            .field("prefix", &self.prefix)
            .field("save_attempts", &self.save_attempts)
            .finish_non_exhaustive()
    }
}

impl<S: SessionStore + ?Sized + 'static> ActixStore<S> {
    /// Sessions in `store` under keys `actix-session:<session key>`, with
    /// actix-session's own key generator (64 random alphanumerics).
    pub fn new(store: Arc<S>) -> Self {
        ActixStore {
            store: AsyncStore::new(store),
            prefix: DEFAULT_PREFIX.into(),
            save_attempts: DEFAULT_SAVE_ATTEMPTS,
            generate: generate_session_key,
        }
    }

    /// Keys `<prefix><session key>` instead (several applications in one store).
    ///
    /// # Errors
    /// [`StoreError::InvalidKey`] if a key with this prefix and a generated session
    /// key would break a rule of [`Key`] (a control byte, or too long).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, StoreError> {
        Key::new(format!("{prefix}{}", (self.generate)().as_ref()))?;
        self.prefix = prefix.into();
        Ok(self)
    }

    /// Draw at most `attempts` session keys (at least 1) in `save` before giving up.
    pub fn save_attempts(mut self, attempts: u32) -> Self {
        self.save_attempts = attempts.max(1);
        self
    }

    /// Draw session keys with `generate` instead of actix-session's generator (keys
    /// from another source of randomness; a fixed key in tests of collisions).
    pub fn key_generator(mut self, generate: fn() -> SessionKey) -> Self {
        self.generate = generate;
        self
    }

    /// The engine, wrapped for async calls.
    pub fn store(&self) -> &AsyncStore<S> {
        &self.store
    }

    /// The store key of a session key; `None` if it cannot be one (a forged cookie).
    pub fn key(&self, session_key: &SessionKey) -> Option<Key> {
        Key::new(format!("{}{}", self.prefix, session_key.as_ref())).ok()
    }
}

/// actix's TTL as the store's expiry; a negative TTL is already past.
fn expiry(ttl: &CookieDuration) -> Expiry {
    Expiry::After(std::time::Duration::try_from(*ttl).unwrap_or_default())
}

/// A store error as actix reports it, with its sources.
fn other(e: StoreError) -> anyhow::Error {
    anyhow::Error::new(e)
}

impl<S: SessionStore + ?Sized + 'static> ActixSessionStore for ActixStore<S> {
    async fn load(&self, session_key: &SessionKey) -> Result<Option<State>, LoadError> {
        let Some(key) = self.key(session_key) else {
            tracing::debug!("a session cookie that cannot be a store key: no session");
            return Ok(None);
        };
        let k = key.clone();
        let entry = self
            .store
            .call(move |s| s.get(&k))
            .await
            .map_err(|e| LoadError::Other(other(e)))?;
        entry
            .map(|e| state::decode(&key, &e.value))
            .transpose()
            .map_err(LoadError::Deserialization)
    }

    async fn save(
        &self,
        session_state: State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, SaveError> {
        let value = state::encode(&session_state).map_err(SaveError::Serialization)?;
        let expiry = expiry(ttl);
        for attempt in 1..=self.save_attempts {
            let session_key = (self.generate)();
            let key = self.key(&session_key).ok_or_else(|| {
                SaveError::Other(anyhow::anyhow!(
                    "the generated session key is not a valid store key under the prefix {:?}",
                    self.prefix
                ))
            })?;
            let value = value.clone();
            let r = self
                .store
                .call(move |s| s.put(&key, &value, expiry, WriteMode::CreateOnly))
                .await;
            match r {
                Ok(_) => return Ok(session_key),
                Err(StoreError::AlreadyExists { key }) => {
                    tracing::warn!(
                        %key, attempt,
                        "session key collides with a live session; drawing another"
                    );
                }
                Err(e) => return Err(SaveError::Other(other(e))),
            }
        }
        Err(SaveError::Other(anyhow::anyhow!(
            "{} session keys in a row collided with live sessions; the key generator is \
             broken or something else writes under the prefix {:?}",
            self.save_attempts,
            self.prefix
        )))
    }

    async fn update(
        &self,
        session_key: SessionKey,
        session_state: State,
        ttl: &CookieDuration,
    ) -> Result<SessionKey, UpdateError> {
        let value = state::encode(&session_state).map_err(UpdateError::Serialization)?;
        let Some(key) = self.key(&session_key) else {
            tracing::warn!("not updating a session whose cookie cannot be a store key");
            return Ok(session_key);
        };
        let expiry = expiry(ttl);
        let r = self
            .store
            .call(move |s| s.put(&key, &value, expiry, WriteMode::ReplaceOnly))
            .await;
        match r {
            Ok(_) => Ok(session_key),
            Err(StoreError::NotFound { key }) => {
                tracing::warn!(
                    %key,
                    "not updating a session that was deleted (logged out) or expired while \
                     this request ran; it stays deleted"
                );
                Ok(session_key)
            }
            Err(e) => Err(UpdateError::Other(other(e))),
        }
    }

    async fn update_ttl(
        &self,
        session_key: &SessionKey,
        ttl: &CookieDuration,
    ) -> anyhow::Result<()> {
        let Some(key) = self.key(session_key) else {
            return Ok(());
        };
        let expiry = expiry(ttl);
        self.store
            .call(move |s| s.touch(&key, expiry))
            .await
            .map(drop)
            .map_err(other)
    }

    async fn delete(&self, session_key: &SessionKey) -> anyhow::Result<()> {
        let Some(key) = self.key(session_key) else {
            return Ok(());
        };
        self.store
            .call(move |s| s.delete(&key))
            .await
            .map(drop)
            .map_err(other)
    }
}
