//! Against the live redis-server that scripts/services/redis.sh starts (SP_REDIS_PORT, SP_REDIS_SOCKET).

use std::time::{Duration, Instant};

use super::dsn::{self, RedisOptions};
use super::RedisStore;
use crate::id::SessionId;
use crate::lock::Token;
use crate::store::tests::{conformance_ttl, expiring_locks, Got, Ops, W};
use crate::store::{Acquire, Busy, ErrorKind, Expect, Expiry, Loaded, Store, Written};

const LIFE: Duration = Duration::from_secs(3600);

fn port() -> u16 {
    std::env::var("SP_REDIS_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .expect("SP_REDIS_PORT is not set: run the tests with `make test` (scripts/test.sh starts redis-server)")
}

/// Options for the test server with a prefix of its own, so tests running in parallel never meet.
fn opts(dsn_tail: &str) -> RedisOptions {
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    dsn::parse(&format!("redis://127.0.0.1:{}/0?prefix={prefix}{dsn_tail}", port())).unwrap()
}

fn id(s: &str) -> SessionId {
    SessionId::parse(s.as_bytes()).unwrap()
}

/// A store on `o`, as the engine serves it.
fn open(o: &RedisOptions) -> Box<dyn Store> {
    Box::new(RedisStore::open(o).unwrap())
}

fn ex() -> Expiry {
    Expiry::new(LIFE)
}

fn raw() -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}/0", port())).unwrap().get_connection().unwrap()
}

#[test]
fn conformance_tcp() {
    let o = opts("");
    conformance_ttl(|| open(&o));
    let o = opts("");
    expiring_locks(|| open(&o));
}

#[test]
fn conformance_unix_socket() {
    let sock = std::env::var("SP_REDIS_SOCKET").expect("SP_REDIS_SOCKET is not set: run with `make test`");
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let o = dsn::parse(&format!("unix://{sock}?db=1&prefix={prefix}")).unwrap();
    conformance_ttl(|| open(&o));
    // db=1 really is another database.
    let mut s = open(&o);
    s.put(&id("dbcheck"), b"x", LIFE, None).unwrap();
    let n: i64 = redis::cmd("EXISTS").arg(format!("{prefix}dbcheck")).query(&mut raw()).unwrap();
    assert_eq!(n, 0);
}

/// The claim in the README: two round trips per session cycle, locked or not, counted at the socket
/// (`crate::net::round_trips`): a pipeline sent command by command counts more.
#[test]
fn round_trips() {
    let o = opts("");
    let mut s = open(&o);
    let sid = id("rt");
    let t = Token::new();
    // Connect and load the scripts first.
    assert_eq!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(None));
    assert_eq!(s.tch(&sid, LIFE, Some(&t)).unwrap(), W::Done);
    let trips = |s: &mut Box<dyn Store>, cycle: &dyn Fn(&mut Box<dyn Store>)| {
        let before = crate::net::round_trips();
        let counted = s.round_trips();
        for _ in 0..10 {
            cycle(s);
        }
        // What the store reports (the metrics layer's figure) is what the socket saw.
        assert_eq!(s.round_trips() - counted, crate::net::round_trips() - before);
        (crate::net::round_trips() - before) as f64 / 10.0
    };
    let locked = trips(&mut s, &|s| {
        assert!(matches!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(_)));
        assert_eq!(s.put(&sid, b"a|i:1;", LIFE, Some(&t)).unwrap(), W::Done);
    });
    assert_eq!(locked, 2.0, "locked cycle: acquire+read, write+release");
    let lazy = trips(&mut s, &|s| {
        assert!(matches!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(Some(_))));
        assert_eq!(s.tch(&sid, LIFE, Some(&t)).unwrap(), W::Done);
    });
    assert_eq!(lazy, 2.0, "locked lazy cycle");
    let unlocked = trips(&mut s, &|s| {
        assert_eq!(s.get(&sid, LIFE).unwrap().as_deref(), Some(&b"a|i:1;"[..]));
        s.put(&sid, b"a|i:1;", LIFE, None).unwrap();
    });
    assert_eq!(unlocked, 2.0, "unlocked cycle: GET, SET");
    // After SCRIPT FLUSH: the locked cycle runs no script (watch.rs), still 2 round trips; a step
    // that does (a release without a write) sends its script once more (EVALSHA → NOSCRIPT → EVAL).
    let () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut raw()).unwrap();
    let before = crate::net::round_trips();
    assert!(matches!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(Some(_))));
    assert_eq!(s.put(&sid, b"a|i:3;", LIFE, Some(&t)).unwrap(), W::Done);
    assert_eq!(crate::net::round_trips() - before, 2);
    assert_eq!(s.get(&sid, LIFE).unwrap().as_deref(), Some(&b"a|i:3;"[..]));
    assert!(matches!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(Some(_))));
    let () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut raw()).unwrap();
    let before = crate::net::round_trips();
    s.unlock(&sid, &t).unwrap();
    assert_eq!(crate::net::round_trips() - before, 2);
}

/// A locked cycle of a session bound to no user sends the server what it needs and no more (each
/// command costs the server ~1.5 µs, `bench/redis-cost.sh`): no `PTTL` of the lock (asked only when
/// it is busy, for the wait) and no refresh of a `_USER` key that the lock's read found absent. A
/// busy lock still tells its holder's remaining life.
#[test]
fn a_locked_cycle_sends_no_needless_commands() {
    use super::SENT;
    let o = opts("");
    let mut s = open(&o);
    let sid = id("lean");
    let t = Token::new();
    assert_eq!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(None));
    assert_eq!(s.put(&sid, b"a|i:1;", LIFE, Some(&t)).unwrap(), W::Done);
    let names = |sent: &[String]| sent.iter().map(|c| c.split(' ').next().unwrap_or("").to_string()).collect::<Vec<_>>();
    for (step, expected) in [
        ("write", &["MULTI", "SET", "SET", "DEL", "LMOVE", "PEXPIRE", "PEXPIRETIME", "EXEC"][..]),
        ("touch", &["MULTI", "PEXPIRE", "PEXPIRE", "DEL", "LMOVE", "PEXPIRE", "EXEC"][..]),
    ] {
        SENT.with(|c| c.borrow_mut().clear());
        assert!(matches!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(Some(_))));
        let read = SENT.with(|c| c.take());
        assert_eq!(names(&read), ["GETEX", "SET", "WATCH", "GET", "PEXPIRETIME", "GET", "GET"], "the lock's read: {read:?}");
        match step {
            "write" => assert_eq!(s.put(&sid, b"a|i:2;", LIFE, Some(&t)).unwrap(), W::Done),
            _ => assert_eq!(s.tch(&sid, LIFE, Some(&t)).unwrap(), W::Done),
        }
        let sent = SENT.with(|c| c.take());
        assert_eq!(names(&sent), expected, "the locked {step}: {sent:?}");
        assert!(!sent.iter().any(|c| c.ends_with("_USER")), "no user key to keep alive: {sent:?}");
    }
    // Busy: the holder's life is asked for then.
    assert_eq!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(Some(b"a|i:2;".to_vec())));
    let mut b = open(&o);
    SENT.with(|c| c.borrow_mut().clear());
    let Acquire::Busy(busy) = b.lock_and_load(&sid, &Token::new(), Duration::from_secs(30), ex()).unwrap() else { panic!("held") };
    assert!(!busy.foreign && busy.expires_in.is_some_and(|t| t > Duration::from_secs(25)), "{busy:?}");
    assert_eq!(names(&SENT.with(|c| c.take())).last().map(String::as_str), Some("PTTL"));
    s.unlock(&sid, &t).unwrap();
}

