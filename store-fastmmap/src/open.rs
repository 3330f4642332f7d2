//! Opening a store: create or validate the file, initialise it exactly once.
//!
//! Under the fcntl write lock on the header range `[0, 4096)`:
//! 1. a file of length 0, or starting with `INIT_MAGIC` (an initialiser died), or all
//!    zero at the start and exactly the expected length (an initialiser of an older
//!    version died), or any file when `init_file` is set, is initialised: under a lock on
//!    every page (`[4096, EOF)`) `INIT_MAGIC` written first, the old pages zeroed unless
//!    the secret is kept, the file sized and its blocks allocated, every page wiped, the
//!    header written magic last;
//! 2. otherwise the header is validated: magic, checksum, format version, geometry
//!    (against the options if any geometry option was given) and file length; the file's
//!    blocks are allocated (a file an earlier build left sparse). A file starting with
//!    zeroes at any other length is someone else's (`Incompatible`).
//!
//! Several processes opening a new file at once therefore initialise it exactly once.

use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

use store_api::{Error, Result};

use crate::builder::FastMmapBuilder;
use crate::failpoint::Armed;
use crate::format::geometry::Geometry;
use crate::format::header::{
    FileCounter, HEADER_LEN, Header, HeaderState, INIT_MAGIC, version_counter,
};
use crate::format::page::Page;
use crate::format::region::Region;
use crate::format::hash::KeyHasher;
use crate::locked::Locked;
use crate::os::file::{allocate, fstat, open_store_file, read_at, set_len, write_at, zero_range};
use crate::LockKind;
use crate::os::lock::{RangeGuard, USERS_BYTE, hold_users_shared, release_users, try_users_alone};
use crate::os::mmap::Mapping;
use crate::store::{FastMmapStore, Parts};

/// Locks `range` of `file` (waiting), naming `what` in the error.
fn lock<'f>(
    path: &Path,
    file: &'f std::fs::File,
    range: std::ops::Range<u64>,
    what: &str,
) -> Result<RangeGuard<'f>> {
    RangeGuard::lock(file.as_fd(), range)
        .map_err(|e| Error::io(format!("locking {what} of {}", path.display()), e))
}

pub(crate) fn open(b: FastMmapBuilder) -> Result<FastMmapStore> {
    let path = b.path();
    let mode = b.checked_mode()?;
    b.check_timeouts()?;
    let wanted = b.geometry()?;
    if b.existing_only && b.init_file {
        return Err(Error::InvalidConfig {
            option: "existing_only",
            reason: "existing_only never initialises a file, so it cannot be combined with \
                     init_file"
                .into(),
        });
    }
    if b.lock_kind == Some(LockKind::Futex) && !crate::os::robust::SUPPORTED {
        return Err(futex_elsewhere());
    }
    let opened = open_store_file(&path, mode, !b.existing_only)?;
    let fd = opened.file.as_raw_fd();
    let (header, map, identity) = {
        let header_lock = lock(&path, &opened.file, 0..HEADER_LEN as u64, "the header")?;
        // Whether any other store of a futex-kind file has it open (those hold a shared
        // lock on the users byte; fcntl-kind stores hold none). Under the header lock, so
        // no other opener can change the answer before we are done.
        let alone = try_users_alone(fd)
            .map_err(|e| Error::io(format!("locking the users byte of {}", path.display()), e))?;
        // The identity is read under the header lock, from the header just validated or
        // written: a re-initialisation after the lock is released must be noticed.
        let r = open_locked(&path, &b, wanted, &opened.file, alone).and_then(|(header, map)| {
            if header.geometry.locks == LockKind::Futex {
                admit_futex(&path, &header, &map, alone)?;
                hold_users_shared(fd).map_err(|e| {
                    Error::io(format!("locking the users byte of {}", path.display()), e)
                })?;
            } else if alone {
                release_users(fd);
            }
            let identity = Header::identity(&Region::of(&map)).ok_or_else(|| Error::Corrupted {
                what: format!("{}: the header does not fit in the file", path.display()),
            })?;
            Ok((header, map, identity))
        });
        if r.is_err() && alone {
            release_users(fd);
        }
        drop(header_lock);
        r?
    };
    let users = header.geometry.locks == LockKind::Futex;
    let parts = Parts {
        identity,
        hasher: KeyHasher::new(header.secret, header.geometry.num_pages),
        geo: header.geometry,
        map,
        opened,
        path,
        clock: b.clock,
        default_ttl: b.expires,
        policy: b.policy,
        read_lock_timeout: b.read_lock_timeout,
        write_lock_timeout: b.write_lock_timeout,
        fail: Armed::from_env(),
        users,
    };
    FastMmapStore::from_parts(parts)
}

