//! Capacity with the default geometry: no live entry is lost below 80 % fill with
//! 100-byte values nor below 60 % with 4 KiB values (fill measured as the Perl figures
//! were: items x (key + value + 24) / cache_size, random 37-byte keys). The Perl original
//! loses live items from 60 % and 50 %. Prints the curve (`--nocapture`); the example
//! `capacity` runs many files.

#[path = "support/fill.rs"]
mod fill;

use fill::trial;

#[test]
fn no_live_loss_below_80_percent_with_100_byte_values() {
    let (first, curve) = trial(100, 0x1234_5678, 0.9);
    println!(
        "100 B: first live loss at {:.1} %; curve {curve:?}",
        first * 100.0
    );
    assert!(
        first >= 0.80,
        "first live loss at {:.1} % fill",
        first * 100.0
    );
}

#[test]
fn no_live_loss_below_60_percent_with_4k_values() {
    let (first, curve) = trial(4096, 0x8765_4321, 0.9);
    println!(
        "4 KiB: first live loss at {:.1} %; curve {curve:?}",
        first * 100.0
    );
    assert!(
        first >= 0.60,
        "first live loss at {:.1} % fill",
        first * 100.0
    );
}
