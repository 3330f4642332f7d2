//! Which page locks the current thread holds, so that a re-entrant call fails instead of
//! waiting for itself.

/// The page locks the current thread holds, by file: a store call from inside an
/// `update` closure (which holds its page's lock) would wait for itself forever.
pub(super) struct Held;

/// Page locks one thread can hold at once and still be told of a re-entrant call (an
/// `update` closure calling another store's `update`, and so on).
const HELD_FILES: usize = 8;

thread_local! {
    /// The files (device, inode) of the page locks this thread holds, a stack of
    /// `HELD_DEPTH` entries (guards are dropped in the reverse order of their locks).
    static HELD: [std::cell::Cell<(u64, u64)>; HELD_FILES] =
        const { [const { std::cell::Cell::new((0, 0)) }; HELD_FILES] };
    static HELD_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl Held {
    /// Notes a page lock of `file` about to be taken; whether it is on the stack (not
    /// beyond `HELD_FILES`), or `Err` if this thread already holds one of that file's
    /// page locks and `nested` (the second page of a `rotate`, taken in the lock order)
    /// is false.
    #[inline]
    pub(super) fn take(file: (u64, u64), nested: bool) -> std::result::Result<bool, ()> {
        let depth = HELD_DEPTH.with(std::cell::Cell::get);
        HELD.with(|cells| {
            if !nested
                && cells[..depth.min(HELD_FILES)]
                    .iter()
                    .any(|c| c.get() == file)
            {
                return Err(());
            }
            let tracked = depth < HELD_FILES;
            if tracked {
                cells[depth].set(file);
                HELD_DEPTH.with(|d| d.set(depth + 1));
            }
            Ok(tracked)
        })
    }

    /// Takes a page lock of `file` off the stack (one that [`Held::take`] put there).
    #[inline]
    pub(super) fn release(file: (u64, u64)) {
        let depth = HELD_DEPTH.with(std::cell::Cell::get);
        HELD.with(|cells| {
            // Normally the top; any entry of the same file stands for this one.
            if let Some(i) = (0..depth.min(HELD_FILES))
                .rev()
                .find(|&i| cells[i].get() == file)
            {
                cells[i].set(cells[depth - 1].get());
                HELD_DEPTH.with(|d| d.set(depth - 1));
            }
        });
    }
}