/// The header and the mapping of a validated or initialised file; the caller holds the
/// header lock.
fn open_locked(
    path: &Path,
    b: &FastMmapBuilder,
    mut wanted: Geometry,
    file: &std::fs::File,
    alone: bool,
) -> Result<(Header, Mapping)> {
    let path = path.to_owned();
    let len = fstat(&path, file)?.st_size as u64;
    // A file keeps its lock kind unless one is asked for (even through `init_file`).
    if b.lock_kind.is_none()
        && let Some(kind) = file_lock_kind(file, len)
    {
        wanted.locks = kind;
    }
    // `init_file` on a sound file of the same geometry keeps its hash secret: processes
    // that still have the file open keep hashing keys to the same pages.
    let keep_secret = if b.init_file && len == wanted.file_len() {
        Mapping::map(file, len as usize).ok().and_then(|map| {
            match Header::read(&Region::of(&map)) {
                HeaderState::Present(h) if h.check().is_ok() && h.geometry == wanted => {
                    Some(h.secret)
                }
                _ => None,
            }
        })
    } else {
        None
    };
    let existing = if b.init_file || len == 0 {
        None
    } else {
        // Classify by the first 8 bytes before mapping: an initialiser that died right
        // after writing `INIT_MAGIC` left a file of only 8 bytes.
        let mut magic = [0u8; 8];
        if len >= 8 {
            read_at(&path, file, 0, &mut magic)?;
        }
        if magic == INIT_MAGIC {
            // An initialiser died (we hold the header lock, so none is running).
            None
        } else if len < HEADER_LEN as u64 {
            return Err(not_ours(&path, "it is shorter than a store header"));
        } else if magic == [0; 8] {
            // Zeroes at exactly the expected length: left by an initialiser of an older
            // version of this code, which zeroed the magic instead of writing
            // `INIT_MAGIC`. Any other zero-prefixed file is someone else's.
            if len != wanted.file_len() {
                return Err(not_ours(
                    &path,
                    &format!(
                        "it starts with zero bytes and its length {len} is not the {} bytes \
                         of the expected geometry",
                        wanted.file_len()
                    ),
                ));
            }
            None
        } else {
            let map = Mapping::map(file, len as usize)
                .map_err(|e| Error::io(format!("mapping {}", path.display()), e))?;
            match Header::read(&Region::of(&map)) {
                HeaderState::Uninitialised | HeaderState::Initialising => {
                    // Changed since `read_at` although we hold the header lock: another
                    // program writes the file.
                    return Err(not_ours(&path, "its first bytes changed while opening it"));
                }
                HeaderState::ForeignMagic(m) => {
                    return Err(not_ours(
                        &path,
                        &format!("it does not start with the session store magic (found {m:02x?})"),
                    ));
                }
                HeaderState::BadChecksum => {
                    return Err(Error::Corrupted {
                        what: format!(
                            "{}: the file header checksum does not match; remove the file or \
                             open it with init_file(true) to start empty",
                            path.display()
                        ),
                    });
                }
                HeaderState::Present(h) => {
                    check_existing(&path, &h, b, wanted, len)?;
                    // A file an earlier build left sparse gets its blocks now.
                    allocate(&path, file, len, false)?;
                    Some((*h, map))
                }
            }
        }
    };

    match existing {
        Some(x) => Ok(x),
        None if b.existing_only => Err(Error::Incompatible {
            path,
            reason: if len == 0 {
                "the file is empty: no store was ever initialised in it (existing_only does \
                 not initialise one)"
                    .into()
            } else {
                "the file's initialisation never finished (its initialiser died); the next \
                 server to open it initialises it (existing_only does not)"
                    .into()
            },
        }),
        // Other processes have a futex-kind file open (fcntl-kind stores take no users
        // lock) and may wait on its lock table: initialising it then holds every page
        // mutex, which needs the table where it is (the same geometry and kind: the same
        // length), and few enough of them for the kernel to release them all if this
        // process dies holding them.
        None if !alone && (wanted.locks != LockKind::Futex || len != wanted.file_len()) => {
            Err(Error::Incompatible {
                path,
                reason: "other processes have the file open with the futex lock kind, and \
                         initialising it with another geometry or lock kind would move the \
                         locks they wait on; stop them (or let them close it) first, or \
                         initialise it with the file's own geometry and kind"
                    .into(),
            })
        }
        None if !alone && wanted.num_pages > IN_USE_INIT_MAX_PAGES => Err(Error::Incompatible {
            path,
            reason: format!(
                "other processes have the file open with the futex lock kind, and \
                 initialising it then holds every page's lock; the kernel releases at most \
                 2048 robust locks of a process that dies, so a file of {} pages (more \
                 than {IN_USE_INIT_MAX_PAGES}) is initialised only when nobody else has it \
                 open",
                wanted.num_pages
            ),
        }),
        None => initialise(&path, file, wanted, len, keep_secret, !alone),
    }
}

