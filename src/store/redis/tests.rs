//! Against the live redis-server that scripts/services/redis.sh starts (SP_REDIS_PORT, SP_REDIS_SOCKET).

use std::time::{Duration, Instant};

use super::dsn::{self, RedisOptions};
use super::RedisStore;
use crate::id::SessionId;
use crate::lock::Token;
use crate::store::tests::{conformance_ttl, expiring_locks};
use crate::store::{Acquire, Saved, Store};

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

fn raw() -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{}/0", port())).unwrap().get_connection().unwrap()
}

#[test]
fn conformance_tcp() {
    let o = opts("");
    conformance_ttl(|| Box::new(RedisStore::open(&o).unwrap()));
    let o = opts("");
    expiring_locks(|| Box::new(RedisStore::open(&o).unwrap()));
}

#[test]
fn conformance_unix_socket() {
    let sock = std::env::var("SP_REDIS_SOCKET").expect("SP_REDIS_SOCKET is not set: run with `make test`");
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let o = dsn::parse(&format!("unix://{sock}?db=1&prefix={prefix}")).unwrap();
    conformance_ttl(|| Box::new(RedisStore::open(&o).unwrap()));
    // db=1 really is another database.
    let mut s = RedisStore::open(&o).unwrap();
    s.save(&id("dbcheck"), b"x", LIFE, None).unwrap();
    let n: i64 = redis::cmd("EXISTS").arg(format!("{prefix}dbcheck")).query(&mut raw()).unwrap();
    assert_eq!(n, 0);
}