#[test]
fn keys_follow_phpredis_layout_and_ttl() {
    let o = opts("");
    let prefix = o.nodes[0].prefix.clone();
    let mut s = open(&o);
    let sid = id("layout");
    let t = Token::new();
    s.lock(&sid, &t, Duration::from_secs(7), LIFE).unwrap();
    let mut r = raw();
    let holder: Option<String> = redis::cmd("GET").arg(format!("{prefix}layout_LOCK")).query(&mut r).unwrap();
    assert_eq!(holder.as_deref(), Some(t.as_str()));
    let pttl: i64 = redis::cmd("PTTL").arg(format!("{prefix}layout_LOCK")).query(&mut r).unwrap();
    assert!(pttl > 6000 && pttl <= 7000, "{pttl}");
    s.put(&sid, b"v", Duration::from_secs(100), Some(&t)).unwrap();
    let data: Vec<u8> = redis::cmd("GET").arg(format!("{prefix}layout")).query(&mut r).unwrap();
    assert_eq!(data, b"v");
    let ttl: i64 = redis::cmd("TTL").arg(format!("{prefix}layout")).query(&mut r).unwrap();
    assert!(ttl > 95 && ttl <= 100, "{ttl}");
    let lock: i64 = redis::cmd("EXISTS").arg(format!("{prefix}layout_LOCK")).query(&mut r).unwrap();
    assert_eq!(lock, 0, "the lock is released by the write");
    // A phpredis lock (value "host|pid") excludes us, and we never release it.
    let () = redis::cmd("SET").arg(format!("{prefix}layout_LOCK")).arg("web1|4242").query(&mut r).unwrap();
    // The answer says so (a lock without expiry, phpredis'): the waiter polls it, and is handed
    // that by value (no state left in the handle).
    let busy = Busy { expires_in: None, foreign: true };
    assert_eq!(s.lock_and_load(&sid, &t, Duration::from_secs(7), ex()).unwrap(), Acquire::Busy(busy));
    s.unlock(&sid, &t).unwrap();
    assert_eq!(s.put(&sid, b"mine", LIFE, Some(&t)).unwrap(), W::LockLost);
    let holder: String = redis::cmd("GET").arg(format!("{prefix}layout_LOCK")).query(&mut r).unwrap();
    assert_eq!(holder, "web1|4242");
}

