//! Opening the store file safely: missing directories created owner-only, the parent
//! directory opened and checked first and the file opened relative to it (`openat`,
//! `O_NOFOLLOW | O_CLOEXEC`), a new file created with the mode asked for narrowed by the
//! umask, and the ownership and permission checks that keep a predictable path in `/tmp`
//! from being planted or read by another local user.
//!
//! Through rustix (no `unsafe` here), except `posix_fallocate`'s emulation of block
//! allocation where a filesystem has none, which rustix does not offer (libc).

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{FallocateFlags, FileType, Mode, OFlags, Stat};
use rustix::io::Errno;
use rustix::process::{Gid, Uid};
use store_api::Error;

/// An opened store file, its directory and name in it, and whether this call created it.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) file: File,
    /// The checked parent directory (`O_PATH`): where the file is reopened by name when
    /// a forked child has no `/proc`.
    pub(crate) dir: OwnedFd,
    /// The file's name in `dir`.
    pub(crate) name: CString,
    /// Whether this call created the file (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) created: bool,
}

fn cstring(path: &Path, bytes: &[u8]) -> Result<CString, Error> {
    CString::new(bytes).map_err(|_| Error::InvalidConfig {
        option: "storage",
        reason: format!("{} contains a NUL byte", path.display()),
    })
}

/// Retries a system call on `EINTR`.
fn retry<T>(mut call: impl FnMut() -> rustix::io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(Errno::INTR) => continue,
            r => return r.map_err(io::Error::from),
        }
    }
}

fn open_at(dir: BorrowedFd<'_>, name: &CStr, flags: OFlags, mode: u32) -> io::Result<File> {
    retry(|| rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(mode))).map(File::from)
}

/// Opens (if `create`, creating with `mode`, narrowed by the umask, if absent) the store
/// file, refusing an unsafe directory (see [`check_dir`]), symlinks, non-regular files,
/// files with more than one hard link, files of another owner, and files that let others
/// read them or let group or others write them (see [`check_file`]). Without `create` a
/// missing file or directory is an error and nothing is created.
pub(crate) fn open_store_file(path: &Path, mode: u32, create: bool) -> Result<Opened, Error> {
    let name = path
        .file_name()
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .ok_or_else(|| Error::InvalidConfig {
            option: "storage",
            reason: format!("{} does not name a file", path.display()),
        })?;
    let name = cstring(path, name.as_bytes())?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir = open_dir(parent, create)?;
    check_dir(parent, &dir)?;
    if !create {
        let file = match open_at(dir.as_fd(), &name, OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC, 0) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Error::io(
                    format!("{}: no session store file there (nothing was created)", path.display()),
                    e,
                ));
            }
            Err(e) => return Err(open_error(path, e)),
        };
        check_file(path, &file)?;
        return Ok(Opened {
            file,
            dir,
            name,
            created: false,
        });
    }
    let base = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = dir.as_fd();
    let (file, created) = match open_at(fd, &name, base | OFlags::CREATE | OFlags::EXCL, mode) {
        Ok(f) => {
            // The umask has narrowed the mode, never widened it. A setgid directory gave
            // the file its group: take the process's own, so the group of the directory
            // (perhaps another user's) cannot read it.
            own_group(path, &f)?;
            owner_read_write(path, &f)?;
            (f, true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match open_at(fd, &name, base, 0) {
            Ok(f) => (f, false),
            Err(e) => return Err(open_error(path, e)),
        },
        Err(e) => return Err(open_error(path, e)),
    };
    check_file(path, &file)?;
    Ok(Opened {
        file,
        dir,
        name,
        created,
    })
}

/// Opens the directory `dir` (`O_PATH`), creating it and any missing parent owner-only
/// (0700, as the Catalyst store creates its storage directory). If `dir` itself is a
/// symbolic link, it must be this user's or root's (`/var/run`, say): one another user
/// planted in a shared directory would lead the file wherever they chose.
fn open_dir(dir: &Path, create: bool) -> Result<OwnedFd, Error> {
    let c = cstring(dir, dir.as_os_str().as_bytes())?;
    if let Ok(md) = std::fs::symlink_metadata(dir)
        && md.file_type().is_symlink()
    {
        use std::os::unix::fs::MetadataExt;
        if md.uid() != euid() && md.uid() != 0 {
            return Err(Error::Incompatible {
                path: dir.to_owned(),
                reason: format!(
                    "the storage directory is a symbolic link owned by uid {}, neither this \
                     process's uid {} nor root (perhaps planted by another user); remove it \
                     or use a directory you own",
                    md.uid(),
                    euid()
                ),
            });
        }
    }
    let open = || {
        retry(|| {
            rustix::fs::open(
                c.as_c_str(),
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )
        })
    };
    match open() {
        Ok(d) => Ok(d),
        Err(e) if e.kind() == io::ErrorKind::NotFound && create => {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    Error::io(
                        format!("creating the storage directory {}", dir.display()),
                        e,
                    )
                })?;
            open().map_err(|e| Error::io(format!("opening directory {}", dir.display()), e))
        }
        Err(e) => Err(Error::io(
            format!("opening the storage directory {}", dir.display()),
            e,
        )),
    }
}

