//! What a bare OFD lock + unlock pair costs through glibc's `fcntl` and through the raw
//! system call (the store's own `bench::fcntl_lock_unlock`), first in a single-threaded
//! process, then after a second thread has been started (glibc then runs `F_OFD_SETLKW`
//! through its thread-cancellation wrapper for the rest of the process's life).
//!
//! `cargo run --release -p store-fastmmap --example fcntl_cost`
#![allow(unsafe_code)]

use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::Instant;

fn flock(kind: libc::c_int) -> libc::flock {
    // SAFETY: `flock` is plain old data; all-zero is valid (and l_pid must be 0 for OFD).
    let mut fl: libc::flock = unsafe { std::mem::zeroed() };
    fl.l_type = kind as libc::c_short;
    fl.l_whence = libc::SEEK_SET as libc::c_short;
    fl.l_start = 4096;
    fl.l_len = 4096;
    fl
}

fn main() {
    let dir = tempfile::tempdir().expect("tmp");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.path().join("lock"))
        .expect("open");
    file.set_len(1 << 16).expect("set_len");
    let fd: RawFd = file.as_raw_fd();
    let (wr, un) = (flock(libc::F_WRLCK), flock(libc::F_UNLCK));
    let via_libc = || {
        // SAFETY: valid descriptor and flock values.
        unsafe {
            assert_eq!(libc::fcntl(fd, libc::F_OFD_SETLKW, &wr), 0);
            assert_eq!(libc::fcntl(fd, libc::F_OFD_SETLK, &un), 0);
        }
    };
    // The store's own calls.
    let raw = || {
        store_fastmmap::bench::fcntl_lock_unlock(file.as_fd(), 4096, 4096).expect("raw pair");
    };
    let time = |f: &dyn Fn()| {
        let t = Instant::now();
        for _ in 0..200_000 {
            f();
        }
        t.elapsed().as_nanos() as f64 / 200_000.0
    };
    for threads in ["one thread", "after a second thread started"] {
        if threads != "one thread" {
            std::thread::spawn(|| {}).join().expect("thread");
        }
        // Alternating rounds; the medians.
        let (mut a, mut b): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            a.push(time(&via_libc));
            b.push(time(&raw));
        }
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        println!(
            "{threads:<32} glibc fcntl pair {:>5.0} ns, raw syscall pair {:>5.0} ns",
            a[4], b[4]
        );
    }
}
