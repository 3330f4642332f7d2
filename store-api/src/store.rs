//! The [`SessionStore`] trait every engine implements, and its extension trait.

use std::fmt::Debug;
use std::ops::ControlFlow;

use crate::{
    Capabilities, Entry, EntryMeta, Expiry, Key, Result, ScanEntry, ScanOptions, Stats,
    UpdateAction, UpdateOutcome, WriteMode, WriteOutcome,
};

/// A key-value store for web sessions.
///
/// The Perl original (`Catalyst::Plugin::Session::Store`) has four required methods and
/// one optional; each has a counterpart here:
///
/// | Perl | here |
/// |---|---|
/// | `get_session_data($key)` | [`get`](Self::get) |
/// | `store_session_data($key, $data)` | [`put`](Self::put) with [`WriteMode::Upsert`] |
/// | `delete_session_data($key)` | [`delete`](Self::delete) |
/// | `delete_expired_sessions()` | [`purge_expired`](Self::purge_expired) |
/// | `get_and_set_session_data($key, $cb)` | [`update`](Self::update) |
/// | `setup_session` | each engine's builder or `open` |
///
/// `Cache::FastMmap`'s own `get_keys`, `clear`/`empty`, `get_and_remove`, `exists` and
/// `get_statistics` are [`scan`](Self::scan), [`clear`](Self::clear),
/// [`take`](Self::take), [`SessionStoreExt::exists`] and [`stats`](Self::stats).
///
/// # Contract
///
/// - **Keys** are [`Key`]s, validated before they reach an engine. An engine whose
///   [`Capabilities::max_key_len`] is larger may accept longer keys through its own API.
/// - **Values** are opaque bytes, empty allowed, returned byte for byte. A value larger
///   than the engine's maximum is [`Error::TooLarge`](crate::Error::TooLarge) and the
///   write changes nothing and evicts nothing.
/// - **A missing key is never an error**; a backend failure is never `Ok(None)`.
/// - **Versions**: every successful write (put, a `Set` from update) gives the entry a
///   new [`Version`](crate::Version), never reused for that key, not even after delete
///   and re-create. [`touch`](Self::touch) does not change the version.
/// - **Eviction is reported, never silent**: every write returns [`WriteOutcome::evicted`],
///   how many live and expired entries of other keys were removed to make room, or
///   [`Evictions::Unknown`](crate::Evictions::Unknown) when the engine cannot know.
///   Bounded engines reclaim expired entries before live ones and either evict live
///   entries in LRU order (reported, and counted in [`Stats::evicted_live`]) or, under a
///   never-evict-live policy, fail with [`Error::NoSpace`](crate::Error::NoSpace).
///
/// # Expiry
///
/// Every entry carries an absolute expiry or none, with millisecond resolution, taken
/// from the engine's [`Clock`](crate::Clock). An entry is **live while
/// `now < expires_at`** ([`is_live`](crate::is_live)). An expired entry is
/// indistinguishable from an absent one for every operation: `get` returns `None`,
/// create-only succeeds over it, replace-only and compare-and-set fail, `touch` and
/// `delete` report `false`, `update` sees `None`. Writing an expiry already past is
/// allowed and stores an entry that is expired at once.
///
/// # Concurrency
///
/// All methods take `&self` and are safe to call from many threads. Every write is
/// atomic for its key: readers see the old entry or the new one, never a mix.
/// [`update`](Self::update) is atomic against every other write to that key, across
/// threads and, for engines shared across processes, across processes.
pub trait SessionStore: Send + Sync + Debug {
    /// Reads the live entry for `key` (Perl's `get_session_data`).
    ///
    /// Returns `Ok(None)` if the key is absent or expired.
    fn get(&self, key: &Key) -> Result<Option<Entry>>;

    /// Reads the live entry for `key` into `buf` (cleared first), returning its metadata.
    /// Engines override this to avoid allocating; on `Ok(None)` the buffer's contents are
    /// unspecified.
    fn get_into(&self, key: &Key, buf: &mut Vec<u8>) -> Result<Option<EntryMeta>> {
        buf.clear();
        Ok(self.get(key)?.map(|e| {
            buf.extend_from_slice(&e.value);
            e.meta()
        }))
    }