/// The claim in the README: two round trips per session cycle, locked or not.
#[test]
fn round_trips() {
    let o = opts("");
    let mut s = RedisStore::open(&o).unwrap();
    let sid = id("rt");
    let t = Token::new();
    let before = s.round_trips();
    assert_eq!(s.lock_and_load(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Acquire::Locked(None));
    assert_eq!(s.save(&sid, b"a|i:1;", LIFE, Some(&t)).unwrap(), Saved::Done);
    assert_eq!(s.round_trips() - before, 2, "locked cycle: acquire+read, write+release");
    let before = s.round_trips();
    assert!(matches!(s.lock_and_load(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Acquire::Locked(Some(_))));
    assert_eq!(s.touch(&sid, LIFE, Some(&t)).unwrap(), Saved::Done);
    assert_eq!(s.round_trips() - before, 2, "locked lazy cycle");
    let before = s.round_trips();
    assert_eq!(s.load(&sid, LIFE).unwrap().as_deref(), Some(&b"a|i:1;"[..]));
    s.save(&sid, b"a|i:2;", LIFE, None).unwrap();
    assert_eq!(s.round_trips() - before, 2, "unlocked cycle: GET, SET");
    // After SCRIPT FLUSH the scripts are sent once more (EVALSHA → NOSCRIPT → EVAL), then cached.
    let () = redis::cmd("SCRIPT").arg("FLUSH").query(&mut raw()).unwrap();
    let before = s.round_trips();
    assert!(matches!(s.lock_and_load(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Acquire::Locked(Some(_))));
    assert_eq!(s.save(&sid, b"a|i:3;", LIFE, Some(&t)).unwrap(), Saved::Done);
    assert_eq!(s.round_trips() - before, 4);
    assert_eq!(s.load(&sid, LIFE).unwrap().as_deref(), Some(&b"a|i:3;"[..]));
}

#[test]
fn keys_follow_phpredis_layout_and_ttl() {
    let o = opts("");
    let prefix = o.nodes[0].prefix.clone();
    let mut s = RedisStore::open(&o).unwrap();
    let sid = id("layout");
    let t = Token::new();
    s.lock_and_load(&sid, &t, Duration::from_secs(7), LIFE).unwrap();
    let mut r = raw();
    let holder: Option<String> = redis::cmd("GET").arg(format!("{prefix}layout_LOCK")).query(&mut r).unwrap();
    assert_eq!(holder.as_deref(), Some(t.as_str()));
    let pttl: i64 = redis::cmd("PTTL").arg(format!("{prefix}layout_LOCK")).query(&mut r).unwrap();
    assert!(pttl > 6000 && pttl <= 7000, "{pttl}");
    s.save(&sid, b"v", Duration::from_secs(100), Some(&t)).unwrap();
    let data: Vec<u8> = redis::cmd("GET").arg(format!("{prefix}layout")).query(&mut r).unwrap();
    assert_eq!(data, b"v");
    let ttl: i64 = redis::cmd("TTL").arg(format!("{prefix}layout")).query(&mut r).unwrap();
    assert!(ttl > 95 && ttl <= 100, "{ttl}");
    let lock: i64 = redis::cmd("EXISTS").arg(format!("{prefix}layout_LOCK")).query(&mut r).unwrap();
    assert_eq!(lock, 0, "the lock is released by the write");
    // A phpredis lock (value "host|pid") excludes us, and we never release it.
    let () = redis::cmd("SET").arg(format!("{prefix}layout_LOCK")).arg("web1|4242").query(&mut r).unwrap();
    assert_eq!(s.lock_and_load(&sid, &t, Duration::from_secs(7), LIFE).unwrap(), Acquire::Busy);
    assert_eq!(s.last_busy, Some((-1, true)));
    s.unlock(&sid, &t).unwrap();
    assert_eq!(s.save(&sid, b"mine", LIFE, Some(&t)).unwrap(), Saved::LockLost);
    let holder: String = redis::cmd("GET").arg(format!("{prefix}layout_LOCK")).query(&mut r).unwrap();
    assert_eq!(holder, "web1|4242");
}

/// A waiter is woken by the release itself, well before the holder's lock would expire and faster
/// than any fixed polling step.
#[test]
fn waiter_is_woken_by_the_release() {
    let o = opts("");
    let sid = id("wake");
    let mut a = RedisStore::open(&o).unwrap();
    let ta = Token::new();
    assert_eq!(a.lock_and_load(&sid, &ta, Duration::from_secs(30), LIFE).unwrap(), Acquire::Locked(None));
    let o2 = o.clone();
    let waiter = std::thread::spawn(move || {
        let mut b = RedisStore::open(&o2).unwrap();
        let tb = Token::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut attempt = 0;
        let mut waits = 0;
        loop {
            match b.lock_and_load(&id("wake"), &tb, Duration::from_secs(30), LIFE).unwrap() {
                Acquire::Locked(d) => return (d, Instant::now(), waits),
                Acquire::Busy => {
                    b.wait_for_release(&id("wake"), deadline, attempt).unwrap();
                    attempt += 1;
                    waits += 1;
                }
            }
        }
    });
    std::thread::sleep(Duration::from_millis(1200));
    let released = Instant::now();
    assert_eq!(a.save(&sid, b"from-a", LIFE, Some(&ta)).unwrap(), Saved::Done);
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
    let e = format!("{:#}", RedisStore::open(&o).err().expect("connection must fail"));
    assert!(t.elapsed() < Duration::from_millis(600), "{:?}", t.elapsed());
    assert!(e.contains("127.0.0.1:1") && e.to_lowercase().contains("refused"), "{e}");

    // A pooled connection killed by the server is replaced transparently for idempotent steps.
    let o = opts("");
    let mut s = RedisStore::open(&o).unwrap();
    let sid = id("reconnect");
    s.save(&sid, b"x", LIFE, None).unwrap();
    let mut r = raw();
    kill(&mut s, &mut r);
    assert_eq!(s.load(&sid, LIFE).unwrap().as_deref(), Some(&b"x"[..]));
    kill(&mut s, &mut r);
    let t = Token::new();
    assert!(matches!(s.lock_and_load(&sid, &t, Duration::from_secs(5), LIFE).unwrap(), Acquire::Locked(Some(_))));
    // A write that releases a lock is never sent twice: a dropped connection there is an error…
    kill(&mut s, &mut r);
    let e = format!("{:#}", s.save(&sid, b"y", LIFE, Some(&t)).unwrap_err());
    assert!(e.contains(&format!("127.0.0.1:{}", port())), "{e}");
    // …and the next step reconnects.
    assert_eq!(s.save(&sid, b"y", LIFE, Some(&t)).unwrap(), Saved::Done);
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
    conformance_ttl(|| Box::new(RedisStore::open(&o).unwrap()));
    expiring_locks(|| Box::new(RedisStore::open(&o).unwrap()));

    // Data, lock and wake-up keys share one slot; the data key is phpredis' own name.
    let mut s = RedisStore::open(&o).unwrap();
    let sid = id("clusterfail");
    let (data, lock, wake) = s.keys(0, &sid);
    assert_eq!(data, format!("{prefix}clusterfail").into_bytes());
    assert_eq!(lock, format!("{{{prefix}clusterfail}}_LOCK").into_bytes());
    let slot = |k: &[u8]| -> i64 { redis::cmd("CLUSTER").arg("KEYSLOT").arg(k).query(&mut node_conn(slot_port())).unwrap() };
    fn slot_port() -> u16 {
        cluster_seeds().split(',').next().unwrap().rsplit_once(':').unwrap().1.parse().unwrap()
    }
    assert_eq!(slot(&data), slot(&lock));
    assert_eq!(slot(&data), slot(&wake));

    // Locking works in cluster mode, in 2 round trips (once the slot's master has the scripts cached:
    // a node that has not seen them yet answers NOSCRIPT once and gets the body).
    let t = Token::new();
    assert_eq!(s.lock_and_load(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Acquire::Locked(None));
    assert_eq!(s.save(&sid, b"warm", LIFE, Some(&t)).unwrap(), Saved::Done);
    let before = s.round_trips();
    assert_eq!(s.lock_and_load(&sid, &t, Duration::from_secs(30), LIFE).unwrap(), Acquire::Locked(Some(b"warm".to_vec())));
    let mut other = RedisStore::open(&o).unwrap();
    assert_eq!(other.lock_and_load(&sid, &Token::new(), Duration::from_secs(30), LIFE).unwrap(), Acquire::Busy);
    assert_eq!(s.save(&sid, b"before failover", LIFE, Some(&t)).unwrap(), Saved::Done);
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
        s.lock_and_load(&sid, &t, Duration::from_secs(30), LIFE).unwrap(),
        Acquire::Locked(Some(b"before failover".to_vec()))
    );
    assert_eq!(s.save(&sid, b"after failover", LIFE, Some(&t)).unwrap(), Saved::Done);
    assert_eq!(other.load(&sid, LIFE).unwrap().as_deref(), Some(&b"after failover"[..]));
}

#[test]
fn sentinel_conformance() {
    let s = std::env::var("SP_REDIS_SENTINEL").expect("SP_REDIS_SENTINEL is not set: run with `make test`");
    let name = std::env::var("SP_REDIS_SENTINEL_MASTER").unwrap();
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let o = dsn::parse(&format!("redis-sentinel://{s}/{name}?db=2&prefix={prefix}")).unwrap();
    conformance_ttl(|| Box::new(RedisStore::open(&o).unwrap()));
    expiring_locks(|| Box::new(RedisStore::open(&o).unwrap()));
    // An unknown master name is an error naming the Sentinel.
    let o = dsn::parse(&format!("redis-sentinel://{s}/nosuchmaster")).unwrap();
    let e = format!("{:#}", RedisStore::open(&o).err().unwrap());
    assert!(e.contains(&s) && e.contains("nosuchmaster"), "{e}");
}

#[test]
fn tls_conformance_and_verification() {
    let port = std::env::var("SP_REDIS_TLS_PORT").expect("SP_REDIS_TLS_PORT is not set: run with `make test`");
    let ca = std::env::var("SP_REDIS_TLS_CA").unwrap();
    let prefix = format!("sp-test-{}:", Token::new().as_str());
    let o = dsn::parse(&format!("rediss://127.0.0.1:{port}/0?prefix={prefix}&ca={ca}")).unwrap();
    assert_eq!(o.describe(), format!("rediss://127.0.0.1:{port}/0"));
    conformance_ttl(|| Box::new(RedisStore::open(&o).unwrap()));
    // Not trusted without the test CA: an error naming host:port and the cause.
    let o = dsn::parse(&format!("rediss://127.0.0.1:{port}")).unwrap();
    let e = format!("{:#}", RedisStore::open(&o).err().expect("an untrusted certificate must be refused"));
    assert!(e.contains(&format!("127.0.0.1:{port}")) && e.to_lowercase().contains("certificate"), "{e}");
    // verify=none: encrypted, not authenticated.
    let o = dsn::parse(&format!("rediss://127.0.0.1:{port}?verify=none&prefix={prefix}")).unwrap();
    let mut s = RedisStore::open(&o).unwrap();
    s.save(&id("tlsnone"), b"x", LIFE, None).unwrap();
    // A missing CA file is named.
    let o = dsn::parse(&format!("rediss://127.0.0.1:{port}?ca=/nonexistent/ca.pem")).unwrap();
    let e = format!("{:#}", RedisStore::open(&o).err().unwrap());
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    // Plain redis:// to the TLS port fails within the read timeout instead of hanging.
    let o = dsn::parse(&format!("redis://127.0.0.1:{port}?read_timeout=0.3")).unwrap();
    let t = Instant::now();
    assert!(RedisStore::open(&o).and_then(|mut s| s.load(&id("x"), LIFE)).is_err());
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}
