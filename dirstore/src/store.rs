//! [`DirStore`]: one file per session in a directory, every write under a lock file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use store_api::{
    Blocking, Capabilities, Clock, Entry, Error, Evictions, Expiry, Key, MAX_KEY_LEN, Result,
    SessionStore, Stats, SystemClock, Timestamp, UpdateAction, UpdateOutcome, Version, WriteMode,
    WriteOutcome, is_live,
};

use crate::record::{self, Record};

/// The format marker this version writes and reads.
pub const FORMAT: &str = "dirstore 1\n";
/// Largest value, in bytes.
pub const MAX_VALUE_LEN: usize = 1 << 20;

/// How a [`DirStore`] is opened.
#[derive(Debug, Clone)]
pub struct DirStoreBuilder {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    default_ttl: Option<Duration>,
}

impl DirStoreBuilder {
    /// The clock expiry is measured against (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The time to live of [`Expiry::Default`] writes (default: never expire).
    pub fn default_ttl(mut self, ttl: Duration) -> Self {
        self.default_ttl = Some(ttl);
        self
    }

    /// Opens the store, creating the directory and its format marker if need be.
    ///
    /// # Errors
    /// [`Error::Io`] if the directory cannot be made or read; [`Error::Incompatible`] if it
    /// holds another format.
    pub fn open(self) -> Result<DirStore> {
        let entries = self.dir.join("entries");
        fs::create_dir_all(&entries).map_err(|e| io_error(&self.dir, "creating", e))?;
        let lock_path = self.dir.join("lock");
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, "opening", e))?;
        let store = DirStore {
            dir: self.dir,
            entries,
            lock,
            inproc: Mutex::new(()),
            clock: self.clock,
            default_ttl: self.default_ttl,
            counters: Counters::default(),
        };
        let _g = store.locked()?;
        let marker = store.dir.join("format");
        match fs::read_to_string(&marker) {
            Ok(f) if f == FORMAT => {}
            Ok(other) => {
                return Err(Error::Incompatible {
                    path: marker,
                    reason: format!("made by {:?}, this is {FORMAT:?}", other.trim_end()),
                });
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                store.replace_file(&marker, FORMAT.as_bytes())?;
            }
            Err(e) => return Err(io_error(&marker, "reading", e)),
        }
        drop(_g);
        Ok(store)
    }
}

fn io_error(path: &Path, what: &str, e: io::Error) -> Error {
    Error::io(format!("{what} {}", path.display()), e)
}

#[derive(Debug, Default)]
struct Counters {
    reads: AtomicU64,
    hits: AtomicU64,
    writes: AtomicU64,
    purged: AtomicU64,
    lost: AtomicU64,
}

/// A session store of one file per entry under `<dir>/entries`, for a handful of
/// processes on one host (each handle takes `<dir>/lock` with `flock` for every write).
/// Writes replace an entry's file with a new one (`rename`), so readers take no lock and
/// see the old file or the new one. Not durable against power loss (no `fsync`).
#[derive(Debug)]
pub struct DirStore {
    dir: PathBuf,
    entries: PathBuf,
    /// This handle's own open file description of the lock file: `flock` excludes
    /// other handles and processes, the mutex other threads of this handle.
    lock: File,
    inproc: Mutex<()>,
    clock: Arc<dyn Clock>,
    default_ttl: Option<Duration>,
    counters: Counters,
}

/// Both locks, released in reverse order when dropped (also when an update closure
/// panics).
struct Locked<'a> {
    store: &'a DirStore,
    _inproc: MutexGuard<'a, ()>,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let _ = rustix::fs::flock(&self.store.lock, rustix::fs::FlockOperation::Unlock);
    }
}

impl DirStore {
    /// A builder for the store in `dir`.
    pub fn builder(dir: impl Into<PathBuf>) -> DirStoreBuilder {
        DirStoreBuilder {
            dir: dir.into(),
            clock: Arc::new(SystemClock),
            default_ttl: None,
        }
    }

