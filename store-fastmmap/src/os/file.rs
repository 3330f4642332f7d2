//! Opening the store file: `O_NOFOLLOW | O_CLOEXEC`, an exact mode, and the ownership
//! and permission checks that keep a predictable path in `/tmp` safe.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use store_api::Error;

/// An opened store file and whether this call created it.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) file: File,
    /// Whether this call created the file (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) created: bool,
}

fn cpath(path: &Path) -> Result<CString, Error> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| Error::InvalidConfig {
        option: "storage",
        reason: format!("{} contains a NUL byte", path.display()),
    })
}

fn raw_open(path: &CString, flags: libc::c_int, mode: u32) -> io::Result<File> {
    loop {
        // SAFETY: `path` is a valid NUL-terminated string; open has no other
        // preconditions. The returned descriptor is owned by the `File` below.
        let fd = unsafe { libc::open(path.as_ptr(), flags, mode as libc::c_uint) };
        if fd >= 0 {
            // SAFETY: `fd` was just returned by open and is owned by nobody else.
            return Ok(unsafe { File::from_raw_fd(fd) });
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Opens (creating with exactly `mode` if absent) the store file, refusing symlinks,
/// non-regular files, files with more than one hard link, files of another owner and
/// group/other-writable files.
pub(crate) fn open_store_file(path: &Path, mode: u32) -> Result<Opened, Error> {
    let c = cpath(path)?;
    let base = libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let (file, created) = match raw_open(&c, base | libc::O_CREAT | libc::O_EXCL, mode) {
        Ok(f) => {
            // The umask may have cleared bits; the mode asked for is the mode we get.
            let fd = f.as_raw_fd();
            // SAFETY: `fd` is a valid descriptor owned by `f`.
            if unsafe { libc::fchmod(fd, mode as libc::mode_t) } != 0 {
                return Err(Error::io(
                    format!("setting mode {mode:o} on {}", path.display()),
                    io::Error::last_os_error(),
                ));
            }
            (f, true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match raw_open(&c, base, 0) {
            Ok(f) => (f, false),
            Err(e) => return Err(open_error(path, e)),
        },
        Err(e) => return Err(open_error(path, e)),
    };
    check_file(path, &file)?;
    Ok(Opened { file, created })
}

/// Re-opens the same file for a new open file description (after fork), checking it is
/// still the same inode.
pub(crate) fn reopen_same(path: &Path, original: &File) -> Result<File, Error> {
    let c = cpath(path)?;
    let f = raw_open(&c, libc::O_RDWR | libc::O_NOFOLLOW | libc::O_CLOEXEC, 0)
        .map_err(|e| open_error(path, e))?;
    let (a, b) = (fstat(path, original)?, fstat(path, &f)?);
    if a.st_dev != b.st_dev || a.st_ino != b.st_ino {
        return Err(Error::Incompatible {
            path: path.to_owned(),
            reason: "the file was replaced while the store was open; reopen the store".into(),
        });
    }
    Ok(f)
}

fn open_error(path: &Path, e: io::Error) -> Error {
    if e.raw_os_error() == Some(libc::ELOOP) {
        return Error::Incompatible {
            path: path.to_owned(),
            reason: "the path is a symbolic link; refusing to follow it (another local user \
                     may have planted it). Remove it or choose another `storage` path"
                .into(),
        };
    }
    Error::io(format!("opening session store file {}", path.display()), e)
}

pub(crate) fn fstat(path: &Path, file: &File) -> Result<libc::stat, Error> {
    // SAFETY: `stat` is plain old data; all-zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: the descriptor is valid for the life of `file`; `st` is a valid out pointer.
    if unsafe { libc::fstat(file.as_raw_fd(), &mut st) } != 0 {
        return Err(Error::io(
            format!("fstat of {}", path.display()),
            io::Error::last_os_error(),
        ));
    }
    Ok(st)
}

fn check_file(path: &Path, file: &File) -> Result<(), Error> {
    let st = fstat(path, file)?;
    let refuse = |reason: String| Error::Incompatible {
        path: path.to_owned(),
        reason,
    };
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(refuse(
            "not a regular file; choose a `storage` path that is a plain file".into(),
        ));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
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
    if st.st_mode & 0o022 != 0 {
        return Err(refuse(format!(
            "mode {:o} lets group or others write it; run `chmod go-w` on it or remove it",
            st.st_mode & 0o7777
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

/// Sets the file's length.
pub(crate) fn set_len(path: &Path, file: &File, len: u64) -> Result<(), Error> {
    file.set_len(len)
        .map_err(|e| Error::io(format!("resizing {} to {len} bytes", path.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn creates_with_exact_mode_despite_umask() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let o = open_store_file(&p, 0o600).unwrap();
        assert!(o.created);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let again = open_store_file(&p, 0o600).unwrap();
        assert!(!again.created);
    }

    #[test]
    fn refuses_symlink_directory_and_group_writable() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"").unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_store_file(&link, 0o600).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");

        let e = open_store_file(dir.path(), 0o600).unwrap_err();
        assert!(
            matches!(e, Error::Io { .. } | Error::Incompatible { .. }),
            "{e}"
        );

        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = open_store_file(&target, 0o600).unwrap_err();
        assert!(e.to_string().contains("chmod go-w"), "{e}");
    }

    /// Regression (audit #6): a file with a second hard link was accepted.
    #[test]
    fn refuses_a_file_with_another_hard_link() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        drop(open_store_file(&p, 0o600).unwrap());
        let other = dir.path().join("other-name");
        std::fs::hard_link(&p, &other).unwrap();
        for path in [&p, &other] {
            let e = open_store_file(path, 0o600).unwrap_err();
            assert!(
                matches!(e, Error::Incompatible { .. }) && e.to_string().contains("2 hard links"),
                "{e}"
            );
        }
        std::fs::remove_file(&other).unwrap();
        open_store_file(&p, 0o600).unwrap();
    }
}

/// The store's descriptor, reopened after `fork` so that parent and child hold separate
/// open file descriptions (OFD locks of a shared description would not exclude them).
#[derive(Debug)]
pub(crate) struct SharedFd {
    path: std::path::PathBuf,
    /// Every descriptor opened so far; the last is current. Kept open for the store's
    /// life: closing one would not drop OFD locks, but another thread may still use it.
    files: std::sync::Mutex<Vec<File>>,
    current: std::sync::atomic::AtomicI32,
    generation: std::sync::atomic::AtomicU64,
}

impl SharedFd {
    /// Fails if fork detection cannot be installed.
    pub(crate) fn new(path: &Path, file: File) -> Result<SharedFd, Error> {
        let fd = file.as_raw_fd();
        let generation = super::fork::generation()
            .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        Ok(SharedFd {
            path: path.to_owned(),
            files: std::sync::Mutex::new(vec![file]),
            current: std::sync::atomic::AtomicI32::new(fd),
            generation: std::sync::atomic::AtomicU64::new(generation),
        })
    }

    /// The descriptor to lock with in this process.
    #[inline]
    pub(crate) fn get(&self) -> Result<std::os::fd::RawFd, Error> {
        use std::sync::atomic::Ordering::{Acquire, Release};
        let g = super::fork::current();
        // Acquire: pairs with the Release stores below, so `current` is the new fd.
        if self.generation.load(Acquire) == g {
            return Ok(self.current.load(Acquire));
        }
        let mut files = self
            .files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.generation.load(Acquire) != g {
            let f = reopen_same(&self.path, files.last().expect("at least one file"))?;
            self.current.store(f.as_raw_fd(), Release);
            files.push(f);
            self.generation.store(g, Release);
        }
        Ok(self.current.load(Acquire))
    }
}