/// The most pages of a futex-kind file an `init_file` initialises while other stores have
/// it open: it then holds every page's robust mutex, and a dying thread's robust list is
/// walked by the kernel for at most 2048 entries (`ROBUST_LIST_LIMIT`), which must
/// cover these and any the application holds itself.
const IN_USE_INIT_MAX_PAGES: u32 = 1024;

/// Every page mutex of a futex-kind file, held by an `init_file` while other stores have
/// the file open; released when dropped.
struct HeldTable {
    map: Mapping,
    held: u32,
    geo: Geometry,
}

impl HeldTable {
    fn lock_all(path: &Path, file: &std::fs::File, g: Geometry) -> Result<HeldTable> {
        use crate::os::robust;
        let map = Mapping::map(file, g.file_len() as usize)
            .map_err(|e| Error::io(format!("mapping {}", path.display()), e))?;
        let mut t = HeldTable {
            map,
            held: 0,
            geo: g,
        };
        for i in 0..g.num_pages {
            let m = t.mutex(i).ok_or_else(|| Error::Corrupted {
                what: format!("{}: the lock table lies outside the file", path.display()),
            })?;
            let taken = robust::lock(m).map_err(|e| {
                Error::io(format!("locking page {i} of {}: {e}", path.display()), e)
            })?;
            // A holder that died: the page is about to be wiped, nothing to repair.
            if taken == robust::Taken::OwnerDied {
                robust::make_consistent(m).map_err(|e| {
                    let _ = robust::unlock(m);
                    Error::io(format!("locking page {i} of {}: {e}", path.display()), e)
                })?;
            }
            t.held = i + 1;
        }
        Ok(t)
    }

    fn mutex(&self, i: u32) -> Option<crate::os::robust::Mutex> {
        Region::of(&self.map).mutex_at(self.geo.mutex_offset(i) as usize)
    }
}

impl Drop for HeldTable {
    fn drop(&mut self) {
        for i in (0..self.held).rev() {
            if let Some(m) = self.mutex(i) {
                let _ = crate::os::robust::unlock(m);
            }
        }
    }
}

/// The lock kind of the file's header, if it has a sound one.
fn file_lock_kind(file: &std::fs::File, len: u64) -> Option<LockKind> {
    if len < HEADER_LEN as u64 {
        return None;
    }
    let map = Mapping::map(file, HEADER_LEN).ok()?;
    match Header::read(&Region::of(&map)) {
        HeaderState::Present(h) => LockKind::from_header(h.lock_kind),
        _ => None,
    }
}

fn futex_elsewhere() -> Error {
    Error::InvalidConfig {
        option: "lock_kind",
        reason: "the futex lock kind needs Linux with glibc (robust process-shared mutexes); \
                 use LockKind::Fcntl"
            .into(),
    }
}

