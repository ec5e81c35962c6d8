//! Against the live MariaDB that scripts/services/mariadb.sh starts (SP_MYSQL_PORT, SP_MYSQL_USER, …).
//! A missing server is a failure (the env is unset, or the connect fails), never a skip.

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use super::options::{self, MysqlOptions};
use super::MysqlStore;
use crate::id::SessionId;
use crate::lock::Token;
use crate::store::tests::{conformance, dead_holder_locks, expiring_locks, woken_at_release, Got, Ops, W};
use crate::store::{Acquire, ErrorKind, Expect, Expiry, Loaded, Pooled, Store, Written};

const LIFE: Duration = Duration::from_secs(3600);

pub(crate) fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests with `make test` (scripts/test.sh starts MariaDB)"))
}

/// A table name of its own (tests run in parallel).
pub(crate) fn table() -> String {
    let t = format!("t_{}", Token::new().as_str().to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
    t.chars().take(40).collect()
}

/// The test server's DSN (after `mysql://`) over TCP, with a table of its own.
pub(crate) fn dsn(query: &str) -> (String, String) {
    let table = table();
    let d = format!(
        "{}:{}@127.0.0.1:{}/{}?table={table}&sslmode=disable{query}",
        env("SP_MYSQL_USER"),
        env("SP_MYSQL_PASSWORD"),
        env("SP_MYSQL_PORT"),
        env("SP_MYSQL_DB")
    );
    (d, table)
}

fn opts(query: &str) -> MysqlOptions {
    options::parse(&dsn(query).0).unwrap()
}

fn open(o: &MysqlOptions) -> Box<dyn Store> {
    Box::new(MysqlStore::open(o).unwrap())
}

fn id(s: &str) -> SessionId {
    SessionId::parse(s.as_bytes()).unwrap()
}

fn ex() -> Expiry {
    Expiry::new(LIFE)
}

/// An administrator's connection (root over TCP from 127.0.0.1, no password: the test server's).
fn admin() -> mysql::Conn {
    let o = mysql::OptsBuilder::new()
        .ip_or_hostname(Some("127.0.0.1"))
        .tcp_port(env("SP_MYSQL_PORT").parse().unwrap())
        .user(Some("root"))
        .db_name(Some(env("SP_MYSQL_DB")))
        .prefer_socket(false);
    mysql::Conn::new(o).unwrap()
}

/// "name type" of each column of `table`, in order.
fn columns(c: &mut mysql::Conn, table: &str) -> Vec<String> {
    c.exec(
        "SELECT CONCAT(column_name, ' ', column_type) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ? ORDER BY ordinal_position",
        (table,),
    )
    .unwrap()
}

#[test]
fn conformance_tcp() {
    let o = opts("");
    let raced = conformance(|| open(&o));
    assert!(!raced, "gc deletes in one statement: no window between reading and deleting");
}

#[test]
fn conformance_unix_socket() {
    let (d, _) = dsn("");
    let sock = env("SP_MYSQL_SOCKET");
    let d = format!("{}:{}@/{}", env("SP_MYSQL_USER"), env("SP_MYSQL_PASSWORD"), d.split_once('/').unwrap().1.replace("sslmode=disable", &format!("socket={sock}")));
    let o = options::parse(&d).unwrap();
    assert_eq!(o.at(), sock);
    let mut s = MysqlStore::open(&o).unwrap();
    // Over the socket, not TCP (the server names the socket's peer "localhost").
    let host: String = s.conn.query_first("SELECT SUBSTRING_INDEX(USER(), '@', -1)").unwrap().unwrap();
    assert_eq!(host, "localhost");
    assert!(!conformance(|| open(&o)));
}

/// Whether a connection made with `o` runs over TLS, as the server sees it.
fn uses_tls(o: &MysqlOptions) -> bool {
    let mut s = MysqlStore::open(o).unwrap();
    let r: Option<(String, String)> = s.conn.query_first("SHOW SESSION STATUS LIKE 'Ssl_cipher'").unwrap();
    !r.unwrap().1.is_empty()
}

#[test]
fn conformance_tls_require() {
    // The server has TLS on: require takes it without checking the certificate (libpq's meaning).
    let (d, _) = dsn("");
    let o = options::parse(&d.replace("sslmode=disable", "sslmode=require")).unwrap();
    assert!(uses_tls(&o));
    assert!(!conformance(|| open(&o)));
    assert!(!uses_tls(&options::parse(&d).unwrap()), "sslmode=disable is plain TCP");
    assert!(uses_tls(&options::parse(&d.replace("sslmode=disable", "sslmode=prefer")).unwrap()), "prefer takes TLS when offered");
}

#[test]
fn tls_verify_full_checks_the_certificate() {
    let (d, _) = dsn("");
    let ca = env("SP_MYSQL_CA");
    // The test CA signed the server's certificate for 127.0.0.1 and localhost.
    for host in ["127.0.0.1", "localhost"] {
        let o = options::parse(&d.replace("sslmode=disable", &format!("sslmode=verify-full&sslrootcert={ca}")).replace("127.0.0.1", host)).unwrap();
        assert!(uses_tls(&o), "{host}");
    }
    // Without the CA (the system's do not know it), the server is refused, and the error says why.
    let o = options::parse(&d.replace("sslmode=disable", "sslmode=verify-full")).unwrap();
    let e = MysqlStore::open(&o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("certificate verify failed"), "{e}");
    // A CA file that is not there is named.
    let o = options::parse(&d.replace("sslmode=disable", "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")).unwrap();
    let e = MysqlStore::open(&o).err().unwrap();
    assert!(e.to_string().contains("/nonexistent/ca.pem") && e.at() == "/nonexistent/ca.pem", "{e}");
}

#[test]
fn waiter_is_woken_at_the_release() {
    let o = opts("");
    let s = id("wakeme");
    let (mut a, mut b, tb) = woken_at_release(open(&o), open(&o), &s);
    b.unlock(&s, &tb).unwrap();
    assert!(matches!(a.lock(&s, &Token::new(), LIFE, LIFE).unwrap(), Got::Locked(_)));
}

/// A wait bounded by the deadline: GET_LOCK's timeout ends it, close to the deadline; a long deadline
/// is waited in slices of at most WAIT_SLICE (within the read timeout).
#[test]
fn wait_ends_at_the_deadline() {
    let o = opts("");
    crate::store::tests::wait_ends_at_the_deadline(|| open(&o));
    let s = id("waitslice");
    let (mut a, mut b) = (open(&o), open(&o));
    assert!(matches!(a.lock(&s, &Token::new(), LIFE, LIFE).unwrap(), Got::Locked(None)));
    let Acquire::Busy(busy) = b.lock_and_load(&s, &Token::new(), LIFE, ex()).unwrap() else { panic!("a holds it") };
    let t0 = Instant::now();
    b.wait_for_release(&s, &busy, t0 + Duration::from_secs(30), 0).unwrap();
    assert!(t0.elapsed() < super::WAIT_SLICE + Duration::from_secs(1), "{:?}", t0.elapsed());
}

/// A holder whose connection closed (a killed worker) leaves no lock behind.
#[test]
fn a_closed_connection_frees_its_lock() {
    let o = opts("");
    crate::store::tests::closed_connection_frees_its_lock(|| open(&o));
}

/// The write and the release are one step, and the next holder reads that write: with GET_LOCK and
/// with lock rows.
#[test]
fn increments_under_the_lock_are_never_lost() {
    for q in ["", "&lock=row"] {
        let o = opts(q);
        crate::store::tests::increments_under_the_lock_are_never_lost(move || open(&o));
    }
}

#[test]
fn create_never_names_what_is_missing_and_auto_creates_it() {
    let (d, table) = dsn("&create=never");
    let e = MysqlStore::open(&options::parse(&d).unwrap()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let msg = e.to_string();
    assert!(msg.contains(&format!("table {table}")) && msg.contains(&format!("procedure {table}_sp3_lock")), "{msg}");
    assert!(!msg.contains(&env("SP_MYSQL_PASSWORD")), "{msg}");
    // create=auto makes all of it; then create=never is content.
    drop(open(&options::parse(&d.replace("&create=never", "")).unwrap()));
    let mut s = open(&options::parse(&d).unwrap());
    s.put(&id("x"), b"y", LIFE, None).unwrap();
    // The columns and indexes of the README's DDL.
    let mut c = admin();
    assert_eq!(columns(&mut c, &table), [
        "id varbinary(256)",
        "data longblob",
        "created double",
        "updated double",
        "expiry double",
        "user_id varbinary(1024)",
        "version bigint(20)",
        "client_ip varbinary(255)",
        "user_agent blob"
    ]);
    let idx: Vec<String> = c
        .exec("SELECT DISTINCT index_name FROM information_schema.statistics WHERE table_schema = DATABASE() AND table_name = ? ORDER BY 1", (&table,))
        .unwrap();
    assert_eq!(idx, ["PRIMARY".to_string(), format!("{table}_expiry"), format!("{table}_updated"), format!("{table}_user_id")]);
    // A procedure dropped behind our back is named too.
    c.query_drop(format!("DROP PROCEDURE {table}_sp3_write")).unwrap();
    let e = MysqlStore::open(&options::parse(&d).unwrap()).err().unwrap().to_string();
    assert!(e.contains(&format!("procedure {table}_sp3_write")) && !e.contains("table "), "{e}");
}

/// Workers starting at once on an empty database all get the table (DDL serialized).
#[test]
fn concurrent_first_use_creates_once() {
    let o = opts("&lock=row");
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let o = o.clone();
            std::thread::spawn(move || MysqlStore::open(&o).map(|_| ()))
        })
        .collect();
    for t in opens {
        t.join().unwrap().unwrap();
    }
}

