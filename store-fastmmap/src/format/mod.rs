//! The file format (documented in `docs/FORMAT.md`): the file header, the page layout,
//! the record layout, the keyed hash and the record checksum (whose values are part of
//! the format), and the bounds-checked atomic views through which every byte of the
//! mapping is read and written. Changing the layout is a change to this folder alone.

pub(crate) mod checksum;
pub(crate) mod geometry;
pub(crate) mod hash;
pub(crate) mod header;
pub(crate) mod page;
pub(crate) mod record;
pub(crate) mod region;
pub(crate) mod xxh3;

/// Rounds `n` up to a multiple of 8.
#[inline]
pub(crate) const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Folds `f` over the 8-byte little-endian words of `bytes`: `f(acc, offset, word)`, the
/// last word zero-padded, built without a call to `memcpy`: from the last 8 bytes shifted
/// down where there are 8, else byte by byte.
#[inline(always)]
pub(crate) fn fold_words<T>(bytes: &[u8], init: T, mut f: impl FnMut(T, usize, u64) -> T) -> T {
    let (words, rest) = bytes.as_chunks::<8>();
    let mut acc = init;
    for (i, w) in words.iter().enumerate() {
        acc = f(acc, 8 * i, u64::from_le_bytes(*w));
    }
    if !rest.is_empty() {
        let w = match bytes.last_chunk::<8>() {
            Some(last) => u64::from_le_bytes(*last) >> (8 * (8 - rest.len())),
            None => rest
                .iter()
                .rev()
                .fold(0u64, |w, &b| (w << 8) | u64::from(b)),
        };
        acc = f(acc, 8 * words.len(), w);
    }
    acc
}

#[cfg(test)]
mod tests {
    #[test]
    fn words_are_little_endian_and_the_last_one_zero_padded() {
        for n in 0..40usize {
            let bytes: Vec<u8> = (0..n).map(|i| (i * 29 + 3) as u8).collect();
            let mut padded = bytes.clone();
            padded.resize(super::align8(n), 0);
            let seen = super::fold_words(&bytes, Vec::new(), |mut v, o, w| {
                v.push((o, w));
                v
            });
            let want: Vec<(usize, u64)> = padded
                .chunks(8)
                .enumerate()
                .map(|(i, c)| (8 * i, u64::from_le_bytes(c.try_into().unwrap())))
                .collect();
            assert_eq!(seen, want, "{n} bytes");
        }
    }
}
