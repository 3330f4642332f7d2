//! Failpoints for crash tests (test-only).
//!
//! Setting the environment variable `FASTMMAP_FAILPOINT=<name>` **in a test worker
//! process** makes every writer of that process stop at the named step, with the page
//! lock held and the page mid-write: it prints `FAILPOINT <name>` on stderr and sleeps
//! until killed. Tests then `SIGKILL` it to reproduce a crash at that exact step. The
//! variable is read once, when a store is opened; never set it in production.

use std::io::Write as _;

/// A step of a write where a test may stop the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failpoint {
    /// The seqlock counter is odd, nothing else written.
    PutAfterBegin,
    /// The new record is in the free gap, not yet linked from the slot table.
    PutAfterRecord,
    /// The slot points at the new record; the page header is not updated yet.
    PutAfterLink,
    /// A compaction has moved its first record (slot switched), not the others.
    RebuildMidData,
    /// A delete has moved one slot of its backward shift.
    DeleteMidShift,
    /// A compaction is moving a record onto a range overlapping its old one, halfway
    /// through the words (the move journal is what recovers it).
    CompactMidMove,
    /// A record being written (over a same-size old record of its key, or into free
    /// space) has its new header and key but not yet its value.
    MidRecord,
}

impl Failpoint {
    /// Every failpoint.
    pub const ALL: [Failpoint; 7] = [
        Failpoint::PutAfterBegin,
        Failpoint::PutAfterRecord,
        Failpoint::PutAfterLink,
        Failpoint::RebuildMidData,
        Failpoint::DeleteMidShift,
        Failpoint::CompactMidMove,
        Failpoint::MidRecord,
    ];

    /// The name used in `FASTMMAP_FAILPOINT`.
    pub fn name(self) -> &'static str {
        match self {
            Failpoint::PutAfterBegin => "put-after-begin",
            Failpoint::PutAfterRecord => "put-after-record",
            Failpoint::PutAfterLink => "put-after-link",
            Failpoint::RebuildMidData => "rebuild-mid-data",
            Failpoint::DeleteMidShift => "delete-mid-shift",
            Failpoint::CompactMidMove => "compact-mid-move",
            Failpoint::MidRecord => "mid-record",
        }
    }

    /// Parses a name.
    pub fn from_name(s: &str) -> Option<Failpoint> {
        Failpoint::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// The failpoint armed in this store, if any.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Armed(Option<Failpoint>);

impl Armed {
    /// Reads `FASTMMAP_FAILPOINT`.
    pub(crate) fn from_env() -> Armed {
        Armed(
            std::env::var("FASTMMAP_FAILPOINT")
                .ok()
                .and_then(|s| Failpoint::from_name(&s)),
        )
    }

    /// Stops this thread forever if `fp` is armed.
    #[inline]
    pub(crate) fn hit(&self, fp: Failpoint) {
        if self.0 == Some(fp) {
            let mut e = std::io::stderr();
            let _ = writeln!(e, "FAILPOINT {}", fp.name());
            let _ = e.flush();
            loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in Failpoint::ALL {
            assert_eq!(Failpoint::from_name(f.name()), Some(f));
        }
        assert_eq!(Failpoint::from_name("nope"), None);
    }
}