#[test]
fn errors_name_the_server_without_the_password() {
    // Nothing listens on port 1.
    let o = options::parse("sp:hunter2@127.0.0.1:1/sp?connect_timeout=1").unwrap();
    let e = MysqlStore::open(&o).err().unwrap();
    assert_eq!((e.kind(), e.at()), (ErrorKind::Unavailable, "127.0.0.1:1"));
    assert!(e.to_string().contains("refused") && !e.to_string().contains("hunter2"), "{e}");
    // A wrong password.
    let o = options::parse(&format!("sp:wrong@127.0.0.1:{}/sp?sslmode=disable", env("SP_MYSQL_PORT"))).unwrap();
    let e = MysqlStore::open(&o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("Access denied") && !e.to_string().contains("wrong@"), "{e}");
    // A database that does not exist (or is not ours).
    let o = options::parse(&format!("sp:{}@127.0.0.1:{}/nosuchdb?sslmode=disable", env("SP_MYSQL_PASSWORD"), env("SP_MYSQL_PORT"))).unwrap();
    let e = MysqlStore::open(&o).err().unwrap();
    assert!(e.to_string().contains("nosuchdb") && e.kind() == ErrorKind::Unavailable, "{e}");
    // A socket that is not there.
    let o = options::parse("sp:hunter2@/sp?socket=/nonexistent/mysqld.sock").unwrap();
    let e = MysqlStore::open(&o).err().unwrap();
    assert_eq!((e.kind(), e.at()), (ErrorKind::Unavailable, "/nonexistent/mysqld.sock"), "{e}");
    assert!(!e.to_string().contains("hunter2"), "{e}");
}

