//! The `session-proxy` binary as an operator runs it, against real stores (SQLite, files, and the
//! Redis and Memcached servers scripts/services/*.sh start: run with `make test`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use session_proxy::id::SessionId;
use session_proxy::lock::Token;
use session_proxy::store::{self, Expect, Expiry, Left, Store, Written};

const BIN: &str = env!("CARGO_BIN_EXE_session-proxy");

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("sp-cli-{tag}-{}-{}", std::process::id(), &Token::new().as_str()[..8]));
        std::fs::create_dir_all(&p).unwrap();
        Dir(p)
    }
    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests with `make test` (scripts/services)"))
}

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).stdin(Stdio::null()).output().expect("the binary runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn engine(dsn: &str) -> store::Engine {
    session_proxy::dsn::parse(dsn, Path::new("/tmp")).unwrap()
}

fn open(dsn: &str) -> Box<dyn Store> {
    store::connect(&engine(dsn)).unwrap()
}

/// A fresh store of each kind (its own file, directory or key prefix).
fn fresh(kind: &str, dir: &Path, n: usize) -> String {
    let token = Token::new();
    let tag = &token.as_str()[..10];
    match kind {
        "sqlite" => format!("sqlite://{}/s{n}.sqlite", dir.display()),
        "files" => {
            let d = dir.join(format!("f{n}"));
            std::fs::create_dir_all(&d).unwrap();
            format!("files://{}", d.display())
        }
        "redis" => format!("redis://127.0.0.1:{}/0?prefix=spcli{tag}:", env("SP_REDIS_PORT")),
        "memcached" => format!("memcached://127.0.0.1:{},127.0.0.1:{}?prefix=spc{tag}.", env("SP_MEMCACHED_PORT1"), env("SP_MEMCACHED_PORT2")),
        // A table of its own in the test server's database (scripts/services/pgsql.sh).
        "pgsql" | "pgsql-symfony" => {
            let table = format!("cli_{}_{n}", tag.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
            let schema = if kind == "pgsql-symfony" { "&schema=symfony" } else { "" };
            let (user, pw, port, db) = (env("SP_PG_USER"), env("SP_PG_PASSWORD"), env("SP_PG_PORT"), env("SP_PG_DB"));
            format!("pgsql://{user}:{pw}@127.0.0.1:{port}/{db}?sslmode=disable&table={table}{schema}")
        }
        // A table of its own in the test server's database (scripts/services/mariadb.sh).
        "mysql" | "mysql-symfony" => {
            let table = format!("cli_{}_{n}", tag.to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
            let schema = if kind == "mysql-symfony" { "&schema=symfony" } else { "" };
            let (user, pw, port, db) = (env("SP_MYSQL_USER"), env("SP_MYSQL_PASSWORD"), env("SP_MYSQL_PORT"), env("SP_MYSQL_DB"));
            format!("mysql://{user}:{pw}@127.0.0.1:{port}/{db}?sslmode=disable&table={table}{schema}")
        }
        _ => unreachable!(),
    }
}

fn is_age(dsn: &str) -> bool {
    dsn.starts_with("sqlite:") || dsn.starts_with("files:") || ((dsn.starts_with("pgsql:") || dsn.starts_with("mysql:")) && !dsn.contains("schema=symfony"))
}

/// Stores `n` sessions `<tag><i>` with data naming them, each with `life_s(i)` seconds left out of
/// `lifetime` (an age engine: written `lifetime - left` ago).
fn seed(dsn: &str, tag: &str, n: usize, lifetime: u64, left_s: impl Fn(usize) -> u64) {
    let mut s = open(dsn);
    for i in 0..n {
        let id = SessionId::parse(format!("{tag}{i}").as_bytes()).unwrap();
        let left = left_s(i);
        let exp = if is_age(dsn) { lifetime } else { left };
        let w = s.save(&id, format!("user|s:{}:\"{tag}{i}\";", tag.len() + i.to_string().len()).as_bytes(), Expect::Any, None, Expiry::new(Duration::from_secs(exp)));
        assert!(matches!(w, Ok(Written::Done(_))), "{w:?}");
        if is_age(dsn) {
            s.scanner().unwrap().set_idle(&id, Duration::from_secs(lifetime - left)).unwrap();
        }
    }
}

/// Every session of `dsn`: id → (data, seconds left given `lifetime`).
fn contents(dsn: &str, lifetime: u64) -> BTreeMap<String, (Vec<u8>, u64)> {
    contents_when(dsn, lifetime).into_iter().map(|(id, (data, left, _))| (id, (data, left))).collect()
}

/// Every session of `dsn`: id → (data, seconds left given `lifetime`, and when that time left was
/// read: the start and end of its listing page). A big store's listing takes seconds, so two
/// listings' times left compare only with each page's own time.
fn contents_when(dsn: &str, lifetime: u64) -> BTreeMap<String, (Vec<u8>, u64, (Instant, Instant))> {
    let mut s = open(dsn);
    let mut listed = Vec::new();
    let mut cursor = String::new();
    loop {
        let before = Instant::now();
        let p = s.scanner().unwrap().scan(&cursor, 1000).unwrap();
        let when = (before, Instant::now());
        listed.extend(p.sessions.into_iter().map(|l| (l, when)));
        match p.next {
            Some(c) => cursor = c,
            None => break,
        }
    }
    let life = Duration::from_secs(lifetime);
    let mut out = BTreeMap::new();
    for (l, when) in listed {
        let left = match l.left {
            Left::Ttl(d) => d.as_secs(),
            Left::Idle(a) => life.saturating_sub(a).as_secs(),
            Left::Unbounded => u64::MAX,
        };
        if let Some(data) = s.load(&l.id, Expiry::new(life)).unwrap() {
            out.insert(l.id.as_str().to_string(), (data.data, left, when));
        }
    }
    out
}

fn json(o: &Output) -> serde_json::Value {
    let s = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(s.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(o)))
}

#[test]
fn usage_errors_and_help() {
    let o = run(&[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("Usage: session-proxy <COMMAND>"), "{}", text(&o));
    for sub in ["copy", "check", "stats", "gc", "ls"] {
        let o = run(&[sub, "--help"]);
        assert!(o.status.success() && text(&o).contains(&format!("Usage: session-proxy {sub}")), "{}", text(&o));
    }
    let o = run(&["copy", "sqlite:///tmp/x.sqlite"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("<TO>"), "{}", text(&o));
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["copy", "--lifetime", "0", "sqlite:///tmp/a.sqlite", "sqlite:///tmp/b.sqlite"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // A DSN that does not parse: named by its argument, the password masked.
    let o = run(&["copy", "redis://:hunter2@127.0.0.1:6379/x", "sqlite:///tmp/b.sqlite"]);
    assert_eq!(o.status.code(), Some(2));
    let t = text(&o);
    assert!(t.contains("invalid FROM \"redis://:***@127.0.0.1:6379/x\"") && !t.contains("hunter2"), "{t}");
    // A user name the index refuses: a usage error naming the argument.
    let o = run(&["ls", "sqlite:///tmp/b.sqlite", "--user", ""]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--user:"), "{}", text(&o));
}

/// `ls --user`: the sessions bound to that user, from the engine's per-user index, ids masked.
#[test]
fn ls_user_lists_the_users_sessions_from_the_index() {
    ls_user_on("sqlite");
}

fn ls_user_on(kind: &str) {
    use session_proxy::store::users::User;
    let dir = Dir::new("lsuser");
    let src = fresh(kind, dir.path(), 1);
    seed(&src, "boundsession", 3, 1440, |_| 1000);
    let mut s = open(&src);
    let exp = Expiry::new(Duration::from_secs(1440));
    let index = s.users().unwrap_or_else(|| panic!("{kind} keeps a per-user index"));
    let (alice, bob) = (User::new(b"alice").unwrap(), User::new(b"bob").unwrap());
    for (n, who) in [(0, &alice), (1, &bob), (2, &alice)] {
        let id = SessionId::parse(format!("boundsession{n}").as_bytes()).unwrap();
        index.bind(&id, Some(who), None, exp).unwrap();
    }
    drop(s);
    let o = run(&["ls", &src, "--user", "alice"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.lines().count(), 2, "alice's two sessions: {t}");
    assert!(t.lines().all(|l| l.starts_with("bounds…")) && !t.contains("boundsession"), "ids masked: {t}");
    let o = run(&["ls", &src, "--user", "carol"]);
    assert!(o.status.success() && text(&o).trim().is_empty(), "{}", text(&o));
}

/// A listener that accepts and never answers: a store that does not reply in time.
fn silent_server() -> (u16, std::thread::JoinHandle<()>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        let (c, _) = l.accept().unwrap();
        std::thread::sleep(Duration::from_secs(4));
        drop(c);
    });
    (port, h)
}

#[test]
fn check_names_each_failure_kind() {
    let dir = Dir::new("check");
    let d = dir.path().display().to_string();
    let redis = env("SP_REDIS_PORT");
    let tls = env("SP_REDIS_TLS_PORT");
    // A CA that did not sign the server's certificate.
    let ca = dir.path().join("other-ca.pem");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=other"])
        .arg("-keyout")
        .arg(dir.path().join("k.pem"))
        .arg("-out")
        .arg(&ca)
        .output()
        .unwrap();
    assert!(made.status.success());
    std::fs::write(dir.path().join("garbage.sqlite"), b"this is no database at all, just some bytes............").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path().join("garbage.sqlite"), std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::write(dir.path().join("open.sqlite"), b"").unwrap();
    std::fs::set_permissions(dir.path().join("open.sqlite"), std::fs::Permissions::from_mode(0o644)).unwrap();
    let (silent, h) = silent_server();
    let cases: Vec<(String, &str)> = vec![
        (format!("redis://nosuchhost.invalid:{redis}"), "DNS:"),
        ("redis://127.0.0.1:1".into(), "refused:"),
        (format!("redis://:sp-wrong-secret@127.0.0.1:{redis}"), "auth:"),
        (format!("rediss://127.0.0.1:{tls}?ca={}", ca.display()), "TLS:"),
        (format!("redis://127.0.0.1:{tls}"), "reset:"),
        (format!("redis://127.0.0.1:{silent}?timeout=1&read_timeout=1"), "timeout:"),
        (format!("sqlite://{d}/open.sqlite"), "permissions:"),
        (format!("sqlite://{d}/garbage.sqlite"), "schema:"),
        (format!("files://{d}/missing"), "path:"),
        (format!("memcached://127.0.0.1:1"), "refused:"),
    ];
    for (dsn, want) in cases {
        let t = Instant::now();
        let o = run(&["check", &dsn]);
        let took = t.elapsed();
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{dsn}: {out}");
        assert!(out.contains(&format!("session-proxy: {want}")), "{dsn}: want {want}: {out}");
        assert!(!out.contains("sp-wrong-secret"), "a password printed: {out}");
        // Bounded by the DSN's timeouts (1 s here, 2 s by default): never a hang.
        assert!(took < Duration::from_secs(15), "{dsn}: {took:?}");
    }
    h.join().unwrap();
    // The good cases: every step ok, timed.
    for dsn in [format!("sqlite://{d}/ok.sqlite"), fresh("files", dir.path(), 1), fresh("redis", dir.path(), 2), fresh("memcached", dir.path(), 3)] {
        let o = run(&["check", "--json", &dsn]);
        assert!(o.status.success(), "{dsn}: {}", text(&o));
        let j = json(&o);
        let steps: Vec<&str> = j["steps"].as_array().unwrap().iter().map(|s| s["step"].as_str().unwrap()).collect();
        assert_eq!(steps, ["connect", "write", "read", "lock", "delete"], "{j}");
        assert!(j["steps"].as_array().unwrap().iter().all(|s| s["error"].is_null() && s["ms"].as_f64().unwrap() >= 0.0), "{j}");
        // The probe is gone again.
        assert!(contents(&dsn, 60).is_empty(), "{dsn}");
    }
}

const KINDS: [&str; 4] = ["sqlite", "files", "redis", "memcached"];

#[test]
fn copy_between_each_pair_keeps_data_and_lifetimes() {
    let dir = Dir::new("pairs");
    let mut n = 0;
    for from in KINDS {
        for to in KINDS {
            if from == to {
                continue;
            }
            n += 2;
            copy_pair(&dir, from, to, n);
        }
    }
}

/// PostgreSQL (its native table, an age engine, and Symfony's, which keeps expiry times) to and from
/// each other kind, and the two tables to each other.
#[test]
fn copy_pairs_with_pgsql_keep_data_and_lifetimes() {
    copy_pairs_with("pgsql", &[("pgsql-symfony", "sqlite"), ("redis", "pgsql-symfony"), ("pgsql", "pgsql-symfony"), ("pgsql-symfony", "pgsql")]);
}

/// `engine` to and from each of `KINDS`, then the `extra` pairs, each into a fresh store.
fn copy_pairs_with(engine: &str, extra: &[(&str, &str)]) {
    let dir = Dir::new(&format!("{engine}pairs"));
    let pairs = KINDS.iter().flat_map(|k| [(engine, *k), (*k, engine)]).chain(extra.iter().copied());
    for (i, (from, to)) in pairs.enumerate() {
        copy_pair(&dir, from, to, 2 * i + 2);
    }
}

/// MySQL/MariaDB (its native table, an age engine, and Symfony's, with expiry times) to and from each
/// other kind, and to and from PostgreSQL.
#[test]
fn copy_pairs_with_mysql_keep_data_and_lifetimes() {
    copy_pairs_with("mysql", &[("mysql-symfony", "sqlite"), ("redis", "mysql-symfony"), ("mysql", "pgsql"), ("pgsql", "mysql")]);
}

/// `ls --user`, `ls` and `gc` on PostgreSQL; Symfony's table keeps no per-user index and says so.
#[test]
fn ls_and_gc_on_pgsql() {
    ls_user_on("pgsql");
    let dir = Dir::new("pgls");
    let src = fresh("pgsql", dir.path(), 1);
    seed(&src, "secretsessionid", 3, 1440, |i| if i == 0 { 10 } else { 1000 });
    let o = run(&["ls", "--json", &src]);
    assert!(o.status.success(), "{}", text(&o));
    let mut left: Vec<u64> = String::from_utf8_lossy(&o.stdout).lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["left_s"].as_u64().unwrap()).collect();
    left.sort();
    assert!(left.len() == 3 && left[0].abs_diff(10) <= 2 && left[2].abs_diff(1000) <= 2, "{left:?}");
    let o = run(&["gc", "--lifetime", "1000", &src]);
    assert!(o.status.success() && text(&o).contains(" 1 sessions idle"), "{}", text(&o));
    assert_eq!(contents(&src, 1440).len(), 2);
    let sf = fresh("pgsql-symfony", dir.path(), 2);
    seed(&sf, "sf", 2, 1440, |_| 1000);
    let o = run(&["ls", &sf]);
    assert!(o.status.success() && text(&o).lines().count() == 2, "{}", text(&o));
    let o = run(&["ls", &sf, "--user", "alice"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("keeps no per-user session index"), "{}", text(&o));
}

/// 120 sessions of `from` copied into `to` (a fresh store of each), one already there and newer.
fn copy_pair(dir: &Dir, from: &str, to: &str, n: usize) {
    let lifetime = 1440;
    let (src, dst) = (fresh(from, dir.path(), n), fresh(to, dir.path(), n + 1));
    // 120 sessions with 100..1300 s left, and 5 expired ones (age engines only: a TTL engine has dropped them).
    seed(&src, "pair", 120, lifetime, |i| 100 + 10 * i as u64);
    if is_age(&src) {
        let mut s = open(&src);
        for i in 0..5 {
            let id = SessionId::parse(format!("gone{i}").as_bytes()).unwrap();
            s.save(&id, b"x|i:1;", Expect::Any, None, Expiry::new(Duration::from_secs(lifetime))).unwrap();
            s.scanner().unwrap().set_idle(&id, Duration::from_secs(lifetime + 60)).unwrap();
        }
    }
    // One session already in the target, newer: it stays.
    let mut t = open(&dst);
    let kept = SessionId::parse(b"pair7").unwrap();
    t.save(&kept, b"user|s:5:\"newer\";", Expect::Any, None, Expiry::new(Duration::from_secs(lifetime))).unwrap();
    let o = run(&["copy", "--quiet", "--json", "--lifetime", "1440", &src, &dst]);
    assert!(o.status.success(), "{from} -> {to}: {}", text(&o));
    let j = json(&o);
    assert_eq!((j["copied"].as_u64(), j["already_present"].as_u64(), j["failed"].as_u64()), (Some(119), Some(1), Some(0)), "{from} -> {to}: {j}");
    // The source's size as estimated before the listing: exact on SQLite, files and the SQL tables
    // (expired ones included, as they are listed), an upper bound on Redis and Memcached (every key).
    let (est, listed) = (j["estimated_total"].as_u64(), j["listed"].as_u64().unwrap());
    if is_age(&src) {
        assert_eq!(est, Some(listed), "{from} -> {to}: {j}");
    } else {
        assert!(est.is_some_and(|e| e >= listed), "{from} -> {to}: {j}");
    }
    let want = contents(&src, lifetime);
    let got = contents(&dst, lifetime);
    assert_eq!(got.len(), 120, "{from} -> {to}: {:?}", got.keys().collect::<Vec<_>>());
    for (id, (data, left)) in &want {
        let (gdata, gleft) = &got[id];
        if id == "pair7" {
            assert_eq!(gdata, b"user|s:5:\"newer\";", "{from} -> {to}: the newer session was overwritten");
            continue;
        }
        assert_eq!(gdata, data, "{from} -> {to}: {id}");
        // Lifetimes kept: within the seconds the copy and the clocks' rounding take.
        assert!(gleft.abs_diff(*left) <= 3, "{from} -> {to}: {id}: {left} s left in the source, {gleft} s in the target");
    }
}

#[test]
fn dry_run_writes_nothing_and_delete_source_moves() {
    let dir = Dir::new("flags");
    let (src, dst) = (fresh("sqlite", dir.path(), 1), fresh("redis", dir.path(), 2));
    seed(&src, "flag", 50, 1440, |_| 1000);
    let o = run(&["copy", "--dry-run", "--json", &src, &dst]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["copied"].as_u64(), Some(50));
    assert!(contents(&dst, 1440).is_empty(), "a dry run wrote");
    let o = run(&["copy", "--quiet", "--delete-source", "--json", &src, &dst]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(json(&o)["deleted"].as_u64(), Some(50));
    assert!(contents(&src, 1440).is_empty());
    assert_eq!(contents(&dst, 1440).len(), 50);
}

#[test]
fn ls_masks_ids_and_gc_collects() {
    let dir = Dir::new("lsgc");
    let src = fresh("sqlite", dir.path(), 1);
    seed(&src, "secretsessionid", 3, 1440, |i| if i == 0 { 10 } else { 1000 });
    let o = run(&["ls", &src]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert_eq!(t.lines().count(), 3, "{t}");
    assert!(t.contains("secret…") && !t.contains("secretsessionid"), "an id shown in full: {t}");
    // gc with a lifetime that leaves the first one (10 s left of 1440) too old: it is deleted.
    let o = run(&["gc", "--lifetime", "1000", &src]);
    assert!(o.status.success() && text(&o).contains(" 1 sessions idle"), "{}", text(&o));
    assert_eq!(contents(&src, 1440).len(), 2);
    let o = run(&["gc", &fresh("redis", dir.path(), 2)]);
    assert!(o.status.success() && text(&o).contains("expires sessions itself"), "{}", text(&o));
}

/// Peak RSS (KiB) and wall time of a command, from /usr/bin/time -v when installed (else None).
fn timed(args: &[&str]) -> (Output, Option<u64>) {
    if !Path::new("/usr/bin/time").exists() {
        return (run(args), None);
    }
    let o = Command::new("/usr/bin/time").arg("-v").arg(BIN).args(args).stdin(Stdio::null()).output().unwrap();
    let rss = String::from_utf8_lossy(&o.stderr)
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): ")?.parse().ok());
    (o, rss)
}

#[test]
fn copy_of_100000_sessions_is_complete_exact_and_resumes() {
    const N: usize = 100_000;
    let dir = Dir::new("big");
    let src = fresh("sqlite", dir.path(), 1);
    let dst = fresh("redis", dir.path(), 2);
    // Written in one transaction-free pass through the engine (the tool reads them the same way).
    // At least 400 s left each: under load this test ran 250 s, and sessions seeded with 200 s left
    // expired before the resumed copy (counted as expired, not copied).
    seed(&src, "big", N, 1440, |i| 400 + (i % 1000) as u64);

    // Interrupted: killed once a part is copied.
    let mut child = Command::new(BIN).args(["copy", "--quiet", &src, &dst]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let port = env("SP_REDIS_PORT");
    let prefix = dst.split("prefix=").nth(1).unwrap().to_string();
    let count = || {
        let mut s = open(&dst);
        let mut n = 0;
        let mut c = String::new();
        loop {
            let p = s.scanner().unwrap().scan(&c, 5000).unwrap();
            n += p.sessions.len();
            match p.next {
                Some(x) => c = x,
                None => return n,
            }
        }
    };
    // Killed at its first visible progress: the listing is walked only up to the first session
    // found. A full count takes long enough (100 000 keys) that the copy could finish during it (it
    // did, at ~35 000 sessions/s with the RESP2 reader).
    let started = || {
        let mut s = open(&dst);
        let mut c = String::new();
        loop {
            let p = s.scanner().unwrap().scan(&c, 1000).unwrap();
            if !p.sessions.is_empty() {
                return true;
            }
            match p.next {
                Some(x) => c = x,
                None => return false,
            }
        }
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while !started() {
        assert!(Instant::now() < deadline, "the copy made no progress");
        assert!(child.try_wait().unwrap().is_none(), "the copy ended before it was interrupted");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let partial = count();
    assert!(partial > 0 && partial < N, "{partial} of {N} copied before the kill");
    let _ = (port, prefix);

    // Resumed: what is there is skipped, the rest copied.
    let t = Instant::now();
    let (o, rss) = timed(&["copy", "--quiet", "--json", "--page", "1000", &src, &dst]);
    let took = t.elapsed();
    assert!(o.status.success(), "{}", text(&o));
    let j = json(&o);
    let (copied, present) = (j["copied"].as_u64().unwrap() as usize, j["already_present"].as_u64().unwrap() as usize);
    assert_eq!(copied + present, N, "{j}");
    assert!(present >= partial, "{j}: {partial} were there before");
    // Complete and exact, lifetimes kept: both sides' time left runs down alike, so a copy has
    // what its original had less the time between the two readings of it (each known to its
    // listing page: a 100 000-key listing takes seconds, 18 s on Redis under the full suite), plus
    // rounding to whole seconds on each side.
    let want = contents_when(&src, 1440);
    let got = contents_when(&dst, 1440);
    assert_eq!(got.len(), N);
    for (id, (data, left, (s0, s1))) in &want {
        let (gdata, gleft, (d0, d1)) = &got[id];
        assert_eq!(gdata, data, "{id}");
        // Seconds of running down between the readings: at least d0 - s1, at most d1 - s0.
        let (least, most) = (d0.saturating_duration_since(*s1).as_secs_f64(), d1.duration_since(*s0).as_secs_f64());
        let ran_down = *left as f64 - *gleft as f64;
        assert!(
            ran_down >= least - 2.0 && ran_down <= most + 2.0,
            "{id}: {left} s left at the source, {gleft} s at the copy, read {least:.1}..{most:.1} s apart"
        );
    }
    // Bounded memory: one page, whatever the number of sessions (measured ~10 MiB; 64 MiB would
    // mean the sessions are being gathered).
    if let Some(kib) = rss {
        assert!(kib < 64 * 1024, "peak RSS {kib} KiB for {N} sessions");
    }
    println!(
        "FIGURES copy sqlite->redis, resumed after {partial} of {N} sessions: {:.1} s, peak RSS {} KiB (bench/copy.sh gives the full-copy rates)",
        took.as_secs_f64(),
        rss.map_or("n/a".into(), |k| k.to_string())
    );
}