    /// Writes `value` under `key` with `expiry`, as `mode` allows (Perl's
    /// `store_session_data` is [`WriteMode::Upsert`]).
    ///
    /// # Errors
    /// [`TooLarge`](crate::Error::TooLarge), checked first, before the mode;
    /// [`AlreadyExists`](crate::Error::AlreadyExists), [`NotFound`](crate::Error::NotFound)
    /// or [`VersionMismatch`](crate::Error::VersionMismatch) when `mode` forbids the
    /// write; [`NoSpace`](crate::Error::NoSpace); backend errors. On any error nothing
    /// changed.
    fn put(&self, key: &Key, value: &[u8], expiry: Expiry, mode: WriteMode)
    -> Result<WriteOutcome>;

    /// Deletes `key` (Perl's `delete_session_data`). Returns whether a live entry was
    /// removed; deleting an absent key is `Ok(false)`, not an error.
    fn delete(&self, key: &Key) -> Result<bool>;

    /// Changes only the expiry of a live entry (sliding sessions): never the value or
    /// version, never creates. Returns whether a live entry was found.
    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool>;

    /// Atomic read-modify-write (Perl's `get_and_set_session_data`).
    ///
    /// `f` sees the live entry (or `None`) and decides: keep, set a value and expiry, or
    /// delete. The decision is applied atomically against every other write to `key`.
    ///
    /// - Engines with [`UpdateAtomicity::Locked`](crate::UpdateAtomicity::Locked) call
    ///   `f` exactly once, under a lock, before anything changes.
    /// - Engines with [`UpdateAtomicity::Optimistic`](crate::UpdateAtomicity::Optimistic)
    ///   may call it again when another writer interfered, and give up with
    ///   [`Error::Contention`](crate::Error::Contention) after a bounded number of tries.
    ///
    /// `f` must not call back into the store (a locked engine may deadlock). If `f`
    /// panics, the panic propagates, the key is unchanged and the store stays usable.
    fn update(
        &self,
        key: &Key,
        f: &mut dyn FnMut(Option<&Entry>) -> UpdateAction,
    ) -> Result<UpdateOutcome>;

    /// Removes every expired entry (Perl's `delete_expired_sessions`) and returns how
    /// many it removed. Engines whose backend expires entries itself return 0 and say so
    /// in [`Capabilities::expires_itself`].
    fn purge_expired(&self) -> Result<u64>;

    /// The engine's counters.
    fn stats(&self) -> Result<Stats>;

    /// What the engine can do.
    fn capabilities(&self) -> Capabilities;

    /// Moves the live entry of `from` to the new id `to` (session-id rotation after
    /// login), keeping its expiry. Returns `Ok(false)` if `from` is absent.
    ///
    /// The default writes `to` create-only, then deletes `from`; it is not atomic (a
    /// write to `from` racing the move may be lost). Engines that can lock both keys
    /// override it.
    ///
    /// The write of `to` may evict other entries like any write; they are counted in
    /// [`Stats::evicted_live`] and [`Stats::evicted_expired`].
    ///
    /// # Errors
    /// [`AlreadyExists`](crate::Error::AlreadyExists) if `to` is live;
    /// [`TooLarge`](crate::Error::TooLarge) if the value does not fit under the key `to`
    /// (a longer key leaves less room); [`NoSpace`](crate::Error::NoSpace); backend errors.
    fn rotate(&self, from: &Key, to: &Key) -> Result<bool> {
        rotate_by_copy(self, from, to)
    }