fn open_error(path: &Path, e: io::Error) -> Error {
    if e.raw_os_error() == Some(Errno::LOOP.raw_os_error()) {
        return Error::Incompatible {
            path: path.to_owned(),
            reason: "the path is a symbolic link; refusing to follow it (another local user \
                     may have planted it). Remove it or choose another `storage` path"
                .into(),
        };
    }
    Error::io(format!("opening session store file {}", path.display()), e)
}

fn fstat_fd(path: &Path, fd: BorrowedFd<'_>) -> Result<Stat, Error> {
    rustix::fs::fstat(fd)
        .map_err(|e| Error::io(format!("fstat of {}", path.display()), e.into()))
}

pub(crate) fn fstat(path: &Path, file: &File) -> Result<Stat, Error> {
    fstat_fd(path, file.as_fd())
}

/// The effective uid.
fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Whether the process is in group `gid` (effective or supplementary).
fn in_group(gid: u32) -> bool {
    if rustix::process::getegid().as_raw() == gid {
        return true;
    }
    rustix::process::getgroups()
        .is_ok_and(|groups| groups.iter().any(|g| g.as_raw() == gid))
}

/// Gives a file just created back its owner's read and write bits if the umask took
/// them (every later open, and a forked child's, opens it read-write); nothing else.
fn owner_read_write(path: &Path, f: &File) -> Result<(), Error> {
    let mode = fstat(path, f)?.st_mode & 0o7777;
    if mode & 0o600 == 0o600 {
        return Ok(());
    }
    rustix::fs::fchmod(f, Mode::from_raw_mode(mode | 0o600)).map_err(|e| {
        Error::io(
            format!("letting the owner read and write {}", path.display()),
            e.into(),
        )
    })
}

/// Gives a file just created the process's effective group if its directory gave it one
/// the process is not in.
fn own_group(path: &Path, f: &File) -> Result<(), Error> {
    let st = fstat(path, f)?;
    if in_group(st.st_gid) {
        return Ok(());
    }
    // `None` keeps the owner.
    let group: Gid = rustix::process::getegid();
    rustix::fs::fchown(f, None::<Uid>, Some(group)).map_err(|e| {
        Error::io(
            format!("giving {} this process's group", path.display()),
            e.into(),
        )
    })
}

/// Refuses a directory another user could use to replace, rename or plant the file:
/// owned by someone other than this user or root, or writable by group or others
/// without the sticky bit (which keeps them from removing or renaming our files).
fn check_dir(dir: &Path, fd: &OwnedFd) -> Result<(), Error> {
    let st = fstat_fd(dir, fd.as_fd())?;
    let refuse = |reason: String| Error::Incompatible {
        path: dir.to_owned(),
        reason,
    };
    let me = euid();
    if st.st_uid != me && st.st_uid != 0 {
        return Err(refuse(format!(
            "the storage directory is owned by uid {}, neither this process's uid {me} nor \
             root: its owner could replace or remove the session file. Use a directory you \
             own (a missing one is created owner-only)",
            st.st_uid
        )));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 && !Mode::from_raw_mode(mode).contains(Mode::SVTX) {
        return Err(refuse(format!(
            "the storage directory has mode {mode:o}: group or others may write it and, \
             without the sticky bit, rename or replace the session file. Run `chmod go-w` \
             on it (or `chmod +t` for a shared temporary directory) or use a directory \
             you own"
        )));
    }
    Ok(())
}

/// Refuses a file that is not a plain file of this user's with one link that only this
/// user (and its own group) can read and only this user can write.
fn check_file(path: &Path, file: &File) -> Result<(), Error> {
    let st = fstat(path, file)?;
    let refuse = |reason: String| Error::Incompatible {
        path: path.to_owned(),
        reason,
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(refuse(
            "not a regular file; choose a `storage` path that is a plain file".into(),
        ));
    }
    let me = euid();
    if st.st_uid != me {
        return Err(refuse(format!(
            "owned by uid {}, not by this process's uid {me}; another user may read or plant \
             sessions. Remove the file or choose another `storage` path",
            st.st_uid
        )));
    }
    if st.st_nlink != 1 {
        return Err(refuse(format!(
            "it has {} hard links; another name for the file (perhaps planted by someone \
             who could then replace or read it) would let other programs reach the store. \
             Remove the other links or choose another `storage` path",
            st.st_nlink
        )));
    }
    let mode = st.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refuse(format!(
            "mode {mode:o} lets group or others write it; run `chmod go-w` on it or remove it"
        )));
    }
    if mode & 0o007 != 0 {
        return Err(refuse(format!(
            "mode {mode:o} lets every local user open it: read every session and the hash \
             secret, and block every writer with a lock. Run `chmod o-rwx` on it"
        )));
    }
    if mode & 0o070 != 0 && !in_group(st.st_gid) {
        return Err(refuse(format!(
            "mode {mode:o} lets group {} read it, a group this process is not in (perhaps \
             given by a setgid directory): its members could read every session. Run \
             `chmod g-rwx` on it, or `chgrp` it to your own group",
            st.st_gid
        )));
    }
    Ok(())
}