/// Admits this process to a futex-kind file (the caller holds the header lock; `alone`:
/// no other store has the file open). The first opener resets the lock table and
/// records its boot id and PID namespace; a later one of another boot (another machine)
/// or another PID namespace than the file's current users is refused, since robust locks
/// name their owners by thread id, which only mean the same thing within one namespace
/// of one running kernel.
fn admit_futex(path: &Path, h: &Header, map: &Mapping, alone: bool) -> Result<()> {
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (path, h, map, alone);
        return Err(futex_elsewhere());
    }
    #[cfg(target_os = "linux")]
    {
        if !crate::os::robust::SUPPORTED {
            return Err(futex_elsewhere());
        }
        use crate::format::header::{BOOT_ID_LEN, BOOT_ID_OFFSET, PID_NS_OFFSET};
        use crate::os::robust;
        let needs = |what: &str, e: std::io::Error| {
            Error::io(
                format!(
                    "{}: the futex lock kind needs {what} to trust its locks; without it use \
                     LockKind::Fcntl",
                    path.display()
                ),
                e,
            )
        };
        let boot = robust::boot_id().map_err(|e| needs("the boot id", e))?;
        let ns = robust::pid_namespace().map_err(|e| needs("the PID namespace", e))?;
        let region = Region::of(map);
        let short = || Error::Corrupted {
            what: format!("{}: the header does not fit in the file", path.display()),
        };
        let mut stored_boot = [0u8; BOOT_ID_LEN];
        let mut stored_ns = [0u8; 16];
        if !region.read_bytes(BOOT_ID_OFFSET, &mut stored_boot)
            || !region.read_bytes(PID_NS_OFFSET, &mut stored_ns)
        {
            return Err(short());
        }
        let mut this_boot = [0u8; BOOT_ID_LEN];
        this_boot[..boot.len()].copy_from_slice(&boot);
        let mut this_ns = [0u8; 16];
        this_ns[..8].copy_from_slice(&ns.0.to_le_bytes());
        this_ns[8..].copy_from_slice(&ns.1.to_le_bytes());
        if alone {
            // Nobody else has the file open, so nobody can hold a page lock: every lock
            // word is reset. This is what clears a lock a machine that died with it held
            // left behind (it ran no exit, so the kernel never marked that owner dead),
            // and any lock word damaged in the file. A page a writer died in is still
            // marked by its seqlock, and its next writer repairs it. This process's boot
            // and PID namespace are recorded for the openers that join it.
            for i in 0..h.geometry.num_pages {
                let m = region
                    .mutex_at(h.geometry.mutex_offset(i) as usize)
                    .ok_or_else(short)?;
                robust::init(m).map_err(|e| {
                    Error::io(format!("resetting page {i}'s lock of {}", path.display()), e)
                })?;
            }
            if !region.write_bytes(BOOT_ID_OFFSET, &this_boot)
                || !region.write_bytes(PID_NS_OFFSET, &this_ns)
            {
                return Err(short());
            }
            return Ok(());
        }
        if stored_boot != this_boot {
            return Err(Error::Incompatible {
                path: path.to_owned(),
                reason: format!(
                    "processes that booted as {} have its robust locks in use, and this \
                     machine booted as {}: the file is shared with another machine (a \
                     network filesystem), which no lock kind supports",
                    String::from_utf8_lossy(&stored_boot).trim_end_matches('\0'),
                    String::from_utf8_lossy(&boot)
                ),
            });
        }
        if stored_ns != this_ns {
            return Err(Error::Incompatible {
                path: path.to_owned(),
                reason: "processes of another PID namespace (another container, or the \
                         host) have the file open with the futex lock kind, whose robust \
                         locks name their owners by thread id, which differ between PID \
                         namespaces; open it from one PID namespace only, or initialise \
                         it with LockKind::Fcntl, whose locks work across namespaces"
                    .into(),
            });
        }
        Ok(())
    }
}

fn not_ours(path: &Path, why: &str) -> Error {
    Error::Incompatible {
        path: path.to_owned(),
        reason: format!(
            "not a session store file: {why}. Choose another `storage` path, or set \
             init_file(true) to overwrite it"
        ),
    }
}

fn check_existing(
    path: &Path,
    h: &Header,
    b: &FastMmapBuilder,
    wanted: Geometry,
    len: u64,
) -> Result<()> {
    h.check().map_err(|reason| Error::Incompatible {
        path: path.to_owned(),
        reason: format!(
            "{reason}; open it with the version that wrote it, or set init_file(true) to wipe it"
        ),
    })?;
    let g = h.geometry;
    if let Some(kind) = b.lock_kind
        && kind != g.locks
    {
        return Err(Error::Incompatible {
            path: path.to_owned(),
            reason: format!(
                "the file was created with the {} lock kind and the options ask for {kind}; \
                 every process must lock a file the same way, so open it with the file's \
                 kind (or no lock_kind option), or set init_file(true) to wipe and recreate \
                 it with {kind}",
                g.locks
            ),
        });
    }
    if b.geometry_given() && (g.page_size, g.num_pages) != (wanted.page_size, wanted.num_pages) {
        return Err(Error::Incompatible {
            path: path.to_owned(),
            reason: format!(
                "the file has {} pages of {} bytes, the options ask for {} pages of {} bytes; \
                 open it with the file's geometry (or no geometry options) so every process \
                 shares one file, or set init_file(true) to wipe and recreate it",
                g.num_pages, g.page_size, wanted.num_pages, wanted.page_size
            ),
        });
    }
    if len != g.file_len() {
        return Err(Error::Corrupted {
            what: format!(
                "{}: the file is {len} bytes but its header says {}; it was truncated or \
                 extended by another program. Remove it or open with init_file(true)",
                path.display(),
                g.file_len()
            ),
        });
    }
    Ok(())
}

