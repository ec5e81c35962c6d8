//! What a session cycle on SQLite costs below PHP, one process, on the directory given (tmpfs for the
//! floor): the bare statements of a cycle on the engine's own schema, then the engine's cycle through
//! the `Store` contract with locking off and on. `bench/floor.sh` prints it next to PHP's own files
//! handler's whole cycle (`bench/cycle.php`), which is the tmpfs target of issue 10.
//!
//!   cargo run --release --example sqlite_floor -- DIR [CYCLES] [BYTES] [STEP]
//!
//! Prints one line per step: `name µs-per-cycle`, each the median of 5 passes of CYCLES cycles over 100
//! sessions of BYTES bytes. STEP (a part of a step's name) runs only the steps it names, for a profile.
//! - `statements`: `SELECT data, version … WHERE id = ?` (the read, autocommit), then `BEGIN IMMEDIATE;
//!   UPDATE sessions SET data, updated_at, version … WHERE id = ?; COMMIT` (the write), as cached
//!   statements through rusqlite, in WAL mode with synchronous=NORMAL: the least any SQLite store
//!   can do for one read and one durable-in-order write of a session.
//! - `engine, locking off`: `Store::load` then `Store::save` (`Expect::Version`) of the engine.
//! - `engine, locking on`: `Store::lock_and_load` then `Store::save` under the lock (its release).
use std::path::Path;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use session_proxy::id::SessionId;
use session_proxy::lock::Token;
use session_proxy::store::sqlite::{SqliteOptions, SqliteStore, GC_BUCKET_SCHEMA, SCHEMA};
use session_proxy::store::{Acquire, Expect, Expiry, Store, Written};

/// One measured step: its name, and the µs per cycle it takes on a database at the path.
type Step<'a> = (&'a str, &'a dyn Fn(&Path) -> f64);

const LIFE: Expiry = Expiry::new(Duration::from_secs(1440));

fn ids() -> Vec<SessionId> {
    (0..100).map(|i| SessionId::parse(format!("floor{i:026}").as_bytes()).expect("a valid id")).collect()
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("after 1970").as_secs_f64()
}

/// Median µs per cycle of 5 passes of `cycles` calls of `cycle(i)`.
fn median_us(cycles: usize, mut cycle: impl FnMut(usize)) -> f64 {
    (0..cycles / 10).for_each(&mut cycle);
    let mut passes: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            (0..cycles).for_each(&mut cycle);
            t.elapsed().as_secs_f64() * 1e6 / cycles as f64
        })
        .collect();
    passes.sort_by(f64::total_cmp);
    passes[2]
}

fn statements(path: &Path, cycles: usize, data: &[u8]) -> f64 {
    let conn = Connection::open(path).expect("open");
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).expect("WAL");
    conn.execute_batch("PRAGMA synchronous=NORMAL").expect("synchronous");
    conn.execute_batch(SCHEMA).and_then(|()| conn.execute_batch(GC_BUCKET_SCHEMA)).expect("schema");
    let ids = ids();
    for id in &ids {
        conn.execute(
            "INSERT OR REPLACE INTO sessions (id, data, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)",
            params![id.as_str(), data, now()],
        )
        .expect("insert");
    }
    median_us(cycles, |i| {
        let id = ids[i % ids.len()].as_str();
        let (_, version): (Vec<u8>, i64) = conn
            .prepare_cached("SELECT data, version FROM sessions WHERE id = ?1 AND updated_at >= ?2")
            .and_then(|mut st| st.query_row(params![id, now() - 1440.0], |r| Ok((r.get(0)?, r.get(1)?))))
            .expect("read");
        conn.prepare_cached("BEGIN IMMEDIATE").and_then(|mut st| st.execute([])).expect("begin");
        conn.prepare_cached("UPDATE sessions SET data = ?2, updated_at = ?3, version = ?4 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id, data, now(), version + 1]))
            .expect("update");
        conn.prepare_cached("COMMIT").and_then(|mut st| st.execute([])).expect("commit");
    })
}

fn engine(path: &Path, cycles: usize, data: &[u8], locking: bool) -> f64 {
    let mut s = SqliteStore::open(&SqliteOptions::at(path.to_path_buf())).expect("open");
    let ids = ids();
    for id in &ids {
        assert!(matches!(s.save(id, data, Expect::Any, None, LIFE), Ok(Written::Done(_))));
    }
    median_us(cycles, |i| {
        let id = &ids[i % ids.len()];
        let written = if locking {
            let owner = Token::new();
            let Ok(Acquire::Locked(Some(read))) = s.lock_and_load(id, &owner, Duration::from_secs(30), LIFE) else {
                panic!("lock_and_load")
            };
            s.save(id, data, Expect::Held(Some(read.version)), Some(&owner), LIFE)
        } else {
            let read = s.load(id, LIFE).expect("load").expect("stored");
            s.save(id, data, Expect::Version(read.version), None, LIFE)
        };
        assert!(matches!(written, Ok(Written::Done(_))), "{written:?}");
    })
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).map(String::as_str).unwrap_or("/dev/shm"));
    let cycles: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(20000);
    let bytes: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(200);
    let data = vec![b'x'; bytes];
    let db = |name: &str| dir.join(format!("sqlite-floor-{}-{name}.sqlite", std::process::id()));
    let steps: [Step; 3] = [
        ("statements", &|p| statements(p, cycles, &data)),
        ("engine, locking off", &|p| engine(p, cycles, &data, false)),
        ("engine, locking on", &|p| engine(p, cycles, &data, true)),
    ];
    let only = args.get(4).map(String::as_str).unwrap_or("");
    for (name, step) in steps.into_iter().filter(|(name, _)| name.contains(only)) {
        let path = db(&name.replace([',', ' '], ""));
        let us = step(&path);
        println!("{name} {us:.2}");
        for suffix in ["", "-wal", "-shm", "-locks"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }
}
