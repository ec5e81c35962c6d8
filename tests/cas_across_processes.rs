//! The CAS race across processes, for the local engines (SQLite and files): issue 11's "an
//! absent-expectation write loses to a concurrent create" and "a stale-version write is refused", made
//! by separate processes. The conformance suite races threads of one process, which a process-wide
//! mutex would pass (the transitional adapter's did); here `CHILDREN` processes — this test binary run
//! again, each running the same test, told apart by the environment — write one session at the same
//! instant: creates that each expect it absent, then writes that each expect the version the parent
//! wrote. Exactly one may win each race, and every loser is told the winner's data.
//!
//! An integration test (a binary of its own), not a unit test: a fork shares every open file of the
//! process until its exec, and the unit tests release kernel locks by closing descriptors and time
//! how soon a waiter wakes; children forked among them would hold those locks for a moment.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use session_proxy::id::SessionId;
use session_proxy::store::{Expect, Expiry, Store, Version, Written};

const CHILDREN: usize = 6;
const LIFE: Duration = Duration::from_secs(3600);
/// How long a child waits for the others to be ready, and the parent for the children: far beyond a
/// test binary's start (tens of ms) on a loaded machine, so only a hung child reaches it.
const BOUND: Duration = Duration::from_secs(60);

/// A directory of its own under the temp dir, removed at the end.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let p = std::env::temp_dir().join(format!("sp-xproc-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn id(s: &str) -> SessionId {
    SessionId::parse(s.as_bytes()).unwrap()
}

/// Opens a store by its DSN (`session.save_path`), as PHP would.
fn open_dsn(dsn: &str) -> Box<dyn Store> {
    let engine = session_proxy::dsn::parse(dsn, &std::env::temp_dir()).unwrap();
    session_proxy::store::connect(&engine).unwrap()
}

#[test]
fn sqlite_cas_holds_across_processes() {
    let dir = TempDir::new("sqlite");
    let db = dir.path().join("s.sqlite");
    race("sqlite_cas_holds_across_processes", &format!("sqlite://{}", db.display()));
}

/// Each child writes without the session lock, so each takes the file's flock for its check and write.
#[test]
fn files_cas_holds_across_processes() {
    let dir = TempDir::new("files");
    race("files_cas_holds_across_processes", &format!("files://{}", dir.path().display()));
}

/// The test `this_test`: in the parent, races children that run it again on the store `dsn`; in a
/// child (`SP_RACE_GATE` set), takes part in one race on the parent's store.
fn race(this_test: &str, dsn: &str) {
    if std::env::var_os("SP_RACE_GATE").is_some() {
        return child();
    }
    let mut check = open_dsn(dsn);
    for round in 0..3 {
        let s = id(&format!("xproc-absent-{round}"));
        let (winner, _) = run(this_test, dsn, &s, Expect::Absent);
        assert_eq!(check.load(&s, Expiry::new(LIFE)).unwrap().map(|l| l.data), Some(winner), "round {round}: the winner's data is stored");
        let s = id(&format!("xproc-version-{round}"));
        let Written::Done(v0) = check.save(&s, b"base", Expect::Any, None, Expiry::new(LIFE)).unwrap() else { panic!("base write") };
        let (winner, v1) = run(this_test, dsn, &s, Expect::Version(v0));
        assert_ne!(v1, v0);
        assert_eq!(check.load(&s, Expiry::new(LIFE)).unwrap().map(|l| (l.data, l.version)), Some((winner, v1)), "round {round}");
    }
}

/// One race: the winner's data and the version it reported.
fn run(child_test: &str, dsn: &str, s: &SessionId, expect: Expect) -> (Vec<u8>, Version) {
    let gate = TempDir::new("xproc-gate");
    let exe = std::env::current_exe().unwrap();
    let expect_s = match expect {
        Expect::Absent => "absent".to_string(),
        Expect::Version(v) => v.get().to_string(),
        Expect::Any | Expect::Held(_) => unreachable!("a race of last-writer-wins writes has no loser"),
    };
    let children: Vec<_> = (0..CHILDREN)
        .map(|i| {
            Command::new(&exe)
                .args([child_test, "--exact", "--nocapture", "--test-threads=1"])
                .env("SP_RACE_DSN", dsn)
                .env("SP_RACE_GATE", gate.path())
                .env("SP_RACE_INDEX", i.to_string())
                .env("SP_RACE_ID", s.as_str())
                .env("SP_RACE_EXPECT", &expect_s)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // All ready (store opened), then go: the writes start within a poll (50 µs) of each other.
    let deadline = Instant::now() + BOUND;
    while (0..CHILDREN).any(|i| !gate.path().join(format!("ready{i}")).exists()) {
        assert!(Instant::now() < deadline, "children not ready after {BOUND:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::write(gate.path().join("go"), b"").unwrap();
    let mut results = Vec::new();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "child failed: {text}\n{}", String::from_utf8_lossy(&out.stderr));
        let line = text.lines().find_map(|l| l.split_once("RACE ").map(|(_, r)| r)).unwrap_or_else(|| panic!("no result: {text}")).to_string();
        results.push(line);
    }
    let winners: Vec<&String> = results.iter().filter(|r| r.starts_with("done ")).collect();
    assert_eq!(winners.len(), 1, "{expect:?}: exactly one of {CHILDREN} processes wins: {results:?}");
    let mut w = winners[0].splitn(3, ' ').skip(1);
    let (version, data) = (w.next().unwrap().parse::<u128>().unwrap(), w.next().unwrap().to_string());
    for r in &results {
        assert!(r.starts_with("done ") || *r == format!("conflict {data}"), "{expect:?}: a loser is told the winner's data: {results:?}");
    }
    (data.into_bytes(), Version::new(version))
}

/// Run in a child, on the store `SP_RACE_DSN`.
fn child() {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} not set: run by race()"));
    let (gate, i) = (std::path::PathBuf::from(var("SP_RACE_GATE")), var("SP_RACE_INDEX"));
    let s = id(&var("SP_RACE_ID"));
    let expect = match var("SP_RACE_EXPECT").as_str() {
        "absent" => Expect::Absent,
        v => Expect::Version(Version::new(v.parse().unwrap())),
    };
    let mut st = open_dsn(&var("SP_RACE_DSN"));
    std::fs::write(gate.join(format!("ready{i}")), b"").unwrap();
    let deadline = Instant::now() + BOUND;
    while !gate.join("go").exists() {
        assert!(Instant::now() < deadline, "no go after {BOUND:?}");
        std::thread::sleep(Duration::from_micros(50));
    }
    let mine = format!("child-{i}");
    match st.save(&s, mine.as_bytes(), expect, None, Expiry::new(LIFE)).unwrap() {
        Written::Done(v) => println!("RACE done {} {mine}", v.get()),
        Written::Conflict(Some(now)) => println!("RACE conflict {}", String::from_utf8_lossy(&now.data)),
        other => println!("RACE unexpected {other:?}"),
    }
}
