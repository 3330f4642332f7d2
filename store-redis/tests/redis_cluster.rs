//! store-redis on a real Redis Cluster (three primaries, three replicas, started by
//! `.ci/redis-cluster` through `test_server::RedisCluster`): every operation, with the
//! keys spread over every primary, and the calls that visit the whole store (`scan`,
//! `clear`, `stats`) seeing every node's share. The conformance suite runs against a
//! cluster too (`engine-tests/tests/redis_cluster.rs`).

use std::ops::ControlFlow;

use store_api::{Expiry, Key, ScanOptions, SessionStore, SessionStoreExt, WriteMode};
use store_redis::test_server::RedisCluster;

/// Keys on each of the cluster's first three nodes (its primaries when it started).
fn keys_per_primary(cluster: &RedisCluster) -> Vec<u64> {
    cluster
        .seeds()
        .iter()
        .take(3)
        .map(|url| {
            let mut c = redis::Client::open(url.as_str())
                .unwrap()
                .get_connection()
                .unwrap();
            redis::cmd("DBSIZE").query(&mut c).unwrap()
        })
        .collect()
}

fn key(i: u32) -> Key {
    Key::new(format!("session:{i:05}")).unwrap()
}

#[test]
fn every_operation_works_across_the_primaries() {
    let Some(cluster) = RedisCluster::start(module_path!()) else {
        return;
    };
    let s = cluster.store("app:");
    for i in 0..300 {
        s.set(&key(i), format!("v{i}").as_bytes()).unwrap();
    }
    for i in 0..300 {
        assert_eq!(
            s.get_value(&key(i)).unwrap().unwrap(),
            format!("v{i}").into_bytes()
        );
    }
    // The keys are spread: every primary holds some.
    let per_node = keys_per_primary(&cluster);
    assert!(per_node.iter().all(|&n| n > 20), "{per_node:?}");
    // Writes of every mode, versions, update, touch, rotate (across slots), delete.
    let w = s
        .put(&key(1), b"new", Expiry::Never, WriteMode::ReplaceOnly)
        .unwrap();
    assert!(
        s.put(
            &key(1),
            b"x",
            Expiry::Never,
            WriteMode::IfVersion(w.version)
        )
        .is_ok()
    );
    assert!(
        s.put(&key(1), b"x", Expiry::Never, WriteMode::CreateOnly)
            .is_err()
    );
    let n = s
        .update(&key(2), &mut |e| {
            let mut v = e.map(|e| e.value.clone()).unwrap_or_default();
            v.push(b'!');
            store_api::UpdateAction::set(v, Expiry::Never)
        })
        .unwrap();
    assert!(matches!(n, store_api::UpdateOutcome::Written(_)));
    assert_eq!(s.get_value(&key(2)).unwrap().unwrap(), b"v2!");
    assert!(
        s.touch(&key(3), Expiry::After(std::time::Duration::from_secs(60)))
            .unwrap()
    );
    assert!(s.rotate(&key(4), &key(10_004)).unwrap());
    assert_eq!(s.get_value(&key(10_004)).unwrap().unwrap(), b"v4");
    assert!(s.get(&key(4)).unwrap().is_none());
    assert!(s.delete(&key(5)).unwrap());
    // Whole-store calls visit every primary.
    let mut seen = 0;
    let visited = s
        .scan(&ScanOptions::new(), &mut |_| {
            seen += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!((visited, seen), (299, 299));
    let st = s.stats().unwrap();
    assert!(st.entries >= 299, "{st:?}");
    assert_eq!(s.clear().unwrap(), 299);
    assert!(s.get(&key(6)).unwrap().is_none());
    let again = s
        .scan(&ScanOptions::new(), &mut |_| ControlFlow::Continue(()))
        .unwrap();
    assert_eq!(again, 0);
}

/// With a hash-tagged prefix the whole store is in one slot, so `rotate` is one script
/// there too (as on one server): the new id must not be live, the old one is gone.
#[test]
fn a_tagged_prefix_keeps_the_store_in_one_slot_and_rotate_in_one_script() {
    let Some(cluster) = RedisCluster::start(module_path!()) else {
        return;
    };
    let s = cluster.store("{shop}:");
    for i in 0..50 {
        s.set(&key(i), b"v").unwrap();
    }
    assert!(s.rotate(&key(1), &key(1001)).unwrap());
    assert!(s.get(&key(1)).unwrap().is_none());
    assert_eq!(s.get_value(&key(1001)).unwrap().unwrap(), b"v");
    assert!(matches!(
        s.rotate(&key(2), &key(1001)),
        Err(store_api::Error::AlreadyExists { .. })
    ));
    assert_eq!(
        s.get_value(&key(2)).unwrap().unwrap(),
        b"v",
        "left in place"
    );
    assert!(!s.rotate(&key(999), &key(1999)).unwrap(), "absent");
    // One slot: one primary holds every key of the store.
    let holders = keys_per_primary(&cluster)
        .iter()
        .filter(|&&n| n > 0)
        .count();
    assert_eq!(holders, 1);
}