    /// Reads and deletes the live entry of `key` in one atomic step (one-time tokens,
    /// flash messages): of several callers taking one key at once, one gets the entry and
    /// the others `None`. Returns `None` if the key is absent or expired.
    ///
    /// The default is built on [`update`](Self::update), which makes it atomic wherever
    /// `update` is; engines with a cheaper atomic get-and-delete override it.
    fn take(&self, key: &Key) -> Result<Option<Entry>> {
        let mut taken = None;
        self.update(key, &mut |e| {
            // The last run is the one applied (an optimistic engine may run it again).
            taken = e.cloned();
            if e.is_some() {
                UpdateAction::Delete
            } else {
                UpdateAction::Keep
            }
        })?;
        Ok(taken)
    }

    /// Visits the live entries (only those whose key starts with `options.prefix`, if
    /// set), calling `visit` with each until it returns [`ControlFlow::Break`], and
    /// returns how many it visited. For an operator's questions: how many sessions are
    /// live, whose are they (when the application puts the user in the key).
    ///
    /// # Guarantee
    /// Every entry that is live for the whole scan is visited exactly once. An entry
    /// written, deleted or expiring while the scan runs may or may not be visited (once).
    /// The engine does not hold writers off for the whole scan: it visits its entries in
    /// parts (a page of `store-fastmmap`, a batch of Redis `SCAN`), each read under its
    /// own lock at most, and calls `visit` with no lock held, so `visit` may call the
    /// store (delete what it visits, say).
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) where
    /// [`Capabilities::scan`](crate::Capabilities::scan) is
    /// [`Support::No`](crate::Support::No): the default, for engines written before
    /// scans existed.
    fn scan(
        &self,
        options: &ScanOptions,
        visit: &mut dyn FnMut(ScanEntry) -> ControlFlow<()>,
    ) -> Result<u64> {
        let _ = (options, visit);
        Err(crate::Error::Unsupported {
            operation: "scan",
            engine: std::any::type_name::<Self>().to_owned(),
        })
    }

    /// Removes every entry, live or expired (an emergency log-out of everybody, after a
    /// leaked cookie secret, say), and returns how many live entries it removed. Entries
    /// written while it runs may survive it; entries written after it returns do.
    ///
    /// How atomic it is depends on the engine, which says so in its docs and in
    /// [`Capabilities::clear`](crate::Capabilities::clear): a whole store at once, one
    /// partition (a page) at a time, or key by key. The default deletes, key by key,
    /// what a [`scan`](Self::scan) visits ([`Support::Approximate`](crate::Support)):
    /// an engine that scans can clear.
    ///
    /// # Errors
    /// [`Error::Unsupported`](crate::Error::Unsupported) where the engine can neither
    /// clear nor scan.
    fn clear(&self) -> Result<u64> {
        let mut keys = Vec::new();
        self.scan(&ScanOptions::new(), &mut |e| {
            keys.push(e.key);
            ControlFlow::Continue(())
        })
        .map_err(|e| match e {
            crate::Error::Unsupported { engine, .. } => crate::Error::Unsupported {
                operation: "clear",
                engine,
            },
            e => e,
        })?;
        let mut removed = 0;
        for k in &keys {
            removed += u64::from(self.delete(k)?);
        }
        Ok(removed)
    }
}

/// Conveniences over [`SessionStore`], implemented for every store. They are built only
/// from the trait's methods, so an engine cannot get them subtly wrong.
pub trait SessionStoreExt: SessionStore {
    /// The live value of `key`, without metadata.
    fn get_value(&self, key: &Key) -> Result<Option<Vec<u8>>> {
        Ok(self.get(key)?.map(|e| e.value))
    }

    /// Whether `key` is live.
    fn exists(&self, key: &Key) -> Result<bool> {
        Ok(self.get(key)?.is_some())
    }

    /// Upsert with the engine's default expiry (Perl's `store_session_data`).
    fn set(&self, key: &Key, value: &[u8]) -> Result<WriteOutcome> {
        self.put(key, value, Expiry::Default, WriteMode::Upsert)
    }

    /// Create-only write.
    fn create(&self, key: &Key, value: &[u8], expiry: Expiry) -> Result<WriteOutcome> {
        self.put(key, value, expiry, WriteMode::CreateOnly)
    }

    /// Replace-only write.
    fn replace(&self, key: &Key, value: &[u8], expiry: Expiry) -> Result<WriteOutcome> {
        self.put(key, value, expiry, WriteMode::ReplaceOnly)
    }