/// A waiter is woken by the release itself, well before the holder's lock would expire and faster
/// than any fixed polling step.
#[test]
fn waiter_is_woken_by_the_release() {
    let o = opts("");
    let sid = id("wake");
    let mut a = open(&o);
    let ta = Token::new();
    assert_eq!(a.lock(&sid, &ta, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(None));
    let o2 = o.clone();
    let waiter = std::thread::spawn(move || {
        let mut b = open(&o2);
        let tb = Token::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut attempt = 0;
        let mut waits = 0;
        loop {
            match b.lock_and_load(&id("wake"), &tb, Duration::from_secs(30), ex()).unwrap() {
                Acquire::Locked(d) => return (d.map(|l| l.data), Instant::now(), waits),
                Acquire::Busy(busy) => {
                    // Our own lock with 30 s to go: the waiter blocks on the wake-up list.
                    assert!(!busy.foreign && busy.expires_in.is_some_and(|t| t > Duration::from_secs(25)), "{busy:?}");
                    b.wait_for_release(&id("wake"), &busy, deadline, attempt).unwrap();
                    attempt += 1;
                    waits += 1;
                }
            }
        }
    });
    std::thread::sleep(Duration::from_millis(1200));
    let released = Instant::now();
    assert_eq!(a.put(&sid, b"from-a", LIFE, Some(&ta)).unwrap(), W::Done);
    let (data, got, waits) = waiter.join().unwrap();
    assert_eq!(data.as_deref(), Some(&b"from-a"[..]));
    let latency = got.duration_since(released);
    assert!(latency < Duration::from_millis(100), "woken {latency:?} after the release");
    // 1.2 s of waiting in blocks of at most 500 ms: a handful of waits, not 1 ms polling.
    assert!(waits <= 5, "{waits} waits");
}

#[test]
fn dead_server_costs_one_error_naming_it_and_recovery_is_automatic() {
    // Nothing listens on port 1 of the loopback: refused at once.
    let o = dsn::parse("redis://127.0.0.1:1?timeout=0.5").unwrap();
    let t = Instant::now();
    let err = RedisStore::open(&o).err().expect("connection must fail");
    assert!(t.elapsed() < Duration::from_millis(600), "{:?}", t.elapsed());
    let e = err.to_string();
    assert!(e.contains("127.0.0.1:1") && e.to_lowercase().contains("refused"), "{e}");
    // Typed at the source: unavailable, at the host:port.
    assert_eq!((err.kind(), err.at()), (ErrorKind::Unavailable, "127.0.0.1:1"));

    // A pooled connection killed by the server is replaced transparently for idempotent steps.
    let o = opts("");
    let mut s = RedisStore::open(&o).unwrap();
    let sid = id("reconnect");
    assert!(matches!(s.save(&sid, b"x", Expect::Any, None, ex()).unwrap(), Written::Done(_)));
    let mut r = raw();
    kill(&mut s, &mut r);
    assert_eq!(s.load(&sid, ex()).unwrap().map(|l| l.data).as_deref(), Some(&b"x"[..]));
    kill(&mut s, &mut r);
    let t = Token::new();
    let Acquire::Locked(Some(read)) = s.lock_and_load(&sid, &t, Duration::from_secs(5), ex()).unwrap() else { panic!("locks") };
    // A write that releases a lock is never sent twice: a dropped connection there is an error…
    kill(&mut s, &mut r);
    let err = s.save(&sid, b"y", Expect::Version(read.version), Some(&t), ex()).unwrap_err();
    let e = err.to_string();
    assert!(e.contains(&format!("127.0.0.1:{}", port())), "{e}");
    assert_eq!((err.kind(), err.at()), (ErrorKind::Unavailable, &*format!("127.0.0.1:{}", port())));
    // …and the next step reconnects (the version survived the reconnect: it is stored).
    assert!(matches!(s.save(&sid, b"y", Expect::Version(read.version), Some(&t), ex()).unwrap(), Written::Done(_)));
}

/// A server that accepts and never answers: the step fails within read_timeout as a Timeout, at the
/// host:port, in today's words.
#[test]
fn timeouts_are_typed() {
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = mute.local_addr().unwrap().port();
    let o = dsn::parse(&format!("redis://127.0.0.1:{port}?read_timeout=0.2")).unwrap();
    let e = RedisStore::open(&o).and_then(|mut s| s.load(&id("x"), ex())).unwrap_err();
    assert_eq!((e.kind(), e.at()), (ErrorKind::Timeout, &*format!("127.0.0.1:{port}")), "{e}");
    assert_eq!(e.to_string(), format!("127.0.0.1:{port}: no answer within 0.200 s (read_timeout)"));
}

/// Kills `s`'s own connection from the server side (only its, other tests run in parallel).
fn kill(s: &mut RedisStore, r: &mut redis::Connection) {
    let cid: i64 = s.simple(0, &[b"CLIENT", b"ID"]).unwrap();
    let _: redis::Value = redis::cmd("CLIENT").arg("KILL").arg("ID").arg(cid).query(r).unwrap();
}

fn cluster_seeds() -> String {
    std::env::var("SP_REDIS_CLUSTER").expect("SP_REDIS_CLUSTER is not set: run the tests with `make test`")
}

fn node_conn(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap().get_connection().unwrap()
}

/// (port, role) of every cluster node, and the port of the master serving `slot` and of its replica.
fn slot_owner(slot: i64) -> (u16, Option<u16>) {
    let first: u16 = cluster_seeds().split(',').next().unwrap().rsplit_once(':').unwrap().1.parse().unwrap();
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut node_conn(first)).unwrap();
    let mut master = None;
    for l in nodes.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        if f[2].contains("master") && !f[2].contains("fail") {
            for range in &f[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
                    if (a..=b).contains(&slot) {
                        master = Some((f[0].to_string(), f[1].split(['@', ':']).nth(1).unwrap().parse::<u16>().unwrap()));
                    }
                }
            }
        }
    }
    let (mid, mport) = master.expect("a master serves the slot");
    let replica = nodes
        .lines()
        .map(|l| l.split(' ').collect::<Vec<_>>())
        .find(|f| f[2].contains("slave") && f[3] == mid)
        .map(|f| f[1].split(['@', ':']).nth(1).unwrap().parse::<u16>().unwrap());
    (mport, replica)
}

#[test]
fn cluster_conformance_locking_and_failover() {
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let o = dsn::parse(&format!("redis-cluster://{}?prefix={prefix}", cluster_seeds())).unwrap();
    conformance_ttl(|| open(&o));
    expiring_locks(|| open(&o));

    // Data, lock and wake-up keys share one slot; the data key is phpredis' own name.
    let mut s = open(&o);
    let sid = id("clusterfail");
    let k = RedisStore::open(&o).unwrap().keys(0, &sid);
    let (data, lock, wake, ver) = (k.data, k.lock, k.wake, k.ver);
    assert_eq!(data, format!("{prefix}clusterfail").into_bytes());
    assert_eq!(lock, format!("{{{prefix}clusterfail}}_LOCK").into_bytes());
    let slot = |k: &[u8]| -> i64 { redis::cmd("CLUSTER").arg("KEYSLOT").arg(k).query(&mut node_conn(slot_port())).unwrap() };
    fn slot_port() -> u16 {
        cluster_seeds().split(',').next().unwrap().rsplit_once(':').unwrap().1.parse().unwrap()
    }
    assert_eq!(slot(&data), slot(&lock));
    assert_eq!(slot(&data), slot(&wake));
    assert_eq!(ver, format!("{{{prefix}clusterfail}}_VER").into_bytes());
    assert_eq!(slot(&data), slot(&ver));

    // Locking works in cluster mode, in 2 round trips (once the slot's master has the scripts cached:
    // a node that has not seen them yet answers NOSCRIPT once and gets the body).
    let t = Token::new();
    assert_eq!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(None));
    assert_eq!(s.put(&sid, b"warm", LIFE, Some(&t)).unwrap(), W::Done);
    let before = s.round_trips();
    assert_eq!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(Some(b"warm".to_vec())));
    let mut other = open(&o);
    assert_eq!(other.lock(&sid, &Token::new(), Duration::from_secs(30), LIFE).unwrap(), Got::Busy);
    assert_eq!(s.put(&sid, b"before failover", LIFE, Some(&t)).unwrap(), W::Done);
    assert_eq!(s.round_trips() - before, 2);

    // Fail the slot's master over to its replica (CLUSTER FAILOVER on the replica): the same store
    // keeps working (MOVED → slot map refresh) and the data is there.
    let (master, replica) = slot_owner(slot(&data));
    let replica = replica.expect("the test cluster has a replica per master");
    // The replica must have caught up before it can take over.
    std::thread::sleep(Duration::from_millis(300));
    let () = redis::cmd("CLUSTER").arg("FAILOVER").query(&mut node_conn(replica)).unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        let role: Vec<redis::Value> = redis::cmd("ROLE").query(&mut node_conn(replica)).unwrap();
        if role.first() == Some(&redis::Value::BulkString(b"master".to_vec())) && slot_owner(slot(&data)).0 == replica {
            break;
        }
        assert!(Instant::now() < end, "the failover did not happen");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_ne!(master, replica);
    let t = Token::new();
    assert_eq!(
        s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(),
        Got::Locked(Some(b"before failover".to_vec()))
    );
    assert_eq!(s.put(&sid, b"after failover", LIFE, Some(&t)).unwrap(), W::Done);
    assert_eq!(other.get(&sid, LIFE).unwrap().as_deref(), Some(&b"after failover"[..]));
}