fn initialise(
    path: &Path,
    file: &std::fs::File,
    g: Geometry,
    old_len: u64,
    keep_secret: Option<[u8; crate::format::header::SECRET_LEN]>,
    in_use: bool,
) -> Result<(Header, Mapping)> {
    // Wait for every writer of the old file to leave its page, and keep them out until
    // the header is whole again: they check the header under their page lock, so none
    // sees the file marked below while it could still write (a same-geometry
    // re-initialisation lets them carry on).
    let _pages_lock = lock(path, file, HEADER_LEN as u64..USERS_BYTE, "the pages")?;
    // The futex kind's writers take no fcntl lock: with other stores open (same geometry
    // and kind, see `open_locked`), every page's robust mutex is held instead, in page
    // order as writers take them, until the header is whole again.
    let _table = if in_use && g.locks == LockKind::Futex {
        Some(HeldTable::lock_all(path, file, g)?)
    } else {
        None
    };
    // Mark the file as being initialised before anything else changes (this also
    // extends an empty file to 8 bytes): if we die, the next opener sees `INIT_MAGIC`
    // and initialises again, and a store that still has the file open refuses to write.
    write_at(path, file, 0, &INIT_MAGIC)?;
    // Another geometry or secret: the old pages are zeroed, so that a lock-free reader
    // of a store still open with the old view finds no record it could verify (the new
    // records use another secret) and stores no stamp into the new layout.
    // The lock table of a file in use is left alone: its mutexes are held (above) and
    // other processes wait on them.
    let zero_end = if _table.is_some() {
        g.lock_table_offset()
    } else {
        old_len
    };
    if keep_secret.is_none() && zero_end > HEADER_LEN as u64 {
        zero_range(path, file, HEADER_LEN as u64, zero_end - HEADER_LEN as u64)?;
    }
    if old_len != g.file_len() {
        set_len(path, file, g.file_len())?;
    }
    if let Err(e) = allocate(path, file, g.file_len(), true) {
        // A file nobody else has (it was empty) gives its space back (empty again), and
        // one that others may have open is left marked with `INIT_MAGIC`: either way the
        // next opener initialises it.
        if old_len == 0 {
            let _ = set_len(path, file, 0);
        }
        return Err(e);
    }
    let map = Mapping::map(file, g.file_len() as usize)
        .map_err(|e| Error::io(format!("mapping {}", path.display()), e))?;
    let region = Region::of(&map);
    let secret = match keep_secret {
        Some(s) => s,
        None => KeyHasher::random_secret()
            .map_err(|e| Error::io("reading the OS random number generator", e))?,
    };
    let hasher = KeyHasher::new(secret, g.num_pages);
    let repairs = crate::counters::Repairs::default();
    let now = store_api::Clock::now(&store_api::SystemClock).as_millis();
    // Versions start at the creation time in ms times 2^20 (and never go down), so a
    // re-created file does not hand out versions an older incarnation used. Pages take
    // bases of 2^32 versions from this counter.
    let global = version_counter(&region).ok_or_else(|| Error::Corrupted {
            what: format!("{}: the header does not fit in the file", path.display()),
        })?;
    global.fetch_max((now << 20).max(1), std::sync::atomic::Ordering::Relaxed);
    for i in 0..g.num_pages {
        let page = Page::new(&region, g, i).ok_or_else(|| Error::Corrupted {
            what: format!("{}: page {i} lies outside the file", path.display()),
        })?;
        Locked::new(page, &hasher, Armed::default(), &repairs, region).wipe();
    }
    // A futex-kind file's lock table is set up when it is admitted (`admit_futex`, next
    // in this open: nobody else has the file open while it is initialised).
    // A new file counts from zero (a re-initialised one too).
    for c in FileCounter::ALL {
        if let Some(w) = c.word(&region) {
            w.store(0, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let header = Header::new(g, now, secret);
    if !header.write(&region, (now << 20).max(1)) {
        return Err(Error::Corrupted {
            what: format!("{}: the header does not fit in the file", path.display()),
        });
    }
    Ok((header, map))
}
