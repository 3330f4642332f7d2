//! Forked children and the page locks: a child never shares, keeps or inherits its
//! parent's locks (audit 2, findings 2, 9, 10 and 11). Every fork happens in the
//! `fastmmap-worker` binary, never in this multi-threaded test process.

#[macro_use]
mod support;

use store_fastmmap::LockKind;

use std::io::BufRead as _;
use std::time::Duration;

use store_api::{Key, SessionStore, SessionStoreExt};
use store_fastmmap::Failpoint;
use support::{Fixture, key, keys_on_page, run_worker, worker};

/// Runs a worker to completion within `limit`; `Err` with its output if it fails, or
/// kills it and says so if it takes longer.
fn run_within(args: &[&str], limit: Duration) -> Result<String, String> {
    let mut child = worker()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            return if status.success() {
                Ok(text)
            } else {
                Err(text)
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("worker {args:?} still running after {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Regression (audit 2, finding 2): a parent killed mid-write while a child it forked
/// lives. The child kept the parent's open file description (through its descriptor
/// and its mapping), so the OFD lock of the page stayed held until the child exited:
/// every writer of the page blocked. The child must hold nothing of the parent's.
fn a_parent_killed_mid_write_does_not_leave_its_lock_to_a_forked_child(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(2);
    let path = fx.path();
    let p = path.to_str().unwrap();
    let mut parent = worker()
        .args(["fork-hold", p, "30"])
        .env("FASTMMAP_FAILPOINT", Failpoint::PutAfterBegin.name())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = parent.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let mut child_pid = None;
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the worker reached its failpoint");
        if let Some(pid) = line.strip_prefix("child ") {
            child_pid = Some(pid.parse::<i32>().unwrap());
        }
        if line.starts_with("FAILPOINT") {
            break;
        }
    }
    let child_pid = child_pid.expect("the worker printed its child's pid");
    // The parent dies mid-write; its child lives on.
    parent.kill().unwrap();
    parent.wait().unwrap();
    let r = run_within(&["put", p, "hold", "1", "16"], Duration::from_secs(10));
    // SAFETY: kill has no preconditions; the pid is the worker's sleeping child.
    #[allow(unsafe_code)]
    unsafe {
        libc::kill(child_pid, libc::SIGKILL)
    };
    r.expect("a writer of the dead parent's page gets its lock");
    let k = Key::new("hold0").unwrap();
    assert!(s.get(&k).unwrap().is_some());
    assert_eq!(
        s.stats().unwrap().recovered,
        0,
        "the other worker repaired it"
    );
}

/// Regression (audit 2, finding 9): a child made by a raw `clone` (no fork handler
/// runs) kept its parent's description, so parent and child were two writers in one
/// page: increments were lost. The pid change is now detected on the write path.
///
/// The futex kind cannot serve such a child at all (its C library still holds its
/// parent's thread id, and the kernel gave it no robust list): its writes fail with an
/// error saying so, and the parent's all land.
fn a_child_made_without_the_fork_handler_still_excludes_its_parent(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(2);
    let path = fx.path();
    let n = 5_000u64;
    if kind == LockKind::Futex {
        let out = support::worker()
            .args([
                "clone-incr",
                path.to_str().unwrap(),
                "counter",
                &n.to_string(),
            ])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "the child's writes must fail");
        assert!(
            err.contains("cannot own robust locks") && err.contains("fcntl"),
            "{err}"
        );
        let v = s.get_value(&Key::new("counter").unwrap()).unwrap().unwrap();
        assert_eq!(String::from_utf8(v).unwrap(), (n + 1).to_string());
        assert_eq!(s.stats().unwrap().recovered, 0, "no page was torn");
        return;
    }
    run_worker(&[
        "clone-incr",
        path.to_str().unwrap(),
        "counter",
        &n.to_string(),
    ]);
    let v = s.get_value(&Key::new("counter").unwrap()).unwrap().unwrap();
    assert_eq!(
        String::from_utf8(v).unwrap(),
        (2 * n + 1).to_string(),
        "no increment lost"
    );
    assert_eq!(s.stats().unwrap().recovered, 0, "no page was torn");
}

/// Regression (audit 2, finding 10): a fork while another thread held a page's
/// in-process lock left the lock held in the child forever: its writers of that page
/// spun for ever. The child now starts with its locks free.
fn a_fork_while_another_thread_writes_leaves_the_child_free_to_write(kind: LockKind) {
    let fx = Fixture::of(kind);
    drop(fx.small(1));
    let path = fx.path();
    run_within(
        &["fork-busy", path.to_str().unwrap(), "busy", "12"],
        Duration::from_secs(60),
    )
    .unwrap();
}

/// Regression (audit 2, finding 11): a child reopened the file by its path, so a
/// relative `storage` path and a `chdir` after the fork (daemonising) made every write
/// of the child fail.
fn a_child_that_changes_directory_still_writes(kind: LockKind) {
    let fx = Fixture::of(kind);
    drop(fx.small(1));
    let out = worker()
        .args(["fork-chdir", "sessions", "k"])
        .current_dir(fx.dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let s = fx.small(1);
    assert_eq!(
        s.get_value(&Key::new("k").unwrap()).unwrap().as_deref(),
        Some(&b"child"[..])
    );
}

/// Regression (audit 2, finding 9b): a fork inside an `update` closure returned in both
/// processes holding "the" page lock, and both wrote. The child's update now fails, and
/// the parent's applies.
fn a_fork_inside_an_update_closure_writes_only_in_the_parent(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(1);
    let k = key("forked");
    let others = keys_on_page(&s, 0, 5);
    for o in &others {
        s.set(o, o.as_bytes()).unwrap();
    }
    let path = fx.path();
    run_worker(&["update-fork", path.to_str().unwrap(), k.as_str()]);
    assert_eq!(s.get_value(&k).unwrap().as_deref(), Some(&b"parent"[..]));
    for o in &others {
        assert_eq!(s.get_value(o).unwrap().as_deref(), Some(o.as_bytes()));
    }
    assert_eq!(s.stats().unwrap().recovered, 0, "no page was torn");
}

both_kinds!(
    a_parent_killed_mid_write_does_not_leave_its_lock_to_a_forked_child,
    a_child_made_without_the_fork_handler_still_excludes_its_parent,
    a_fork_while_another_thread_writes_leaves_the_child_free_to_write,
    a_child_that_changes_directory_still_writes,
    a_fork_inside_an_update_closure_writes_only_in_the_parent,
);