    /// Compare-and-set on `version`.
    fn compare_and_set(
        &self,
        key: &Key,
        version: crate::Version,
        value: &[u8],
        expiry: Expiry,
    ) -> Result<WriteOutcome> {
        self.put(key, value, expiry, WriteMode::IfVersion(version))
    }

    /// [`update`](SessionStore::update) taking any closure.
    fn update_with<F>(&self, key: &Key, mut f: F) -> Result<UpdateOutcome>
    where
        F: FnMut(Option<&Entry>) -> UpdateAction,
        Self: Sized,
    {
        self.update(key, &mut f)
    }
}

impl<S: SessionStore + ?Sized> SessionStoreExt for S {}

/// `SessionStore` for a pointer to one, forwarding every method (the lint makes a method
/// added to the trait a compile error here until it is forwarded, instead of a silent
/// fall back to its default).
macro_rules! forward_impl {
    ($ptr:ty) => {
        #[deny(clippy::missing_trait_methods)]
        impl<S: SessionStore + ?Sized> SessionStore for $ptr {
            fn get(&self, key: &Key) -> Result<Option<Entry>> {
                (**self).get(key)
            }
            fn get_into(&self, key: &Key, buf: &mut Vec<u8>) -> Result<Option<EntryMeta>> {
                (**self).get_into(key, buf)
            }
            fn put(
                &self,
                key: &Key,
                value: &[u8],
                expiry: Expiry,
                mode: WriteMode,
            ) -> Result<WriteOutcome> {
                (**self).put(key, value, expiry, mode)
            }
            fn delete(&self, key: &Key) -> Result<bool> {
                (**self).delete(key)
            }
            fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool> {
                (**self).touch(key, expiry)
            }
            fn update(
                &self,
                key: &Key,
                f: &mut dyn FnMut(Option<&Entry>) -> UpdateAction,
            ) -> Result<UpdateOutcome> {
                (**self).update(key, f)
            }
            fn purge_expired(&self) -> Result<u64> {
                (**self).purge_expired()
            }
            fn stats(&self) -> Result<Stats> {
                (**self).stats()
            }
            fn capabilities(&self) -> Capabilities {
                (**self).capabilities()
            }
            fn rotate(&self, from: &Key, to: &Key) -> Result<bool> {
                (**self).rotate(from, to)
            }
            fn take(&self, key: &Key) -> Result<Option<Entry>> {
                (**self).take(key)
            }
            fn scan(
                &self,
                options: &ScanOptions,
                visit: &mut dyn FnMut(ScanEntry) -> ControlFlow<()>,
            ) -> Result<u64> {
                (**self).scan(options, visit)
            }
            fn clear(&self) -> Result<u64> {
                (**self).clear()
            }
        }
    };
}

forward_impl!(std::sync::Arc<S>);
forward_impl!(Box<S>);