/// A port that accepts and never speaks (not a MySQL server): the read timeout ends the greeting's
/// wait, about the connect timeout later.
#[test]
fn a_silent_server_costs_about_the_connect_timeout() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let o = options::parse(&format!("sp:x@127.0.0.1:{port}/sp?connect_timeout=1&sslmode=disable")).unwrap();
    let t0 = Instant::now();
    let e = MysqlStore::open(&o).err().unwrap();
    // The greeting's read is bounded by the connect timeout plus WAIT_SLICE (1 s + 1 s); 2 s of room.
    assert!(t0.elapsed() < Duration::from_secs(4), "{:?}", t0.elapsed());
    assert_eq!(e.kind(), ErrorKind::Timeout, "{e}");
    drop(l);
}

#[test]
fn gc_deletes_in_batches_and_keeps_fresh_sessions() {
    let (d, table) = dsn("");
    let o = options::parse(&d).unwrap();
    let mut s = MysqlStore::open(&o).unwrap();
    let n = super::GC_BATCH as usize * 2 + 7;
    let mut c = admin();
    c.query_drop("SET SESSION max_recursive_iterations = 100000").unwrap();
    c.exec_drop(
        format!("INSERT INTO {table} (id, data, created, updated, expiry, version) WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < ?) SELECT CONCAT('old', n), 'x', 0, 0, 0, 1 FROM g"),
        (n as u64,),
    )
    .unwrap();
    let keep = id("fresh");
    let mut b: Box<dyn Store> = Box::new(MysqlStore::open(&o).unwrap());
    b.put(&keep, b"x", LIFE, None).unwrap();
    use crate::store::Collect;
    assert_eq!(s.gc(Expiry::new(Duration::from_secs(60))).unwrap(), n as u64);
    assert!(b.has(&keep, LIFE).unwrap());
}

