//! [`TowerStore`]: tower-sessions' `SessionStore` over any store-api engine.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use store_api::{Error as StoreError, Expiry, Key, SessionStore, UpdateAction, WriteMode};
use store_async::AsyncStore;
use tower_sessions_core::session::{Id, Record};
use tower_sessions_core::session_store::{self, Error, ExpiredDeletion};

use crate::record;

/// The key prefix by default: `tower-sessions:<id>`.
pub const DEFAULT_PREFIX: &str = "tower-sessions:";

/// How many fresh ids [`create`](session_store::SessionStore::create) draws when the
/// ones before collide with live sessions, by default.
pub const DEFAULT_CREATE_ATTEMPTS: u32 = 8;

/// A tower-sessions store over any [`store_api::SessionStore`]: `store-fastmmap`,
/// `store-memory`, `store-redis` or a third-party engine.
///
/// Where tower-sessions' own stores overwrite, this one does not:
///
/// - `create` writes create-only and draws a new id when the id is a live session of
///   someone else, up to [`create_attempts`](Self::create_attempts) times;
/// - `save` writes replace-only: a session deleted meanwhile (a logout in another
///   request, an id rotated by `cycle_id`) stays deleted, and the stale request's save
///   is dropped with a warning in the log and `Ok`;
/// - bytes under a session's key that are not this adapter's record are a decode
///   error naming the key, never an empty session.
///
/// Engine calls run as [`AsyncStore`] decides: inline for `store-memory` and
/// `store-fastmmap` (microseconds), on the blocking pool for `store-redis`.
pub struct TowerStore<S: ?Sized = dyn SessionStore> {
    store: AsyncStore<S>,
    prefix: Arc<str>,
    create_attempts: u32,
}

impl<S: ?Sized> Clone for TowerStore<S> {
    fn clone(&self) -> Self {
        TowerStore {
            store: self.store.clone(),
            prefix: Arc::clone(&self.prefix),
            create_attempts: self.create_attempts,
        }
    }
}

impl<S: ?Sized + fmt::Debug> fmt::Debug for TowerStore<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TowerStore")
            .field("store", &self.store)
            .field("prefix", &self.prefix)
            .field("create_attempts", &self.create_attempts)
            .finish()
    }
}

impl<S: SessionStore + ?Sized + 'static> TowerStore<S> {
    /// Sessions in `store` under keys `tower-sessions:<id>`.
    pub fn new(store: Arc<S>) -> Self {
        TowerStore {
            store: AsyncStore::new(store),
            prefix: DEFAULT_PREFIX.into(),
            create_attempts: DEFAULT_CREATE_ATTEMPTS,
        }
    }

    /// Keys `<prefix><id>` instead (several applications in one store).
    ///
    /// # Errors
    /// [`StoreError::InvalidKey`] if a key with this prefix would break a rule of
    /// [`Key`] (a control byte, or too long for a 22-character id).
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, StoreError> {
        Key::new(format!("{prefix}{}", Id(0)))?;
        self.prefix = prefix.into();
        Ok(self)
    }

    /// Draw at most `attempts` ids (at least 1) in `create` before giving up with an
    /// error; ids are 128 random bits, so a second draw already means a broken random
    /// source or someone writing under our prefix.
    pub fn create_attempts(mut self, attempts: u32) -> Self {
        self.create_attempts = attempts.max(1);
        self
    }

    /// The engine, wrapped for async calls.
    pub fn store(&self) -> &AsyncStore<S> {
        &self.store
    }

    /// The key of session `id`.
    pub fn key(&self, id: &Id) -> Result<Key, Error> {
        Key::new(format!("{}{id}", self.prefix)).map_err(backend)
    }
}

impl<S: SessionStore + ?Sized + 'static> TowerStore<S> {
    /// Changes the data of session `id` atomically in the store: `f` gets the stored
    /// data and what it leaves is written, against every other write to the session
    /// (across processes for shared engines). Returns `false`, writing nothing, if the
    /// session is gone.
    ///
    /// tower-sessions loads a session once per request and saves it whole at the end,
    /// so two requests of one session that change it at the same time lose one of the
    /// changes. Use this for values that concurrent requests change (counters, carts),
    /// and do not also change them through the request's `Session`, whose save would
    /// write its stale copy back. The request's `Session` does not see the change.
    /// Engines with optimistic updates (Redis) may call `f` more than once, and when
    /// they give up on contention this backs off (1 to 50 ms) and tries again, up to
    /// six rounds, before returning the contention error.
    ///
    /// # Errors
    /// A decode error naming the key if the stored bytes are not a session record;
    /// the engine's errors.
    pub async fn update_data<F>(&self, id: Id, f: F) -> session_store::Result<bool>
    where
        F: FnMut(&mut HashMap<String, serde_json::Value>) + Send + 'static,
    {
        let key = self.key(&id)?;
        let f = Arc::new(std::sync::Mutex::new(f));
        let mut pause = Duration::from_millis(1);
        for round in 1.. {
            let (key, f) = (key.clone(), Arc::clone(&f));
            let r = self
                .store
                .call(move |s| {
                    let mut f = f.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    update_record(s, id, &key, &mut *f)
                })
                .await;
            match r {
                // An optimistic engine lost every try to other writers: back off and
                // go again, a few rounds, before reporting it.
                Err(StoreError::Contention { .. }) if round < CONTENTION_ROUNDS => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                r => return r.map_err(backend)?,
            }
        }
        unreachable!("the loop returns")
    }
}

