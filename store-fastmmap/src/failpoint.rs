//! Failpoints for crash tests, compiled in only with the `failpoints` cargo feature (and
//! in this crate's unit tests).
//!
//! With the feature, setting the environment variable `FASTMMAP_FAILPOINT=<name>` makes
//! every writer of that process stop at the named step, with the page lock held and the
//! page mid-write: it prints `FAILPOINT <name>` on stderr and sleeps until killed. Tests
//! then `SIGKILL` it to reproduce a crash at that exact step. The variable is read once,
//! when a store is opened. Without the feature (every production build) [`Armed`] is an
//! empty type whose `hit` does nothing, so a stray variable cannot stop a writer holding
//! its locks; `Failpoint` is then not public API.

/// A step of a write where a test may stop the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(feature = "failpoints"), allow(unreachable_pub, dead_code))]
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
    /// space, where its key is written first) has the first half of the words of its new
    /// value (of at most 128 bytes; `words / 2` rounded down, at least one, so all of a
    /// value of 8 bytes or less) and not its header: over the old record, a mix of old
    /// and new bytes under the old header.
    MidValue,
    /// A record being written (over a same-size old record of its key, or into free
    /// space) has its new key and value but not yet its header (which holds the
    /// checksum).
    MidRecord,
    /// A record being written has its new version and expiry, not yet its lengths and
    /// checksum (the header's last word).
    MidHeader,
    /// A repair is finishing a journalled move (of a writer killed at
    /// [`Failpoint::CompactMidMove`]) and has copied half of the words it had left.
    RepairMidJournal,
}

#[cfg_attr(not(feature = "failpoints"), allow(unreachable_pub, dead_code))]
impl Failpoint {
    /// Every failpoint.
    pub const ALL: [Failpoint; 10] = [
        Failpoint::PutAfterBegin,
        Failpoint::PutAfterRecord,
        Failpoint::PutAfterLink,
        Failpoint::RebuildMidData,
        Failpoint::DeleteMidShift,
        Failpoint::CompactMidMove,
        Failpoint::MidValue,
        Failpoint::MidRecord,
        Failpoint::MidHeader,
        Failpoint::RepairMidJournal,
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
            Failpoint::MidValue => "mid-value",
            Failpoint::MidRecord => "mid-record",
            Failpoint::MidHeader => "mid-header",
            Failpoint::RepairMidJournal => "repair-mid-journal",
        }
    }

    /// Parses a name.
    pub fn from_name(s: &str) -> Option<Failpoint> {
        Failpoint::ALL.into_iter().find(|f| f.name() == s)
    }
}

/// The failpoint armed in this store, if any.
#[cfg(any(test, feature = "failpoints"))]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Armed(Option<Failpoint>);

/// No failpoint can be armed: the feature is off.
#[cfg(not(any(test, feature = "failpoints")))]
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Armed(());

#[cfg(not(any(test, feature = "failpoints")))]
impl Armed {
    /// Ignores `FASTMMAP_FAILPOINT`: failpoints are not compiled in.
    pub(crate) fn from_env() -> Armed {
        Armed(())
    }

    /// Does nothing.
    #[inline(always)]
    pub(crate) fn hit(&self, _fp: Failpoint) {}
}

#[cfg(any(test, feature = "failpoints"))]
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
            use std::io::Write as _;
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