#[test]
fn sentinel_conformance() {
    let s = std::env::var("SP_REDIS_SENTINEL").expect("SP_REDIS_SENTINEL is not set: run with `make test`");
    let name = std::env::var("SP_REDIS_SENTINEL_MASTER").unwrap();
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let o = dsn::parse(&format!("redis-sentinel://{s}/{name}?db=2&prefix={prefix}")).unwrap();
    conformance_ttl(|| open(&o));
    expiring_locks(|| open(&o));
    // An error at the master names the master the Sentinel gave, with the service.
    let mut sentinel = redis::Client::open(format!("redis://{s}/")).unwrap().get_connection().unwrap();
    let (host, mport): (String, u16) = redis::cmd("SENTINEL").arg("get-master-addr-by-name").arg(&name).query(&mut sentinel).unwrap();
    let mut st = open(&o);
    let id = SessionId::parse(format!("at{}", Token::new().as_str()).as_bytes()).unwrap();
    let big = vec![0u8; super::MAX_VALUE + 1];
    let e = st.save(&id, &big, Expect::Any, None, Expiry::new(LIFE)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge);
    assert_eq!(e.at(), format!("{host}:{mport} (master {name:?} of redis-sentinel://{s}/{name}/2)"));
    // An unknown master name is an error naming the Sentinel.
    let o = dsn::parse(&format!("redis-sentinel://{s}/nosuchmaster")).unwrap();
    let e = format!("{:#}", RedisStore::open(&o).err().unwrap());
    assert!(e.starts_with(&format!("redis-sentinel://{s}/nosuchmaster/0: no Sentinel named the master: Sentinel {s} knows no master")), "{e}");
}