/// Rounds of an optimistic engine's tries `update_data` makes before reporting
/// contention.
const CONTENTION_ROUNDS: u32 = 6;

/// One `update` of the record under `key`: `Ok(Ok(found))`, or the decode or encode
/// error of the record, or the engine's error.
fn update_record<S: SessionStore + ?Sized>(
    s: &S,
    id: Id,
    key: &Key,
    f: &mut dyn FnMut(&mut HashMap<String, serde_json::Value>),
) -> Result<session_store::Result<bool>, StoreError> {
    let mut failed = None;
    let mut found = false;
    s.update(key, &mut |entry| {
        failed = None;
        let Some(entry) = entry else {
            found = false;
            return UpdateAction::Keep;
        };
        found = true;
        let mut rec = match record::decode(id, key, entry) {
            Ok(rec) => rec,
            Err(e) => {
                failed = Some(e);
                return UpdateAction::Keep;
            }
        };
        f(&mut rec.data);
        match record::encode(&rec) {
            Ok(value) => UpdateAction::Set {
                value,
                expiry: entry.expires_at.map_or(Expiry::Never, Expiry::At),
            },
            Err(e) => {
                failed = Some(e);
                UpdateAction::Keep
            }
        }
    })?;
    Ok(failed.map_or(Ok(found), Err))
}

/// A store error as tower-sessions reports it.
fn backend(e: StoreError) -> Error {
    Error::Backend(error_chain(&e))
}

/// `e` and its sources, one line.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(cause) = src {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        src = cause.source();
    }
    s
}

#[async_trait]
impl<S: SessionStore + ?Sized + 'static> session_store::SessionStore for TowerStore<S> {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        let value = record::encode(record)?;
        let expiry = record::expiry(record.expiry_date);
        for attempt in 1..=self.create_attempts {
            let key = self.key(&record.id)?;
            let value = value.clone();
            let r = self
                .store
                .call(move |s| s.put(&key, &value, expiry, WriteMode::CreateOnly))
                .await;
            match r {
                Ok(_) => return Ok(()),
                Err(StoreError::AlreadyExists { key }) => {
                    tracing::warn!(
                        %key, attempt,
                        "session id collides with a live session; drawing another"
                    );
                    record.id = Id::default();
                }
                Err(e) => return Err(backend(e)),
            }
        }
        Err(Error::Backend(format!(
            "{} session ids in a row collided with live sessions; the random source is \
             broken or something else writes under the prefix {:?}",
            self.create_attempts, self.prefix
        )))
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let value = record::encode(record)?;
        let expiry = record::expiry(record.expiry_date);
        let key = self.key(&record.id)?;
        let r = self
            .store
            .call(move |s| s.put(&key, &value, expiry, WriteMode::ReplaceOnly))
            .await;
        match r {
            Ok(_) => Ok(()),
            Err(StoreError::NotFound { key }) => {
                tracing::warn!(
                    %key,
                    "not saving a session that was deleted (logged out or rotated) or expired \
                     while this request ran; it stays deleted"
                );
                Ok(())
            }
            Err(e) => Err(backend(e)),
        }
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let key = self.key(id)?;
        let k = key.clone();
        let entry = self.store.call(move |s| s.get(&k)).await.map_err(backend)?;
        entry
            .map(|entry| record::decode(*id, &key, &entry))
            .transpose()
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let key = self.key(id)?;
        self.store
            .call(move |s| s.delete(&key))
            .await
            .map(drop)
            .map_err(backend)
    }
}

#[async_trait]
impl<S: SessionStore + ?Sized + 'static> ExpiredDeletion for TowerStore<S> {
    /// Runs the engine's `purge_expired` on the blocking pool: it removes every expired
    /// entry of the engine, this adapter's sessions and anything else stored in it.
    /// Engines that expire entries themselves (Redis) do nothing. With several worker
    /// processes on one host sharing `store-fastmmap`, run it in one of them (or in a
    /// supervisor, as `demo-server` does), not in each.
    async fn delete_expired(&self) -> session_store::Result<()> {
        let removed = self.store.purge_expired().await.map_err(backend)?;
        tracing::debug!(removed, "purged expired sessions");
        Ok(())
    }
}