    fn locked(&self) -> Result<Locked<'_>> {
        let inproc = self.inproc.lock().unwrap_or_else(PoisonError::into_inner);
        rustix::fs::flock(&self.lock, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| io_error(&self.dir.join("lock"), "locking", e.into()))?;
        Ok(Locked {
            store: self,
            _inproc: inproc,
        })
    }

    /// The file of `key`: its bytes in hex when that is short enough, else a prefix
    /// and a hash (the file holds the key, so a collision is noticed, never served).
    fn path(&self, key: &Key) -> PathBuf {
        let b = key.as_bytes();
        let name = if b.len() <= 100 {
            hex(b)
        } else {
            format!("l{}-{:016x}", hex(&b[..60]), record::fnv(b))
        };
        self.entries.join(name)
    }

    /// The record of `key`, live or not; `None` if there is no file.
    fn load(&self, key: &Key) -> Result<Option<Record>> {
        let path = self.path(key);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error(&path, "reading", e)),
        };
        let rec = Record::decode(&bytes).map_err(|what| Error::Corrupted {
            what: format!("{}: {what}", path.display()),
        })?;
        if rec.key != key.as_bytes() {
            return Err(Error::Corrupted {
                what: format!("{} holds another key (a hash collision)", path.display()),
            });
        }
        Ok(Some(rec))
    }

    /// The live record of `key`.
    fn live(&self, key: &Key) -> Result<Option<Record>> {
        let now = self.clock.now();
        Ok(self.load(key)?.filter(|r| is_live(r.expires_at, now)))
    }

    /// Writes `bytes` to `path` through a temporary file and a rename.
    fn replace_file(&self, path: &Path, bytes: &[u8]) -> Result<()> {
        static N: AtomicU64 = AtomicU64::new(0);
        let tmp = path.with_file_name(format!(
            ".tmp-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let r = File::create(&tmp)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| fs::rename(&tmp, path));
        if let Err(e) = r {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(path, "writing", e));
        }
        Ok(())
    }

    /// The next version, from `<dir>/version` (under the lock): never reused, across
    /// deletes, reopens and processes.
    fn next_version(&self, _l: &Locked<'_>) -> Result<Version> {
        let path = self.dir.join("version");
        let mut buf = [0u8; 8];
        let last = match File::open(&path) {
            Ok(mut f) => {
                f.read_exact(&mut buf)
                    .map_err(|e| io_error(&path, "reading", e))?;
                u64::from_le_bytes(buf)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io_error(&path, "reading", e)),
        };
        let next = last.checked_add(1).ok_or_else(|| Error::Corrupted {
            what: format!("{}: the version counter is exhausted", path.display()),
        })?;
        self.replace_file(&path, &next.to_le_bytes())?;
        Ok(Version::new(next).expect("next >= 1"))
    }

    fn write(
        &self,
        l: &Locked<'_>,
        key: &Key,
        value: &[u8],
        expires_at: Option<Timestamp>,
    ) -> Result<WriteOutcome> {
        let version = self.next_version(l)?;
        let rec = Record {
            key: key.as_bytes().to_vec(),
            value: value.to_vec(),
            expires_at,
            version,
        };
        self.replace_file(&self.path(key), &rec.encode())?;
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        Ok(WriteOutcome {
            version,
            evicted: Evictions::NONE,
        })
    }

    fn remove(&self, key: &Key) -> Result<()> {
        let path = self.path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_error(&path, "removing", e)),
        }
    }

    fn check_len(value: &[u8]) -> Result<()> {
        if value.len() > MAX_VALUE_LEN {
            return Err(Error::TooLarge {
                len: value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        Ok(())
    }

    fn entry_files(&self) -> Result<Vec<PathBuf>> {
        let rd = fs::read_dir(&self.entries).map_err(|e| io_error(&self.entries, "listing", e))?;
        let mut out = Vec::new();
        for d in rd {
            let d = d.map_err(|e| io_error(&self.entries, "listing", e))?;
            if !d.file_name().to_string_lossy().starts_with('.') {
                out.push(d.path());
            }
        }
        Ok(out)
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl SessionStore for DirStore {
    fn get(&self, key: &Key) -> Result<Option<Entry>> {
        let r = self.live(key)?;
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        if r.is_some() {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
        }
        Ok(r.map(Record::into_entry))
    }

    fn put(
        &self,
        key: &Key,
        value: &[u8],
        expiry: Expiry,
        mode: WriteMode,
    ) -> Result<WriteOutcome> {
        Self::check_len(value)?;
        let l = self.locked()?;
        let now = self.clock.now();
        let current = self.live(key)?.map(|r| r.version);
        mode.check(key, current)?;
        self.write(&l, key, value, expiry.resolve(now, self.default_ttl))
    }

    fn delete(&self, key: &Key) -> Result<bool> {
        let _l = self.locked()?;
        let live = self.live(key)?.is_some();
        self.remove(key)?;
        if live {
            self.counters.writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(live)
    }

    fn touch(&self, key: &Key, expiry: Expiry) -> Result<bool> {
        let _l = self.locked()?;
        let now = self.clock.now();
        let Some(mut rec) = self.live(key)? else {
            return Ok(false);
        };
        rec.expires_at = expiry.resolve(now, self.default_ttl);
        self.replace_file(&self.path(key), &rec.encode())?;
        self.counters.writes.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }

    fn update(
        &self,
        key: &Key,
        f: &mut dyn FnMut(Option<&Entry>) -> UpdateAction,
    ) -> Result<UpdateOutcome> {
        let l = self.locked()?;
        let now = self.clock.now();
        let current = self.live(key)?.map(Record::into_entry);
        self.counters.reads.fetch_add(1, Ordering::Relaxed);
        if current.is_some() {
            self.counters.hits.fetch_add(1, Ordering::Relaxed);
        }
        match f(current.as_ref()) {
            UpdateAction::Keep => Ok(UpdateOutcome::Kept),
            UpdateAction::Delete => {
                self.remove(key)?;
                if current.is_some() {
                    self.counters.writes.fetch_add(1, Ordering::Relaxed);
                }
                Ok(UpdateOutcome::Deleted {
                    existed: current.is_some(),
                })
            }
            UpdateAction::Set { value, expiry } => {
                Self::check_len(&value)?;
                let at = expiry.resolve(now, self.default_ttl);
                self.write(&l, key, &value, at).map(UpdateOutcome::Written)
            }
        }
    }

    fn purge_expired(&self) -> Result<u64> {
        let _l = self.locked()?;
        let now = self.clock.now();
        let mut purged = 0;
        for path in self.entry_files()? {
            let keep = match fs::read(&path) {
                Ok(bytes) => match Record::decode(&bytes) {
                    Ok(r) => is_live(r.expires_at, now),
                    // A damaged file can never be read: dropped, and counted.
                    Err(_) => {
                        self.counters.lost.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(&path, "reading", e)),
            };
            if !keep {
                match fs::remove_file(&path) {
                    Ok(()) => purged += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error(&path, "removing", e)),
                }
            }
        }
        self.counters.purged.fetch_add(purged, Ordering::Relaxed);
        Ok(purged)
    }

    fn stats(&self) -> Result<Stats> {
        let files = self.entry_files()?;
        let mut s = Stats::default();
        s.entries = files.len() as u64;
        s.bytes_used = files
            .iter()
            .filter_map(|p| fs::metadata(p).ok())
            .map(|m| m.len())
            .sum();
        s.reads = self.counters.reads.load(Ordering::Relaxed);
        s.hits = self.counters.hits.load(Ordering::Relaxed);
        s.writes = self.counters.writes.load(Ordering::Relaxed);
        s.purged = self.counters.purged.load(Ordering::Relaxed);
        s.lost_in_repair = self.counters.lost.load(Ordering::Relaxed);
        Ok(s)
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::new(MAX_VALUE_LEN);
        caps.shared_across_processes = true;
        caps.survives_restart = true;
        caps.max_key_len = MAX_KEY_LEN;
        caps.blocking = Blocking::Io;
        caps
    }
}