/// Symfony's table (schema=symfony): the contract, with Symfony's expiry rule (the writer's lifetime,
/// whole seconds) and a version made from the row.
#[test]
fn conformance_symfony_table() {
    let o = opts("&schema=symfony");
    crate::store::tests::conformance_ttl_collected(|| open(&o));
}

#[test]
fn symfony_table_layout_and_lock_key() {
    let (d, table) = dsn("&schema=symfony");
    let o = options::parse(&d).unwrap();
    let mut s = open(&o);
    s.put(&id("sfabcdefgh1"), b"a|i:1;", Duration::from_secs(100), None).unwrap();
    let mut c = admin();
    assert_eq!(columns(&mut c, &table), ["sess_id varbinary(128)", "sess_data longblob", "sess_lifetime int(10) unsigned", "sess_time int(10) unsigned"]);
    let r: (Vec<u8>, i64) = c.query_first(format!("SELECT sess_data, sess_lifetime - sess_time FROM {table} WHERE sess_id = 'sfabcdefgh1'")).unwrap().unwrap();
    assert_eq!(r, (b"a|i:1;".to_vec(), 100));
    // Symfony's legacy rows (sess_lifetime relative) are read too.
    c.query_drop(format!("INSERT INTO {table} VALUES ('legacy1', 'x', 3600, UNIX_TIMESTAMP())")).unwrap();
    assert_eq!(s.get(&id("legacy1"), LIFE).unwrap().as_deref(), Some(&b"x"[..]));
    // The lock name is Symfony's (the id's first 64 characters), so its LOCK_ADVISORY requests wait for ours.
    let t = Token::new();
    assert!(matches!(s.lock(&id("sfabcdefgh1"), &t, LIFE, LIFE).unwrap(), Got::Locked(Some(_))));
    let free = |c: &mut mysql::Conn| c.query_first::<i64, _>("SELECT IS_FREE_LOCK('sfabcdefgh1')").unwrap().unwrap();
    assert_eq!(free(&mut c), 0);
    s.unlock(&id("sfabcdefgh1"), &t).unwrap();
    assert_eq!(free(&mut c), 1);
}

/// lock=row (for poolers that multiplex connections): lock rows with owner and expiry, as SQLite's.
#[test]
fn conformance_lock_rows() {
    let o = opts("&lock=row");
    assert!(!conformance(|| open(&o)));
    let o = opts("&lock=row");
    expiring_locks(|| open(&o));
    let o = opts("&lock=row");
    dead_holder_locks(|| open(&o));
}

/// With lock rows every step is one CALL: no GET_LOCK and no open transaction is left on the
/// connection between them (what a multiplexing pooler needs).
#[test]
fn lock_rows_hold_nothing_on_the_connection() {
    let (d, table) = dsn("&lock=row");
    let o = options::parse(&d).unwrap();
    let mut s = MysqlStore::open(&o).unwrap();
    let t = Token::new();
    assert!(matches!(s.lock_and_load(&id("rowlock"), &t, LIFE, ex()).unwrap(), Acquire::Locked(None)));
    let cid = s.conn.connection_id();
    let mut c = admin();
    let trx: i64 = c.exec_first("SELECT COUNT(*) FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = ?", (cid,)).unwrap().unwrap();
    let locks: i64 = c.exec_first("SELECT COUNT(*) FROM information_schema.metadata_lock_info WHERE thread_id = ? AND lock_type LIKE '%user lock%'", (cid,)).unwrap_or(Some(0)).unwrap();
    assert_eq!((trx, locks), (0, 0), "no transaction open, no user lock");
    let owner: Vec<u8> = c.query_first(format!("SELECT owner FROM {table}_locks WHERE id = 'rowlock'")).unwrap().unwrap();
    assert_eq!(owner, t.as_str().as_bytes());
    let mut s: Box<dyn Store> = Box::new(s);
    assert_eq!(s.put(&id("rowlock"), b"x", LIFE, Some(&t)).unwrap(), W::Done);
    assert_eq!(c.query_first::<i64, _>(format!("SELECT COUNT(*) FROM {table}_locks")).unwrap().unwrap(), 0);
}

