//! Which lock keeps writers of a page apart, chosen when the file is created and recorded
//! in its header (`docs/FORMAT.md`, "Lock kinds").

/// The lock kind of a store file: how writers of one page exclude each other across
/// threads and processes. Chosen when the file is initialised
/// ([`FastMmapBuilder::lock_kind`](crate::FastMmapBuilder::lock_kind)) and recorded in
/// its header, so every process locks a file the same way; opening a file with another
/// kind than its own is an [`Incompatible`](store_api::Error::Incompatible) error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LockKind {
    /// Per-page open-file-description `fcntl` byte-range locks, plus an in-process lock
    /// for the threads of a process (the default). Two system calls per write; works in
    /// any set of processes that share the file, including containers of separate PID
    /// namespaces.
    #[default]
    Fcntl,
    /// A robust, process-shared mutex per page (glibc's `pthread_mutex_t` with
    /// `PTHREAD_MUTEX_ROBUST`, as LMDB's writer lock), in a lock table after the pages: no
    /// system call when uncontended, a futex wait when contended; a holder that dies is
    /// detected by the kernel and its page repaired by the next writer. Linux with glibc
    /// only. All processes using the file must be in one PID namespace (thread ids name
    /// the owner); one in another namespace is refused while the file is in use.
    ///
    /// It trusts every process that can write the file: glibc keeps a held mutex's
    /// robust-list pointers in the file, so bytes of it overwritten by another process can
    /// corrupt the holder's memory (`docs/FORMAT.md`, "Lock kinds"). The store only opens
    /// files no group or other user may write.
    Futex,
}

impl LockKind {
    /// The value in the file header.
    pub(crate) fn to_header(self) -> u32 {
        match self {
            LockKind::Fcntl => 0,
            LockKind::Futex => 1,
        }
    }

    /// The kind a header value names, if any.
    pub(crate) fn from_header(v: u32) -> Option<LockKind> {
        match v {
            0 => Some(LockKind::Fcntl),
            1 => Some(LockKind::Futex),
            _ => None,
        }
    }

    /// The kind's name, as the builder, the runner and the tools spell it.
    pub fn name(self) -> &'static str {
        match self {
            LockKind::Fcntl => "fcntl",
            LockKind::Futex => "futex",
        }
    }
}

impl std::fmt::Display for LockKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for LockKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fcntl" => Ok(LockKind::Fcntl),
            "futex" => Ok(LockKind::Futex),
            other => Err(format!(
                "unknown lock kind {other:?}: the kinds are \"fcntl\" and \"futex\""
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::LockKind;

    #[test]
    fn kinds_round_trip_through_the_header_and_their_names() {
        for k in [LockKind::Fcntl, LockKind::Futex] {
            assert_eq!(LockKind::from_header(k.to_header()), Some(k));
            assert_eq!(k.name().parse::<LockKind>(), Ok(k));
        }
        assert_eq!(LockKind::from_header(2), None);
        assert!("flock".parse::<LockKind>().unwrap_err().contains("fcntl"));
        assert_eq!(LockKind::default(), LockKind::Fcntl);
    }
}
