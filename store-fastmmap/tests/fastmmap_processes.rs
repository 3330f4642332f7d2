//! Several real processes (the `fastmmap-worker` binary, never a fork of the test
//! process) on one file.

#[macro_use]
mod support;

use store_fastmmap::LockKind;

use store_api::{Key, SessionStore, SessionStoreExt};
use support::{Fixture, run_worker, worker};

fn spawn_all(cmds: &[Vec<String>]) -> Vec<String> {
    let children: Vec<_> = cmds
        .iter()
        .map(|a| {
            worker()
                .args(a)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .zip(cmds)
        .map(|(c, a)| {
            let out = c.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                out.status.success(),
                "worker {a:?} failed: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            );
            stdout
        })
        .collect()
}

fn args(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn atomic_updates_from_several_processes_end_at_p_times_m(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(4);
    let p = fx.path();
    let p = p.to_str().unwrap();
    const P: usize = 3;
    const M: u64 = 300;
    let cmds: Vec<_> = (0..P)
        .flat_map(|_| {
            [
                args(&["incr", p, "counter:a", &M.to_string()]),
                args(&["incr", p, "counter:b", &M.to_string()]),
            ]
        })
        .collect();
    spawn_all(&cmds);
    for k in ["counter:a", "counter:b"] {
        let v = s.get_value(&Key::new(k).unwrap()).unwrap().unwrap();
        assert_eq!(
            String::from_utf8(v).unwrap(),
            (P as u64 * M).to_string(),
            "{k}"
        );
    }
}

fn readers_beside_writers_never_see_a_torn_or_wrong_value(kind: LockKind) {
    let fx = Fixture::of(kind);
    // Two pages only, so readers and writers share pages all the time.
    let _s = fx
        .builder()
        .page_size(16 << 10)
        .num_pages(2)
        .open()
        .unwrap();
    let p = fx.path();
    let p = p.to_str().unwrap();
    let mut cmds = vec![
        args(&["write", p, "rw", "12", "4000", "200"]),
        args(&["write", p, "rw", "12", "4000", "900"]),
    ];
    for _ in 0..2 {
        cmds.push(args(&["read", p, "rw", "12", "40000"]));
    }
    let outs = spawn_all(&cmds);
    for o in &outs[2..] {
        let hits: u64 = o.trim().rsplit(' ').next().unwrap().parse().unwrap();
        assert!(hits > 0, "readers saw data: {o}");
    }
}

fn simultaneous_first_open_initialises_exactly_once(kind: LockKind) {
    for round in 0..3 {
        let fx = Fixture::of(kind);
        let p = fx.path();
        let p = p.to_str().unwrap();
        let cmds: Vec<_> = (0..6)
            .map(|i| {
                args(&[
                    "open",
                    p,
                    "4096",
                    "8",
                    &format!("first:{round}:{i}"),
                    kind.name(),
                ])
            })
            .collect();
        spawn_all(&cmds);
        // Had two processes initialised, the first ones' keys would be gone.
        let s = fx.builder().open().unwrap();
        for i in 0..6 {
            let k = Key::new(format!("first:{round}:{i}")).unwrap();
            assert!(s.get(&k).unwrap().is_some(), "{k} lost: initialised twice");
        }
    }
}

fn a_child_forked_after_open_works_and_excludes_its_parent(kind: LockKind) {
    let fx = Fixture::of(kind);
    let s = fx.small(2);
    let p = fx.path();
    run_worker(&["fork-incr", p.to_str().unwrap(), "counter:fork", "2000"]);
    let v = s
        .get_value(&Key::new("counter:fork").unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(String::from_utf8(v).unwrap(), "4001");
}

fn data_written_by_one_process_is_read_by_another(kind: LockKind) {
    let fx = Fixture::of(kind);
    drop(
        fx.builder()
            .page_size(64 << 10)
            .num_pages(2)
            .open()
            .unwrap(),
    );
    let p = fx.path();
    let p = p.to_str().unwrap();
    run_worker(&["put", p, "x", "50", "300"]);
    let out = run_worker(&["read", p, "x", "50", "50"]);
    assert_eq!(out.trim(), "ok hits 50");
}

both_kinds!(
    atomic_updates_from_several_processes_end_at_p_times_m,
    readers_beside_writers_never_see_a_torn_or_wrong_value,
    simultaneous_first_open_initialises_exactly_once,
    a_child_forked_after_open_works_and_excludes_its_parent,
    data_written_by_one_process_is_read_by_another,
);