/// With advisory locks, lock and read is one round trip, and write and release one.
#[test]
fn one_round_trip_per_step() {
    let o = opts("");
    let mut s: Box<dyn Store> = open(&o);
    let sid = id("trips");
    let t = Token::new();
    // Once to prepare each statement.
    let Acquire::Locked(_) = s.lock_and_load(&sid, &t, LIFE, ex()).unwrap() else { panic!() };
    s.put(&sid, b"a", LIFE, Some(&t)).unwrap();
    let before = s.round_trips();
    let Acquire::Locked(Some(_)) = s.lock_and_load(&sid, &t, LIFE, ex()).unwrap() else { panic!() };
    assert_eq!(s.round_trips() - before, 1);
    assert_eq!(s.put(&sid, b"b", LIFE, Some(&t)).unwrap(), W::Done);
    assert_eq!(s.round_trips() - before, 2);
}

#[test]
fn users_index() {
    let o = opts("");
    crate::store::users_tests::users_conformance(|| open(&o), "my", true);
    let o = opts("&lock=row");
    crate::store::users_tests::users_conformance(|| open(&o), "myr", true);
    assert!(open(&opts("&schema=symfony")).users().is_none(), "Symfony's table has no user column");
}

/// Every write path answers the version a read then finds, and a refused one what is stored: without
/// a lock to release each is one plain statement (its version from the OK packet), under the lock one
/// statement in the write procedure, and a create the procedure's transaction.
#[test]
fn every_write_path_answers_the_stored_version() {
    let o = opts("");
    let mut s = open(&o);
    let e = ex();
    let stored = |s: &mut Box<dyn Store>, sid: &SessionId| s.load(sid, e).unwrap();
    let at = |d: &[u8], v| Some(Loaded { data: d.to_vec(), version: v });
    for locked in [false, true] {
        let sid = id(&format!("paths{locked}"));
        // One step, under a lock of its own when `locked` (the write releases it).
        let save = |s: &mut Box<dyn Store>, d: &[u8], expect: Expect| {
            let t = Token::new();
            if locked {
                assert!(matches!(s.lock_and_load(&sid, &t, LIFE, e).unwrap(), Acquire::Locked(_)), "locked={locked}");
            }
            s.save(&sid, d, expect, locked.then_some(&t), e).unwrap()
        };
        let done = |w: Written| match w {
            Written::Done(v) => v,
            other => panic!("locked={locked}: {other:?}"),
        };
        // Any: a new row (its random version), then the existing one (the version moved).
        let v1 = done(save(&mut s, b"a", Expect::Any));
        assert_eq!(stored(&mut s, &sid), at(b"a", v1), "locked={locked}: inserted");
        let v2 = done(save(&mut s, b"b", Expect::Held(None)));
        assert!(v2 != v1);
        assert_eq!(stored(&mut s, &sid), at(b"b", v2), "locked={locked}: upserted");
        // Under the lock with the row read, and at a version.
        let v3 = done(save(&mut s, b"c", Expect::Held(Some(v2))));
        assert!(v3 != v2);
        assert_eq!(stored(&mut s, &sid), at(b"c", v3), "locked={locked}: held");
        let v4 = done(save(&mut s, b"d", Expect::Version(v3)));
        assert!(v4 != v3);
        assert_eq!(stored(&mut s, &sid), at(b"d", v4), "locked={locked}: at a version");
        assert_eq!(save(&mut s, b"stale", Expect::Version(v3)), Written::Conflict(at(b"d", v4)), "locked={locked}");
        // A touch keeps data and version; a destroyed row is not revived by a late held write.
        if locked {
            let t = Token::new();
            assert!(matches!(s.lock_and_load(&sid, &t, LIFE, e).unwrap(), Acquire::Locked(_)));
            s.touch(&sid, Some(&t), e).unwrap();
        } else {
            s.touch(&sid, None, e).unwrap();
        }
        assert_eq!(stored(&mut s, &sid), at(b"d", v4), "locked={locked}: touched");
        s.destroy(&sid, None).unwrap();
        assert_eq!(stored(&mut s, &sid), None, "locked={locked}: destroyed");
        assert_eq!(save(&mut s, b"late", Expect::Held(Some(v4))), Written::Conflict(None), "locked={locked}");
        assert_eq!(save(&mut s, b"late", Expect::Version(v4)), Written::Conflict(None), "locked={locked}");
        assert_eq!(stored(&mut s, &sid), None, "locked={locked}: a refused write stores nothing");
        let v5 = done(save(&mut s, b"e", Expect::Absent));
        assert_eq!(stored(&mut s, &sid), at(b"e", v5), "locked={locked}: created");
    }
}