/// Reads `buf.len()` bytes at `off` (`pread`; never through the mapping).
pub(crate) fn read_at(path: &Path, file: &File, off: u64, buf: &mut [u8]) -> Result<(), Error> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, off)
        .map_err(|e| Error::io(format!("reading {}", path.display()), e))
}

/// Writes `buf` at `off` (`pwrite`), extending the file if need be.
pub(crate) fn write_at(path: &Path, file: &File, off: u64, buf: &[u8]) -> Result<(), Error> {
    use std::os::unix::fs::FileExt;
    file.write_all_at(buf, off)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

/// Allocates the file's blocks in `[0, len)`, so that no store through the mapping ever
/// meets a full filesystem: a sparse file's first store into a block the filesystem
/// cannot provide raises `SIGBUS` in the writer (a container's 64 MiB `/dev/shm` fills
/// fast). An already allocated range costs a walk of its extents. Where the filesystem
/// cannot allocate (`EOPNOTSUPP`), `emulate` lets glibc write a zero byte per block
/// instead (only while nobody else writes the file: initialisation), else nothing is done.
pub(crate) fn allocate(path: &Path, file: &File, len: u64, emulate: bool) -> Result<(), Error> {
    let len = len.min(i64::MAX as u64);
    let rc = match retry(|| rustix::fs::fallocate(file, FallocateFlags::empty(), 0, len)) {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let rc = match Errno::from_io_error(&rc) {
        Some(Errno::OPNOTSUPP) if emulate => match emulate_allocate(file, len) {
            0 => return Ok(()),
            n => io::Error::from_raw_os_error(n),
        },
        Some(Errno::OPNOTSUPP) => return Ok(()),
        _ => rc,
    };
    let context = if Errno::from_io_error(&rc) == Some(Errno::NOSPC) {
        format!(
            "reserving the {len} bytes of session store file {}: the filesystem is full (a \
             small tmpfs such as a container's /dev/shm?). Free space, give the filesystem \
             more, or choose a smaller cache_size",
            path.display()
        )
    } else {
        format!(
            "reserving the {len} bytes of session store file {}",
            path.display()
        )
    };
    Err(Error::io(context, rc))
}

/// Makes `[off, off + len)` of the file read as zeroes: the blocks are deallocated
/// (`FALLOC_FL_PUNCH_HOLE`), or, where the filesystem cannot, overwritten with zeroes
/// by `pwrite` (outside any mapping's memory model).
pub(crate) fn zero_range(path: &Path, file: &File, off: u64, len: u64) -> Result<(), Error> {
    let mode = FallocateFlags::PUNCH_HOLE | FallocateFlags::KEEP_SIZE;
    match retry(|| rustix::fs::fallocate(file, mode, off, len)) {
        Ok(()) => return Ok(()),
        Err(e) if Errno::from_io_error(&e) == Some(Errno::OPNOTSUPP) => {}
        Err(e) => {
            return Err(Error::io(
                format!("clearing the pages of {}", path.display()),
                e,
            ));
        }
    }
    let zeroes = vec![0u8; 1 << 20];
    let mut at = off;
    while at < off + len {
        let n = (off + len - at).min(zeroes.len() as u64) as usize;
        write_at(path, file, at, &zeroes[..n])?;
        at += n as u64;
    }
    Ok(())
}

/// Sets the file's length.
pub(crate) fn set_len(path: &Path, file: &File, len: u64) -> Result<(), Error> {
    file.set_len(len)
        .map_err(|e| Error::io(format!("resizing {} to {len} bytes", path.display()), e))
}

/// glibc's `posix_fallocate`, which writes a zero byte into every block where the
/// filesystem cannot allocate: an error number, 0 on success. (libc: rustix has no call.)
#[allow(unsafe_code)]
fn emulate_allocate(file: &File, len: u64) -> i32 {
    let len = libc::off_t::try_from(len).unwrap_or(libc::off_t::MAX);
    // SAFETY: the descriptor is the caller's open file; posix_fallocate has no other
    // preconditions and returns an error number.
    unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_with_the_mode_asked_for_never_wider() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let o = open_store_file(&p, 0o640, true).unwrap();
        assert!(o.created);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode & !0o640, 0, "{mode:o}: the umask only narrows");
        let again = open_store_file(&p, 0o600, true).unwrap();
        assert!(!again.created);
    }

    #[test]
    fn creates_missing_directories_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a/b/sessions");
        open_store_file(&p, 0o600, true).unwrap();
        for d in [dir.path().join("a"), dir.path().join("a/b")] {
            let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o7777;
            assert_eq!(mode & !0o700, 0, "{}: {mode:o}", d.display());
        }
    }

    /// Regression (audit 2, finding 4): files others could read were accepted.
    #[test]
    fn refuses_files_others_can_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        drop(open_store_file(&p, 0o600, true).unwrap());
        for mode in [0o604, 0o644, 0o601] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = open_store_file(&p, 0o600, true).unwrap_err();
            assert!(
                matches!(e, Error::Incompatible { .. }) && e.to_string().contains("chmod o-rwx"),
                "{mode:o}: {e}"
            );
        }
        // Group-readable by the process's own group is the Perl store's 0640.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        open_store_file(&p, 0o600, true).unwrap();
    }

    /// Regression (audit 2, finding 4): the directory was not checked.
    #[test]
    fn refuses_a_directory_others_can_write_unless_sticky() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join("shared");
        std::fs::create_dir(&shared).unwrap();
        let p = shared.join("f");
        for mode in [0o777, 0o775, 0o757] {
            std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(mode)).unwrap();
            let e = open_store_file(&p, 0o600, true).unwrap_err();
            assert!(
                matches!(e, Error::Incompatible { .. }) && e.to_string().contains("chmod go-w"),
                "{mode:o}: {e}"
            );
        }
        // Like /tmp: others may create files but not remove or rename ours.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
        open_store_file(&p, 0o600, true).unwrap();
    }

    /// Ownership tests need root (CI runs as root): a directory or group of another user.
    #[test]
    fn refuses_another_users_directory_and_takes_its_own_group_in_a_setgid_one() {
        if euid() != 0 {
            assert!(
                std::env::var_os("FASTMMAP_REQUIRE_ROOT").is_none(),
                "FASTMMAP_REQUIRE_ROOT is set but this test needs root"
            );
            eprintln!("skipped: needs root to give files to another user");
            return;
        }
        let chown = |p: &Path, uid: u32, gid: u32| {
            std::os::unix::fs::chown(p, Some(uid), Some(gid)).unwrap();
        };
        let dir = tempfile::tempdir().unwrap();
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        chown(&theirs, 12345, 12345);
        let e = open_store_file(&theirs.join("f"), 0o600, true).unwrap_err();
        assert!(e.to_string().contains("owned by uid 12345"), "{e}");
        // Ours, setgid, with a group we are not in: the file gets our own group.
        let setgid = dir.path().join("setgid");
        std::fs::create_dir(&setgid).unwrap();
        chown(&setgid, 0, 12345);
        std::fs::set_permissions(&setgid, std::fs::Permissions::from_mode(0o2750)).unwrap();
        let p = setgid.join("f");
        open_store_file(&p, 0o640, true).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert_eq!(
            std::fs::metadata(&p).unwrap().gid(),
            rustix::process::getegid().as_raw()
        );
        // An existing file readable by that group is refused.
        chown(&p, 0, 12345);
        let e = open_store_file(&p, 0o640, true).unwrap_err();
        assert!(e.to_string().contains("group 12345"), "{e}");
    }

    #[test]
    fn refuses_symlink_directory_and_group_writable() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_store_file(&link, 0o600, true).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");

        let e = open_store_file(dir.path(), 0o600, true).unwrap_err();
        assert!(
            matches!(e, Error::Io { .. } | Error::Incompatible { .. }),
            "{e}"
        );

        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = open_store_file(&target, 0o600, true).unwrap_err();
        assert!(e.to_string().contains("chmod go-w"), "{e}");
    }

    /// Regression (audit #6): a file with a second hard link was accepted.
    #[test]
    fn refuses_a_file_with_another_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        drop(open_store_file(&p, 0o600, true).unwrap());
        let other = dir.path().join("other-name");
        std::fs::hard_link(&p, &other).unwrap();
        for path in [&p, &other] {
            let e = open_store_file(path, 0o600, true).unwrap_err();
            assert!(
                matches!(e, Error::Incompatible { .. }) && e.to_string().contains("2 hard links"),
                "{e}"
            );
        }
        std::fs::remove_file(&other).unwrap();
        open_store_file(&p, 0o600, true).unwrap();
    }
}
