//! Typed access: get, put and update any serde type through a [`Codec`].

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{
    Bincode, Codec, Error, Expiry, Key, Result, SessionStore, UpdateAction, UpdateOutcome, Version,
    WriteMode, WriteOutcome,
};

/// What a typed update closure decides.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypedUpdate<T> {
    /// Leave the entry unchanged.
    Keep,
    /// Store this value with this expiry.
    Set(T, Expiry),
    /// Delete the entry.
    Delete,
}

/// A typed view of a store.
///
/// ```
/// # use store_api::{Expiry, Key, SessionStore, Typed};
/// # fn demo(store: &dyn SessionStore) -> store_api::Result<()> {
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Session { user: String, visits: u32 }
///
/// let typed = Typed::new(store);
/// let key = Key::new("session:42")?;
/// typed.put(&key, &Session { user: "ada".into(), visits: 1 }, Expiry::Default)?;
/// let (s, _version) = typed.get::<Session>(&key)?.expect("just written");
/// assert_eq!(s.visits, 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Typed<'a, S: ?Sized, C = Bincode> {
    store: &'a S,
    codec: C,
}

impl<'a, S: SessionStore + ?Sized> Typed<'a, S, Bincode> {
    /// A typed view with the default codec.
    pub fn new(store: &'a S) -> Self {
        Typed {
            store,
            codec: Bincode,
        }
    }
}

impl<'a, S: SessionStore + ?Sized, C: Codec> Typed<'a, S, C> {
    /// A typed view with `codec`.
    pub fn with_codec(store: &'a S, codec: C) -> Self {
        Typed { store, codec }
    }

    /// Reads and decodes the live value of `key` with its version.
    ///
    /// # Errors
    /// [`Error::Decode`] naming the key if the stored bytes are not a `T`.
    pub fn get<T: DeserializeOwned>(&self, key: &Key) -> Result<Option<(T, Version)>> {
        let Some(entry) = self.store.get(key)? else {
            return Ok(None);
        };
        let value = self.decode(key, &entry.value)?;
        Ok(Some((value, entry.version)))
    }

    /// Encodes and upserts `value`.
    pub fn put<T: Serialize + ?Sized>(
        &self,
        key: &Key,
        value: &T,
        expiry: Expiry,
    ) -> Result<WriteOutcome> {
        self.put_with_mode(key, value, expiry, WriteMode::Upsert)
    }

    /// Encodes and writes `value` with an explicit write mode.
    pub fn put_with_mode<T: Serialize + ?Sized>(
        &self,
        key: &Key,
        value: &T,
        expiry: Expiry,
        mode: WriteMode,
    ) -> Result<WriteOutcome> {
        let bytes = self.encode(key, value)?;
        self.store.put(key, &bytes, expiry, mode)
    }

    /// Atomic typed read-modify-write. If the stored value does not decode, nothing is
    /// written and the result is [`Error::Decode`]; `f` is not called in that case.
    pub fn update<T, F>(&self, key: &Key, mut f: F) -> Result<UpdateOutcome>
    where
        T: Serialize + DeserializeOwned,
        F: FnMut(Option<T>) -> TypedUpdate<T>,
    {
        let mut failure: Option<Error> = None;
        let outcome = self.store.update(key, &mut |entry| {
            failure = None;
            let current = match entry.map(|e| self.decode::<T>(key, &e.value)).transpose() {
                Ok(v) => v,
                Err(e) => {
                    failure = Some(e);
                    return UpdateAction::Keep;
                }
            };
            match f(current) {
                TypedUpdate::Keep => UpdateAction::Keep,
                TypedUpdate::Delete => UpdateAction::Delete,
                TypedUpdate::Set(v, expiry) => match self.encode(key, &v) {
                    Ok(value) => UpdateAction::Set { value, expiry },
                    Err(e) => {
                        failure = Some(e);
                        UpdateAction::Keep
                    }
                },
            }
        })?;
        match failure {
            Some(e) => Err(e),
            None => Ok(outcome),
        }
    }

    fn decode<T: DeserializeOwned>(&self, key: &Key, bytes: &[u8]) -> Result<T> {
        self.codec.decode(bytes).map_err(|source| Error::Decode {
            key: key.clone(),
            source,
        })
    }

    fn encode<T: Serialize + ?Sized>(&self, key: &Key, value: &T) -> Result<Vec<u8>> {
        self.codec.encode(value).map_err(|source| Error::Encode {
            key: key.clone(),
            source,
        })
    }
}
