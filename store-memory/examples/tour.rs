//! A walk through the session-store contract on the in-process engine: prints each step.
//!
//! Run with `cargo run -p store-memory --example tour`.

use std::sync::Arc;
use std::time::Duration;

use store_api::{
    Error, EvictionPolicy, Expiry, Key, ManualClock, SessionStore, SessionStoreExt, Typed,
    TypedUpdate, UpdateAction, WriteMode,
};
use store_memory::MemoryStore;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Session {
    user: String,
    visits: u32,
}

fn main() -> Result<(), Error> {
    let clock = ManualClock::default();
    let store = MemoryStore::builder()
        .clock(Arc::new(clock.clone()))
        .capacity(600)
        .policy(EvictionPolicy::Lru)
        .build()?;
    println!("opened {:?}", store.capabilities());

    let id = Key::new("session:8f14e45fceea167a")?;
    let w = store.put(
        &id,
        b"user=ada",
        Expiry::After(Duration::from_secs(30)),
        WriteMode::CreateOnly,
    )?;
    println!("created {id} at {} (evicted {:?})", w.version, w.evicted);

    match store.create(&id, b"user=eve", Expiry::Never) {
        Err(e @ Error::AlreadyExists { .. }) => println!("second create refused: {e}"),
        other => println!("UNEXPECTED: {other:?}"),
    }

    clock.advance(Duration::from_secs(20));
    store.touch(&id, Expiry::After(Duration::from_secs(30)))?;
    println!(
        "touched {id}: now expires at {:?}",
        store.get(&id)?.and_then(|e| e.expires_at)
    );

    let typed = Typed::new(&store);
    let cart = Key::new("session:cart")?;
    for _ in 0..3 {
        typed.update::<Session, _>(&cart, |s| {
            let mut s = s.unwrap_or(Session {
                user: "ada".into(),
                visits: 0,
            });
            s.visits += 1;
            TypedUpdate::Set(s, Expiry::Default)
        })?;
    }
    println!(
        "typed update x3: {:?}",
        typed.get::<Session>(&cart)?.map(|(s, _)| s)
    );

    store.update(&id, &mut |e| match e {
        Some(_) => UpdateAction::Delete,
        None => UpdateAction::Keep,
    })?;
    println!("logout: {id} live? {}", store.exists(&id)?);
    match store.replace(&id, b"late write", Expiry::Never) {
        Err(e @ Error::NotFound { .. }) => println!("late write after logout refused: {e}"),
        other => println!("UNEXPECTED: {other:?}"),
    }

    // The store holds 600 bytes: new sessions push out the least recently used ones,
    // and every write says how many it evicted.
    for i in 0..4 {
        let k = Key::new(format!("session:filler{i}"))?;
        let w = store.put(&k, &[b'x'; 80], Expiry::Never, WriteMode::Upsert)?;
        println!("wrote {k}: evicted {:?}", w.evicted);
    }

    clock.advance(Duration::from_secs(3600));
    println!("purged {} expired entries", store.purge_expired()?);
    println!("stats {:?}", store.stats()?);
    Ok(())
}