#[test]
fn tls_conformance_and_verification() {
    let _tls = STUCK_TESTS.read().unwrap_or_else(|e| e.into_inner());
    let port = std::env::var("SP_REDIS_TLS_PORT").expect("SP_REDIS_TLS_PORT is not set: run with `make test`");
    let ca = std::env::var("SP_REDIS_TLS_CA").unwrap();
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let o = dsn::parse(&format!("rediss://127.0.0.1:{port}/0?prefix={prefix}&ca={ca}")).unwrap();
    assert_eq!(o.describe(), format!("rediss://127.0.0.1:{port}/0"));
    conformance_ttl(|| open(&o));
    // Not trusted without the test CA: an error naming host:port and the cause.
    let o = dsn::parse(&format!("rediss://127.0.0.1:{port}")).unwrap();
    let e = format!("{:#}", RedisStore::open(&o).err().expect("an untrusted certificate must be refused"));
    assert!(e.contains(&format!("127.0.0.1:{port}")) && e.to_lowercase().contains("certificate"), "{e}");
    // verify=none: encrypted, not authenticated.
    let o = dsn::parse(&format!("rediss://127.0.0.1:{port}?verify=none&prefix={prefix}")).unwrap();
    let mut s = open(&o);
    s.put(&id("tlsnone"), b"x", LIFE, None).unwrap();
    // A missing CA file is named.
    let o = dsn::parse(&format!("rediss://127.0.0.1:{port}?ca=/nonexistent/ca.pem")).unwrap();
    let e = format!("{:#}", RedisStore::open(&o).err().unwrap());
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    // Plain redis:// to the TLS port fails within the read timeout instead of hanging.
    let o = dsn::parse(&format!("redis://127.0.0.1:{port}?read_timeout=0.3")).unwrap();
    let t = Instant::now();
    assert!(RedisStore::open(&o).and_then(|mut s| s.load(&id("x"), ex())).is_err());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

/// rediss:// naming a plain Redis port: redis-rs bounds the TCP connect but not the TLS handshake,
/// and the plain server waits for the end of a command that never comes. The open must fail within
/// twice the connect timeout, as a timeout naming host:port; it used to hang for good (the test runs
/// it in a thread so that a hang is a failure, not a stuck suite).
/// A TCP port that accepts and never answers (a TLS handshake to it never finishes), closed with
/// every connection it took when dropped; the drop waits until the handshakes given up on have
/// ended, so that they do not count against the process's limit of stuck ones in later tests.
struct Silent {
    port: u16,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::net::TcpStream>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Silent {
    fn new() -> Self {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let conns = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (c, st) = (conns.clone(), stop.clone());
        std::thread::spawn(move || {
            for s in l.incoming() {
                if st.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                if let Ok(s) = s {
                    c.lock().unwrap().push(s);
                }
            }
        });
        Silent { port, conns, stop }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = std::net::TcpStream::connect(("127.0.0.1", self.port));
        for s in self.conns.lock().unwrap().drain(..) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
        let t = Instant::now();
        while super::STUCK_HANDSHAKES.load(std::sync::atomic::Ordering::SeqCst) > 0 && t.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The tests that leave handshakes stuck (given up on) run alone, apart from the other TLS tests
/// (which take it shared): the limit of stuck handshakes is per process.
static STUCK_TESTS: std::sync::RwLock<()> = std::sync::RwLock::new(());

#[test]
fn tls_to_a_plain_port_times_out_instead_of_hanging() {
    let _one = STUCK_TESTS.write().unwrap_or_else(|e| e.into_inner());
    let silent = Silent::new();
    let port = silent.port;
    let o = dsn::parse(&format!("rediss://127.0.0.1:{port}?verify=none&timeout=0.3")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    std::thread::spawn(move || {
        let r = RedisStore::open(&o).and_then(|mut s| s.load(&id("tlsplain"), ex()).map(|_| ()));
        let _ = tx.send(r.map_err(|e| (e.kind(), format!("{e:#}"))));
    });
    let r = rx.recv_timeout(Duration::from_secs(20)).expect("the open hung: no answer within 20 s");
    let (kind, e) = r.expect_err("a TLS handshake with a port that never answers cannot succeed");
    assert_eq!(kind, ErrorKind::Timeout, "{e}");
    assert!(e.contains(&format!("127.0.0.1:{port}")) && e.contains("TLS handshake"), "{e}");
    // 2 x 0.3 s, plus a loaded machine's scheduling.
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

/// The same for a TLS Cluster whose seed never answers: every node connect of the cluster client
/// goes through the bounded handshake.
#[test]
fn tls_cluster_to_plain_ports_times_out_instead_of_hanging() {
    let _one = STUCK_TESTS.write().unwrap_or_else(|e| e.into_inner());
    let silent = Silent::new();
    let o = dsn::parse(&format!("rediss-cluster://127.0.0.1:{}?verify=none&timeout=0.3", silent.port)).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let t = Instant::now();
    std::thread::spawn(move || {
        let r = RedisStore::open(&o).and_then(|mut s| s.load(&id("tlsplainc"), ex()).map(|_| ()));
        let _ = tx.send(r.map_err(|e| format!("{e:#}")));
    });
    let r = rx.recv_timeout(Duration::from_secs(30)).expect("the cluster open hung: no answer within 30 s");
    let e = r.expect_err("a TLS handshake with a port that never answers cannot succeed");
    assert!(e.contains("TLS handshake"), "{e}");
    // Each attempt (redis-rs retries the seed) bounded by 2 x 0.3 s, plus a loaded machine's scheduling.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
}

fn tls_ca() -> String {
    std::env::var("SP_REDIS_TLS_CA").expect("SP_REDIS_TLS_CA is not set: run with `make test`")
}

fn tls_cluster_seeds() -> String {
    std::env::var("SP_REDIS_TLS_CLUSTER").expect("SP_REDIS_TLS_CLUSTER is not set: run with `make test`")
}

/// The ports of the TLS cluster's seeds (its masters), in order.
fn tls_cluster_ports() -> Vec<u16> {
    tls_cluster_seeds().split(',').map(|hp| hp.rsplit_once(':').unwrap().1.parse().unwrap()).collect()
}

/// An admin connection to one TLS node (trusting the test CA).
fn tls_node(port: u16) -> redis::Connection {
    let ca = std::fs::read(tls_ca()).unwrap();
    redis::Client::build_with_tls(
        format!("rediss://127.0.0.1:{port}/"),
        redis::TlsCertificates { client_tls: None, root_cert: Some(ca) },
    )
    .unwrap()
    .get_connection()
    .unwrap()
}

#[test]
fn tls_cluster_conformance_and_verification() {
    let _tls = STUCK_TESTS.read().unwrap_or_else(|e| e.into_inner());
    let seeds = tls_cluster_seeds();
    let ca = tls_ca();
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let o = dsn::parse(&format!("rediss-cluster://{seeds}?ca={ca}&prefix={prefix}")).unwrap();
    assert_eq!(o.describe(), format!("rediss-cluster://{seeds}"));
    conformance_ttl(|| open(&o));
    expiring_locks(|| open(&o));
    // Sessions spread over the 3 masters: every node was reached over TLS with the CA.
    let mut s = open(&o);
    for i in 0..30 {
        let sid = id(&format!("spread{i}"));
        let t = Token::new();
        assert_eq!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(None));
        assert_eq!(s.put(&sid, format!("v{i}").as_bytes(), LIFE, Some(&t)).unwrap(), W::Done);
    }
    let mut on_nodes = 0;
    for port in tls_cluster_ports() {
        let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{prefix}spread*")).query(&mut tls_node(port)).unwrap();
        on_nodes += usize::from(!keys.is_empty());
    }
    assert_eq!(on_nodes, 3, "30 sessions land on all 3 masters");
    // The phpredis form of the same cluster, TLS as phpredis writes it.
    let php = format!(
        "seed[]=tls://{}&stream[cafile]={ca}&prefix={prefix}",
        seeds.split(',').collect::<Vec<_>>().join("&seed[]=tls://")
    );
    let mut p = open(&dsn::parse(&php).unwrap());
    assert_eq!(p.get(&id("spread7"), LIFE).unwrap().as_deref(), Some(&b"v7"[..]));
    // Without the test CA: refused, naming the cluster and the certificate.
    let o = dsn::parse(&format!("rediss-cluster://{seeds}")).unwrap();
    let e = format!("{:#}", RedisStore::open(&o).err().expect("an untrusted certificate must be refused"));
    assert!(e.contains(&seeds) && e.to_lowercase().contains("certificate"), "{e}");
    // verify=none: encrypted, not authenticated.
    let o = dsn::parse(&format!("rediss-cluster://{seeds}?verify=none&prefix={prefix}")).unwrap();
    assert_eq!(open(&o).get(&id("spread3"), LIFE).unwrap().as_deref(), Some(&b"v3"[..]));
    // verify=ca: the chain is checked, the host name is not ("localhost" is not in the certificate).
    let first_port = tls_cluster_ports()[0];
    let o = dsn::parse(&format!("rediss-cluster://localhost:{first_port}?ca={ca}&verify=ca&prefix={prefix}")).unwrap();
    assert_eq!(open(&o).get(&id("spread4"), LIFE).unwrap().as_deref(), Some(&b"v4"[..]));
    // A plaintext client to the TLS cluster fails within its timeouts.
    let o = dsn::parse(&format!("redis-cluster://{seeds}?timeout=0.3&read_timeout=0.3")).unwrap();
    let t = Instant::now();
    assert!(RedisStore::open(&o).and_then(|mut s| s.load(&id("x"), ex())).is_err());
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[test]
fn tls_standalone_verify_ca_skips_only_the_host_name() {
    let _tls = STUCK_TESTS.read().unwrap_or_else(|e| e.into_inner());
    let port = std::env::var("SP_REDIS_TLS_PORT").expect("SP_REDIS_TLS_PORT is not set: run with `make test`");
    let ca = tls_ca();
    // The certificate names IP 127.0.0.1, not "localhost": full verification refuses it…
    let o = dsn::parse(&format!("rediss://localhost:{port}?ca={ca}")).unwrap();
    let e = format!("{:#}", RedisStore::open(&o).err().expect("host name mismatch must be refused"));
    assert!(e.contains(&format!("localhost:{port}")), "{e}");
    // …verify=ca accepts it (the CA still has to sign it).
    let o = dsn::parse(&format!("rediss://localhost:{port}?ca={ca}&verify=ca")).unwrap();
    open(&o).put(&id("verifyca"), b"x", LIFE, None).unwrap();
    let o = dsn::parse(&format!("rediss://localhost:{port}?verify=ca")).unwrap();
    assert!(RedisStore::open(&o).is_err(), "verify=ca still checks the chain");
}

#[test]
fn tls_sentinel_with_its_own_password() {
    let _tls = STUCK_TESTS.read().unwrap_or_else(|e| e.into_inner());
    let s = std::env::var("SP_REDIS_TLS_SENTINEL").expect("SP_REDIS_TLS_SENTINEL is not set: run with `make test`");
    let name = std::env::var("SP_REDIS_TLS_SENTINEL_MASTER").unwrap();
    let spw = std::env::var("SP_REDIS_TLS_SENTINEL_PASSWORD").unwrap();
    let mpw = std::env::var("SP_REDIS_TLS_MASTER_PASSWORD").unwrap();
    assert_ne!(spw, mpw);
    let ca = tls_ca();
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let dsn_with = |userinfo: &str, sentinel: &str| {
        dsn::parse(&format!("rediss-sentinel://{userinfo}{s}/{name}?db=3&ca={ca}&prefix={prefix}{sentinel}")).unwrap()
    };
    let o = dsn_with(&format!(":{mpw}@"), &format!("&sentinel_password={spw}"));
    assert_eq!(o.describe(), format!("rediss-sentinel://{s}/{name}/3"));
    conformance_ttl(|| open(&o));
    expiring_locks(|| open(&o));
    // With a user name too (the Sentinel's default user).
    let o = dsn_with(&format!(":{mpw}@"), &format!("&sentinel_user=default&sentinel_password={spw}"));
    open(&o).put(&id("withuser"), b"x", LIFE, None).unwrap();

    let no_secret = |e: &str| assert!(!e.contains(&spw) && !e.contains(&mpw), "a password is shown: {e}");
    // No Sentinel password: the Sentinel refuses to answer.
    let e = format!("{:#}", RedisStore::open(&dsn_with(&format!(":{mpw}@"), "")).err().unwrap());
    assert!(e.contains(&s) && e.contains("NOAUTH"), "{e}");
    no_secret(&e);
    // A wrong Sentinel password is named as such, at the Sentinel.
    let e = format!("{:#}", RedisStore::open(&dsn_with(&format!(":{mpw}@"), "&sentinel_password=wrong-one")).err().unwrap());
    assert!(e.contains(&format!("Sentinel {s}")) && e.to_lowercase().contains("auth"), "{e}");
    no_secret(&e);
    // The master's password given to the Sentinel (the old meaning of userinfo) does not work either…
    let e = format!("{:#}", RedisStore::open(&dsn_with("", &format!("&sentinel_password={mpw}"))).err().unwrap());
    no_secret(&e);
    // …and a wrong master password fails at the master, named with the Sentinel that gave it.
    let e = format!("{:#}", RedisStore::open(&dsn_with(":wrong-one@", &format!("&sentinel_password={spw}"))).err().unwrap());
    assert!(e.contains(&format!("master {name:?}")) && e.to_lowercase().contains("auth"), "{e}");
    no_secret(&e);
    // Untrusted certificate: refused at the Sentinel.
    let o = dsn::parse(&format!("rediss-sentinel://:{mpw}@{s}/{name}?sentinel_password={spw}")).unwrap();
    let e = format!("{:#}", RedisStore::open(&o).err().unwrap());
    assert!(e.contains(&s) && e.to_lowercase().contains("certificate"), "{e}");
    no_secret(&e);
}

/// CLUSTER NODES of the TLS cluster: (node id, port) of each master and the port serving `slot`.
fn tls_masters(slot: i64) -> (Vec<(String, u16)>, u16) {
    let first = tls_cluster_ports()[0];
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut tls_node(first)).unwrap();
    let mut masters = Vec::new();
    let mut owner = 0;
    for l in nodes.lines() {
        let f: Vec<&str> = l.split(' ').collect();
        if !f[2].contains("master") {
            continue;
        }
        let port: u16 = f[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
        masters.push((f[0].to_string(), port));
        for range in &f[8..] {
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            if let (Ok(a), Ok(b)) = (a.parse::<i64>(), b.parse::<i64>()) {
                if (a..=b).contains(&slot) {
                    owner = port;
                }
            }
        }
    }
    assert_ne!(owner, 0, "a master serves slot {slot}");
    (masters, owner)
}

/// The keys of `slot` on the node at `port` (no redirection) that start with `prefix` or `{prefix`.
fn ours_in_slot(port: u16, slot: i64, prefix: &str) -> Vec<String> {
    let keys: Vec<String> = redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(1000).query(&mut tls_node(port)).unwrap();
    keys.into_iter().filter(|k| k.starts_with(prefix) || k.starts_with(&format!("{{{prefix}"))).collect()
}

/// Moves `slot` from `from` to `to` as redis-cli --cluster reshard does, calling `during_open` once the
/// slot is open (MIGRATING/IMPORTING, keys not moved yet) and `during_moved` once the keys are on `to`
/// (slot still open); then assigns the slot to `to` on every master.
fn migrate_slot(slot: i64, from: u16, to: u16, during_open: impl FnOnce(), during_moved: impl FnOnce()) {
    let (masters, _) = tls_masters(slot);
    let id_of = |port: u16| masters.iter().find(|(_, p)| *p == port).unwrap().0.clone();
    let (from_id, to_id) = (id_of(from), id_of(to));
    let ok = |r: redis::RedisResult<()>| r.unwrap();
    ok(redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("IMPORTING").arg(&from_id).query(&mut tls_node(to)));
    ok(redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("MIGRATING").arg(&to_id).query(&mut tls_node(from)));
    during_open();
    let keys: Vec<Vec<u8>> = redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(1000).query(&mut tls_node(from)).unwrap();
    if !keys.is_empty() {
        let mut m = redis::cmd("MIGRATE");
        m.arg("127.0.0.1").arg(to).arg("").arg(0).arg(5000).arg("KEYS");
        for k in &keys {
            m.arg(k);
        }
        let r: String = m.query(&mut tls_node(from)).unwrap();
        assert_eq!(r, "OK");
    }
    during_moved();
    for (_, port) in &masters {
        ok(redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg("NODE").arg(&to_id).query(&mut tls_node(*port)));
    }
}

/// A slot being resharded (MIGRATING on its owner, IMPORTING on the target, keys MIGRATEd between
/// them): single-key steps follow ASK at once; the multi-key lock and save scripts get TRYAGAIN while
/// the slot's keys are split, and are retried until the slot is assigned — so every session cycle
/// started during the migration completes, with its data intact. Then the slot is moved back (with a
/// destroy during that migration).
#[test]
fn tls_cluster_ask_and_tryagain_during_slot_migration() {
    let _tls = STUCK_TESTS.read().unwrap_or_else(|e| e.into_inner());
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let o = dsn::parse(&format!("rediss-cluster://{}?ca={}&prefix={prefix}", tls_cluster_seeds(), tls_ca())).unwrap();
    let mut s = open(&o);
    let sid = id("migrating");
    let t = Token::new();
    assert_eq!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(None));
    assert_eq!(s.put(&sid, b"n|i:1;", LIFE, Some(&t)).unwrap(), W::Done);
    let data = RedisStore::open(&o).unwrap().keys(0, &sid).data;
    let first = tls_cluster_ports()[0];
    let slot: i64 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(&data).query(&mut tls_node(first)).unwrap();
    let (masters, source) = tls_masters(slot);
    let target = masters.iter().map(|(_, p)| *p).find(|p| *p != source).unwrap();

    // One locked cycle (lock script + GET, SET + commit script) in another thread, started while the
    // slot is open; it reports when it finished.
    let cycle = |o: RedisOptions, from: &'static [u8], to: &'static [u8]| {
        std::thread::spawn(move || {
            let mut s = open(&o);
            let t = Token::new();
            let started = Instant::now();
            let got = s.lock(&id("migrating"), &t, Duration::from_secs(30), LIFE).unwrap();
            assert_eq!(got, Got::Locked(Some(from.to_vec())));
            assert_eq!(s.put(&id("migrating"), to, LIFE, Some(&t)).unwrap(), W::Done);
            (Instant::now(), started.elapsed())
        })
    };
    let mut during = None;
    let mut assigned = Instant::now();
    let mut s2 = open(&o);
    migrate_slot(
        slot,
        source,
        target,
        || {
            // Open slot, keys on the source: unlocked reads are served at once…
            assert_eq!(s.get(&sid, LIFE).unwrap().as_deref(), Some(&b"n|i:1;"[..]));
            assert!(s.has(&sid, LIFE).unwrap());
            // …and a locked cycle starts now and waits out the TRYAGAIN answers.
            during = Some(cycle(o.clone(), b"n|i:1;", b"n|i:2;"));
            std::thread::sleep(Duration::from_millis(300));
        },
        || {
            // Keys moved, slot still open: the source answers ASK, the target serves them.
            assert!(ours_in_slot(source, slot, &prefix).is_empty(), "the keys left the source");
            assert!(ours_in_slot(target, slot, &prefix).contains(&String::from_utf8(data.clone()).unwrap()), "the data key is on the target");
            let t0 = Instant::now();
            assert_eq!(s2.get(&sid, LIFE).unwrap().as_deref(), Some(&b"n|i:1;"[..]), "GET follows ASK");
            assert!(s2.has(&sid, LIFE).unwrap());
            assert!(t0.elapsed() < Duration::from_millis(500), "single-key steps do not wait: {:?}", t0.elapsed());
            std::thread::sleep(Duration::from_millis(300));
            assigned = Instant::now();
        },
    );
    let (finished, took) = during.unwrap().join().expect("the locked cycle during the migration succeeds");
    assert!(finished >= assigned, "the cycle completed once the slot was assigned");
    assert!(took < Duration::from_secs(3), "bounded wait: {took:?}");
    assert_eq!(tls_masters(slot).1, target);
    let on_target: Option<Vec<u8>> = redis::cmd("GET").arg(&data).query(&mut tls_node(target)).unwrap();
    assert_eq!(on_target.as_deref(), Some(&b"n|i:2;"[..]));
    // After: the same store (its slot map is stale: MOVED) goes on.
    let t = Token::new();
    assert_eq!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(Some(b"n|i:2;".to_vec())));
    assert_eq!(s.put(&sid, b"n|i:3;", LIFE, Some(&t)).unwrap(), W::Done);

    // Move the slot back to its original owner, destroying the session (under its lock) meanwhile.
    let mut destroyer = None;
    migrate_slot(
        slot,
        target,
        source,
        || {
            let o = o.clone();
            destroyer = Some(std::thread::spawn(move || {
                let mut s = open(&o);
                let t = Token::new();
                let got = s.lock(&id("migrating"), &t, Duration::from_secs(30), LIFE).unwrap();
                assert_eq!(got, Got::Locked(Some(b"n|i:3;".to_vec())));
                s.destroy(&id("migrating"), Some(&t)).unwrap();
            }));
            std::thread::sleep(Duration::from_millis(200));
        },
        || {
            // Keys back on the original owner, slot still open: the destroy has not happened yet.
            assert_eq!(s2.get(&sid, LIFE).unwrap().as_deref(), Some(&b"n|i:3;"[..]));
            std::thread::sleep(Duration::from_millis(200));
        },
    );
    destroyer.unwrap().join().expect("destroy during the migration succeeds");
    assert_eq!(tls_masters(slot).1, source, "slot restored to its original owner");
    assert_eq!(s.get(&sid, LIFE).unwrap(), None, "destroyed");
    for (_, port) in &masters {
        // (The wake-up list of the release lives on for WAKE_LIFE_MS by design.)
        let left: Vec<String> = ours_in_slot(*port, slot, &prefix).into_iter().filter(|k| !k.ends_with("_WAKE")).collect();
        assert_eq!(left, Vec::<String>::new(), "no data or lock key left on {port}");
    }
    // A new session in that slot works as before.
    let t = Token::new();
    assert_eq!(s.lock(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Got::Locked(None));
    assert_eq!(s.put(&sid, b"again", LIFE, Some(&t)).unwrap(), W::Done);
    assert_eq!(s.get(&sid, LIFE).unwrap().as_deref(), Some(&b"again"[..]));
}

/// Versions and phpredis, which writes the data key with SETEX and knows nothing of `_VER`: a session
/// phpredis wrote reads with a version and takes a CAS write at it; a phpredis write or lazy-write
/// touch (EXPIRE) between our read and our write moves the version (it resets the data key's
/// expiry), so the stale write is refused with phpredis' data — also under our lock, which a
/// phpredis with locking off ignores, and the refusal releases that lock.
#[test]
fn versions_see_phpredis_writes() {
    let o = opts("");
    let key = format!("{}phpv", o.nodes[0].prefix);
    let mut s = open(&o);
    let mut r = raw();
    let sid = id("phpv");
    // phpredis' own write (seconds TTL). The pauses put each phpredis write in another millisecond
    // than the step before it: a write in the same millisecond, with the same lifetime, would leave
    // the expiry (and so the version) as it was — the one case the module documentation concedes.
    let phpredis_write = |r: &mut redis::Connection, v: &str| {
        std::thread::sleep(Duration::from_millis(5));
        let () = redis::cmd("SETEX").arg(&key).arg(3600).arg(v).query(r).unwrap();
    };
    phpredis_write(&mut r, "php|1");
    let read = s.load(&sid, ex()).unwrap().expect("phpredis' session reads");
    assert_eq!(read.data, b"php|1");
    phpredis_write(&mut r, "php|2");
    let Written::Conflict(Some(now)) = s.save(&sid, b"ours", Expect::Version(read.version), None, ex()).unwrap() else {
        panic!("a write at the version read before phpredis' write must be refused")
    };
    assert_eq!(now.data, b"php|2");
    assert_eq!(s.get(&sid, LIFE).unwrap().as_deref(), Some(&b"php|2"[..]), "nothing stored");
    let Written::Done(v) = s.save(&sid, b"ours", Expect::Version(now.version), None, ex()).unwrap() else {
        panic!("a write at the current version wins")
    };
    // phpredis' lazy write refreshes the expiry only: the version moves too.
    std::thread::sleep(Duration::from_millis(5));
    let _: i64 = redis::cmd("EXPIRE").arg(&key).arg(3600).query(&mut r).unwrap();
    assert!(matches!(s.save(&sid, b"stale", Expect::Version(v), None, ex()).unwrap(), Written::Conflict(Some(_))));
    // Under our lock.
    let t = Token::new();
    let Acquire::Locked(Some(l)) = s.lock_and_load(&sid, &t, Duration::from_secs(30), ex()).unwrap() else { panic!("locks") };
    assert_eq!(l.data, b"ours");
    phpredis_write(&mut r, "php|3");
    let w = s.save(&sid, b"mine", Expect::Version(l.version), Some(&t), ex()).unwrap();
    assert!(matches!(&w, Written::Conflict(Some(now)) if now.data == b"php|3"), "{w:?}");
    assert!(matches!(open(&o).lock(&sid, &Token::new(), Duration::from_secs(30), LIFE).unwrap(), Got::Locked(Some(_))), "released");
}

/// The `_VER` key lives and dies with the session: same TTL as the data after a write and a touch,
/// deleted by a destroy.
#[test]
fn version_key_follows_the_data() {
    let o = opts("");
    let prefix = o.nodes[0].prefix.clone();
    let mut s = open(&o);
    let mut r = raw();
    let sid = id("verkey");
    let pttl = |r: &mut redis::Connection, k: &str| -> i64 { redis::cmd("PTTL").arg(format!("{prefix}{k}")).query(r).unwrap() };
    s.put(&sid, b"x", Duration::from_secs(100), None).unwrap();
    assert!((95_000..=100_000).contains(&pttl(&mut r, "verkey_VER")), "{}", pttl(&mut r, "verkey_VER"));
    s.tch(&sid, Duration::from_secs(200), None).unwrap();
    assert!(pttl(&mut r, "verkey_VER") > 150_000 && pttl(&mut r, "verkey") > 150_000);
    s.destroy(&sid, None).unwrap();
    assert_eq!(pttl(&mut r, "verkey_VER"), -2, "destroyed with the data");
}

/// One writer of `cas_across_processes`, run as a child process of this test binary with the
/// SP_XPROC_* environment. In an ordinary test run (no such environment) it has nothing to do.
#[test]
fn cas_across_processes_child() {
    let Ok(dsn) = std::env::var("SP_XPROC_DSN") else { return };
    let var = |k: &str| std::env::var(k).unwrap();
    let sid = id(&var("SP_XPROC_ID"));
    let expect = match var("SP_XPROC_EXPECT").as_str() {
        "absent" => Expect::Absent,
        v => Expect::Version(crate::store::Version::new(v.parse().unwrap())),
    };
    let mut s = RedisStore::open(&dsn::parse(&dsn).unwrap()).unwrap();
    s.exists(&sid, ex()).unwrap();
    // All writers go at the same instant (given as Unix ms by the parent).
    let at = std::time::UNIX_EPOCH + Duration::from_millis(var("SP_XPROC_AT").parse().unwrap());
    if let Ok(d) = at.duration_since(std::time::SystemTime::now()) {
        std::thread::sleep(d);
    }
    let me = var("SP_XPROC_ME");
    let said = match s.save(&sid, me.as_bytes(), expect, None, ex()).unwrap() {
        Written::Done(_) => "done".to_string(),
        Written::Conflict(Some(l)) => format!("conflict {}", String::from_utf8_lossy(&l.data)),
        other => format!("{other:?}"),
    };
    println!("XPROC {me} {said}");
}

/// CAS between processes (what the transitional adapter's in-process mutex could not give): six
/// processes create the same session at once expecting it absent, then six write at the same
/// version — each time exactly one wins and every other is told the winner's data.
#[test]
fn cas_across_processes() {
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let dsn = format!("redis://127.0.0.1:{}/0?prefix={prefix}", port());
    let o = dsn::parse(&dsn).unwrap();
    let exe = std::env::current_exe().unwrap();
    let race = |sid: &str, expect: String| {
        // Far enough ahead for six test binaries to start on a loaded machine; a late one still
        // races the others' answers, and the assertions hold however the writes interleave.
        let at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap() + Duration::from_millis(1500);
        let children: Vec<_> = (0..6)
            .map(|i| {
                std::process::Command::new(&exe)
                    .args(["--exact", "store::redis::tests::cas_across_processes_child", "--nocapture", "--test-threads=1"])
                    .env("SP_XPROC_DSN", &dsn)
                    .env("SP_XPROC_ID", sid)
                    .env("SP_XPROC_EXPECT", &expect)
                    .env("SP_XPROC_ME", format!("writer{i}"))
                    .env("SP_XPROC_AT", at.as_millis().to_string())
                    .stdout(std::process::Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let said: Vec<String> = children
            .into_iter()
            .map(|c| {
                let out = c.wait_with_output().unwrap();
                assert!(out.status.success(), "a writer failed");
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                text.lines().find_map(|l| l.split_once("XPROC ").map(|(_, said)| said.to_string())).unwrap_or_else(|| panic!("no answer: {text}"))
            })
            .collect();
        let winners: Vec<&str> = said.iter().filter_map(|l| l.strip_suffix(" done")).collect();
        assert_eq!(winners.len(), 1, "exactly one wins: {said:?}");
        for l in &said {
            assert!(l.ends_with(" done") || l.ends_with(&format!(" conflict {}", winners[0])), "{l}: {said:?}");
        }
        let stored = open(&o).get(&id(sid), LIFE).unwrap();
        assert_eq!(stored.as_deref(), Some(winners[0].as_bytes()));
    };
    race("xcreate", "absent".into());
    let mut s = open(&o);
    let Written::Done(v) = s.save(&id("xstale"), b"base", Expect::Any, None, ex()).unwrap() else { panic!("written") };
    race("xstale", v.get().to_string());
    assert_eq!(s.load(&id("xstale"), ex()).unwrap().map(|l: Loaded| l.version == v), Some(false), "the version moved");
}