/// The default [`SessionStore::rotate`], for engines that override it and still need it
/// where they cannot lock both keys: `to` written create-only with `from`'s value and
/// expiry, then `from` deleted. Not atomic: a write to `from` racing the move may be lost.
///
/// # Errors
/// As [`SessionStore::rotate`].
pub fn rotate_by_copy<S: SessionStore + ?Sized>(store: &S, from: &Key, to: &Key) -> Result<bool> {
    let Some(entry) = store.get(from)? else {
        return Ok(false);
    };
    let expiry = entry.expires_at.map_or(Expiry::Never, Expiry::At);
    store.put(to, &entry.value, expiry, WriteMode::CreateOnly)?;
    store.delete(from)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trait_is_object_safe() {
        fn takes(_: Option<std::sync::Arc<dyn SessionStore>>) {}
        fn takes_box(_: Option<Box<dyn SessionStore>>) {}
        takes(None);
        takes_box(None);
    }

    /// The calls a store received, by method name.
    #[derive(Debug, Default)]
    struct Calls(std::sync::Mutex<Vec<&'static str>>);

    impl Calls {
        fn note(&self, m: &'static str) {
            self.0.lock().unwrap().push(m);
        }
    }

    impl SessionStore for Calls {
        fn get(&self, _: &Key) -> Result<Option<Entry>> {
            self.note("get");
            Ok(None)
        }
        fn get_into(&self, _: &Key, _: &mut Vec<u8>) -> Result<Option<EntryMeta>> {
            self.note("get_into");
            Ok(None)
        }
        fn put(&self, key: &Key, _: &[u8], _: Expiry, _: WriteMode) -> Result<WriteOutcome> {
            self.note("put");
            Err(crate::Error::NotFound { key: key.clone() })
        }
        fn delete(&self, _: &Key) -> Result<bool> {
            self.note("delete");
            Ok(false)
        }
        fn touch(&self, _: &Key, _: Expiry) -> Result<bool> {
            self.note("touch");
            Ok(false)
        }
        fn update(
            &self,
            _: &Key,
            _: &mut dyn FnMut(Option<&Entry>) -> UpdateAction,
        ) -> Result<UpdateOutcome> {
            self.note("update");
            Ok(UpdateOutcome::Kept)
        }
        fn purge_expired(&self) -> Result<u64> {
            self.note("purge_expired");
            Ok(0)
        }
        fn stats(&self) -> Result<Stats> {
            self.note("stats");
            Ok(Stats::default())
        }
        fn capabilities(&self) -> Capabilities {
            self.note("capabilities");
            Capabilities::new(1)
        }
        fn rotate(&self, _: &Key, _: &Key) -> Result<bool> {
            self.note("rotate");
            Ok(false)
        }
        fn take(&self, _: &Key) -> Result<Option<Entry>> {
            self.note("take");
            Ok(None)
        }
        fn scan(
            &self,
            _: &ScanOptions,
            _: &mut dyn FnMut(ScanEntry) -> ControlFlow<()>,
        ) -> Result<u64> {
            self.note("scan");
            Ok(0)
        }
        fn clear(&self) -> Result<u64> {
            self.note("clear");
            Ok(0)
        }
    }

    /// Calls every method of `s` once.
    fn call_all(s: &impl SessionStore) {
        let k = Key::new("k").unwrap();
        let _ = s.get(&k);
        let _ = s.get_into(&k, &mut Vec::new());
        let _ = s.put(&k, b"v", Expiry::Never, WriteMode::Upsert);
        let _ = s.delete(&k);
        let _ = s.touch(&k, Expiry::Never);
        let _ = s.update(&k, &mut |_| UpdateAction::Keep);
        let _ = s.purge_expired();
        let _ = s.stats();
        let _ = s.capabilities();
        let _ = s.rotate(&k, &k);
        let _ = s.take(&k);
        let _ = s.scan(&ScanOptions::new(), &mut |_| ControlFlow::Continue(()));
        let _ = s.clear();
    }

    /// A store behind an `Arc` or a `Box` (sized or `dyn`) is a store whose every call
    /// reaches the same method of the one inside (a default method of the trait, such as
    /// `rotate` or `get_into`, would reach others).
    #[test]
    fn pointers_to_a_store_forward_every_method() {
        let all = [
            "get",
            "get_into",
            "put",
            "delete",
            "touch",
            "update",
            "purge_expired",
            "stats",
            "capabilities",
            "rotate",
            "take",
            "scan",
            "clear",
        ];
        let arc = std::sync::Arc::new(Calls::default());
        call_all(&arc);
        assert_eq!(*arc.0.lock().unwrap(), all);
        let boxed = Box::new(Calls::default());
        call_all(&boxed);
        assert_eq!(*boxed.0.lock().unwrap(), all);
        let arc_dyn: std::sync::Arc<dyn SessionStore> = arc.clone();
        call_all(&arc_dyn);
        assert_eq!(arc.0.lock().unwrap().len(), 2 * all.len());
        let box_dyn: Box<dyn SessionStore> = Box::new(Calls::default());
        call_all(&box_dyn);
    }
}