/// A pooled connection that the server closed while idle (`KILL CONNECTION`, as `wait_timeout` or a
/// restart do) is replaced when the pool hands it out: the next request works, with no error. Run by
/// the pool's tests: `pool_for` gives its `take` and `give` for a stack of these options (the pool is
/// above the engines in the import graph).
pub(crate) fn pooled_connection_killed<T, G>(pool_for: impl FnOnce(MysqlOptions) -> (T, G))
where
    T: Fn() -> crate::store::Result<Box<dyn Store>>,
    G: Fn(Box<dyn Store>),
{
    let o = opts("");
    let (take, give) = pool_for(o.clone());
    let sid = id("pooled");
    let mut c = admin();
    let s = MysqlStore::open(&o).unwrap();
    let cid = s.conn.connection_id();
    // A live connection, used, is still valid (it would be replaced at every request otherwise).
    let mut b: Box<dyn Store> = Box::new(s);
    b.put(&sid, b"one", LIFE, None).unwrap();
    give(b);
    // (The server's id of the last statement each connection ran.)
    let last_query = |c: &mut mysql::Conn| c.exec_first::<i64, _, _>("SELECT query_id FROM information_schema.processlist WHERE id = ?", (cid,)).unwrap();
    let q0 = last_query(&mut c).unwrap();
    let mut b = take().unwrap();
    assert_eq!(b.get(&sid, LIFE).unwrap().as_deref(), Some(&b"one"[..]));
    assert!(last_query(&mut c).unwrap() > q0, "the pooled connection was reused for the read");
    give(b);
    c.query_drop(format!("KILL CONNECTION {cid}")).unwrap();
    // KILL returns at once; the connection's thread closes it a moment later (bounded: 10 s).
    let t0 = Instant::now();
    while c.exec_first::<i64, _, _>("SELECT COUNT(*) FROM information_schema.processlist WHERE id = ?", (cid,)).unwrap() != Some(0) {
        assert!(t0.elapsed() < Duration::from_secs(10), "connection {cid} not closed by the server");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut b = take().unwrap();
    let t = Token::new();
    assert!(matches!(b.lock(&sid, &t, LIFE, LIFE).unwrap(), Got::Locked(Some(_))));
    assert_eq!(b.put(&sid, b"two", LIFE, Some(&t)).unwrap(), W::Done);
    assert_eq!(b.get(&sid, LIFE).unwrap().as_deref(), Some(&b"two"[..]));
}

/// The check the pool asks (a peek at the socket), on each kind of connection: TCP, TLS, the unix
/// socket: a live connection is valid, one the server killed is not.
#[test]
fn a_killed_connection_is_not_still_valid() {
    let sid = id("killed");
    let mut c = admin();
    let (d, _) = dsn("");
    let sock = env("SP_MYSQL_SOCKET");
    let over_socket = format!("{}:{}@/{}", env("SP_MYSQL_USER"), env("SP_MYSQL_PASSWORD"), d.split_once('/').unwrap().1.replace("sslmode=disable", &format!("socket={sock}")));
    for d in [d.clone(), d.replace("sslmode=disable", "sslmode=require"), over_socket] {
        let o = options::parse(&d).unwrap();
        let mut s = MysqlStore::open(&o).unwrap();
        s.save(&sid, b"x", Expect::Any, None, ex()).unwrap();
        assert!(s.still_valid(), "{d}: a live connection");
        c.query_drop(format!("KILL CONNECTION {}", s.conn.connection_id())).unwrap();
        let t0 = Instant::now();
        while s.still_valid() {
            assert!(t0.elapsed() < Duration::from_secs(10), "{d}: a killed connection still looks valid");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
