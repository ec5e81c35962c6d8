//! Against the live PostgreSQL that scripts/services/pgsql.sh starts (SP_PG_PORT, SP_PG_USER, …).

use std::time::Duration;

use super::options::{self, PgsqlOptions};
use super::PgsqlStore;
use crate::id::SessionId;
use crate::lock::Token;
use crate::store::tests::{conformance, dead_holder_locks, expiring_locks, woken_at_release, Got, Ops, W};
use crate::store::{Acquire, ErrorKind, Expiry, Store};

const LIFE: Duration = Duration::from_secs(3600);

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests with `make test` (scripts/test.sh starts PostgreSQL)"))
}

/// The test server's DSN up to the query, with a table of its own (tests run in parallel).
pub(crate) fn dsn(query: &str) -> (String, String) {
    let table = format!("t_{}", Token::new().as_str().to_ascii_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "_"));
    let table: String = table.chars().take(40).collect();
    let d = format!(
        "{}:{}@127.0.0.1:{}/{}?table={table}&sslmode=disable{query}",
        env("SP_PG_USER"),
        env("SP_PG_PASSWORD"),
        env("SP_PG_PORT"),
        env("SP_PG_DB")
    );
    (d, table)
}

fn opts(query: &str) -> PgsqlOptions {
    options::parse(&dsn(query).0).unwrap()
}

fn open(o: &PgsqlOptions) -> Box<dyn Store> {
    Box::new(PgsqlStore::open(o).unwrap())
}

fn id(s: &str) -> SessionId {
    SessionId::parse(s.as_bytes()).unwrap()
}

fn ex() -> Expiry {
    Expiry::new(LIFE)
}

/// A superuser connection to the test database (over the state dir's unix socket is not known here:
/// TCP as postgres, which pg_hba trusts on 127.0.0.1).
fn admin() -> postgres::Client {
    postgres::Config::new()
        .host("127.0.0.1")
        .port(env("SP_PG_PORT").parse().unwrap())
        .user("postgres")
        .dbname(&env("SP_PG_DB"))
        .connect(postgres::NoTls)
        .unwrap()
}

/// "name type" of each column of `table`, in order.
fn columns(c: &mut postgres::Client, table: &str) -> Vec<String> {
    c.query("SELECT column_name || ' ' || data_type FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position", &[&table])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[test]
fn conformance_tcp() {
    let o = opts("");
    let raced = conformance(|| open(&o));
    assert!(!raced, "gc deletes in one statement: no window between reading and deleting");
}

#[test]
fn conformance_tls_require() {
    // The server has TLS on: require takes it without checking the certificate (libpq's meaning).
    let (d, _) = dsn("");
    let o = options::parse(&d.replace("sslmode=disable", "sslmode=require")).unwrap();
    assert!(uses_tls(&o));
    let raced = conformance(|| open(&o));
    assert!(!raced);
    assert!(!uses_tls(&options::parse(&d).unwrap()), "sslmode=disable is plain TCP");
}

/// Whether a connection made with `o` runs over TLS, as the server sees it.
fn uses_tls(o: &PgsqlOptions) -> bool {
    let mut s = PgsqlStore::open(o).unwrap();
    s.client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).unwrap().get(0)
}

#[test]
fn tls_verify_full_checks_the_certificate() {
    let (d, _) = dsn("");
    let ca = env("SP_PG_CA");
    // The test CA signed the server's certificate for 127.0.0.1 and localhost.
    for host in ["127.0.0.1", "localhost"] {
        let o = options::parse(&d.replace("sslmode=disable", &format!("sslmode=verify-full&sslrootcert={ca}")).replace("127.0.0.1", host)).unwrap();
        assert!(uses_tls(&o), "{host}");
    }
    // Without the CA (the system's do not know it), the server is refused, and the warning says why.
    let o = options::parse(&d.replace("sslmode=disable", "sslmode=verify-full")).unwrap();
    let e = PgsqlStore::open(&o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.to_string().contains("certificate verify failed"), "{e}");
    // A CA file that is not there is named.
    let o = options::parse(&d.replace("sslmode=disable", "sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")).unwrap();
    let e = PgsqlStore::open(&o).err().unwrap();
    assert!(e.to_string().contains("/nonexistent/ca.pem") && e.at() == "/nonexistent/ca.pem", "{e}");
}

#[test]
fn waiter_is_woken_at_the_release() {
    let o = opts("");
    let s = id("wakeme");
    let (mut a, mut b, tb) = woken_at_release(open(&o), open(&o), &s);
    b.unlock(&s, &tb).unwrap();
    // The lock is free again: a takes it at once.
    assert!(matches!(a.lock(&s, &Token::new(), LIFE, LIFE).unwrap(), Got::Locked(_)));
}

/// A wait bounded by the deadline: the server's lock_timeout ends it, close to the deadline.
#[test]
fn wait_ends_at_the_deadline() {
    let o = opts("");
    crate::store::tests::wait_ends_at_the_deadline(|| open(&o));
}

/// A holder whose connection closed (a killed worker) leaves no lock behind.
#[test]
fn a_closed_connection_frees_its_lock() {
    let o = opts("");
    crate::store::tests::closed_connection_frees_its_lock(|| open(&o));
}

/// The write and the release are one step, and the next holder reads that write (not the data before
/// it): 4 threads × 100 increments of a counter, each under the lock.
#[test]
fn increments_under_the_lock_are_never_lost() {
    let o = opts("");
    crate::store::tests::increments_under_the_lock_are_never_lost(move || open(&o));
}

#[test]
fn create_never_names_what_is_missing_and_auto_creates_it() {
    let (d, table) = dsn("&create=never");
    let e = PgsqlStore::open(&options::parse(&d).unwrap()).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    let msg = e.to_string();
    assert!(msg.contains(&format!("table {table}")) && msg.contains(&format!("function {table}_sp2_lock")), "{msg}");
    assert!(!msg.contains(&env("SP_PG_PASSWORD")), "{msg}");
    // create=auto makes all of it; then create=never is content.
    drop(open(&options::parse(&d.replace("&create=never", "")).unwrap()));
    let mut s = open(&options::parse(&d).unwrap());
    s.put(&id("x"), b"y", LIFE, None).unwrap();
    // The columns and indexes of the README's DDL.
    let mut c = admin();
    let cols = columns(&mut c, &table);
    assert_eq!(cols, [
        "id text",
        "data bytea",
        "created double precision",
        "updated double precision",
        "expiry double precision",
        "user_id text",
        "version bigint"
    ]);
    let idx: Vec<String> = c.query("SELECT indexname FROM pg_indexes WHERE tablename = $1 ORDER BY 1", &[&table]).unwrap().iter().map(|r| r.get(0)).collect();
    assert_eq!(idx, [format!("{table}_expiry"), format!("{table}_pkey"), format!("{table}_updated"), format!("{table}_user_id")]);
    // A function dropped behind our back is named too.
    c.batch_execute(&format!("DROP FUNCTION {table}_sp2_wait")).unwrap();
    let e = PgsqlStore::open(&options::parse(&d).unwrap()).err().unwrap().to_string();
    assert!(e.contains(&format!("function {table}_sp2_wait")) && !e.contains("table "), "{e}");
}

/// Workers starting at once on an empty database all get the table (DDL serialized).
#[test]
fn concurrent_first_use_creates_once() {
    let o = opts("");
    let opens: Vec<_> = (0..8).map(|_| {
        let o = o.clone();
        std::thread::spawn(move || PgsqlStore::open(&o).map(|_| ()))
    }).collect();
    for t in opens {
        t.join().unwrap().unwrap();
    }
}

#[test]
fn errors_name_the_server_without_the_password() {
    // Nothing listens on port 1.
    let o = options::parse("sp:hunter2@127.0.0.1:1/sp?connect_timeout=1").unwrap();
    let e = PgsqlStore::open(&o).err().unwrap();
    assert_eq!((e.kind(), e.at()), (ErrorKind::Unavailable, "127.0.0.1:1"));
    assert!(e.to_string().contains("refused") && !e.to_string().contains("hunter2"), "{e}");
    // A wrong password.
    let o = options::parse(&format!("sp:wrong@127.0.0.1:{}/sp?sslmode=disable", env("SP_PG_PORT"))).unwrap();
    let e = PgsqlStore::open(&o).err().unwrap();
    assert_eq!(e.kind(), ErrorKind::Unavailable);
    assert!(e.to_string().contains("password authentication failed") && !e.to_string().contains("wrong@"), "{e}");
    // A database that does not exist.
    let o = options::parse(&format!("sp:{}@127.0.0.1:{}/nosuchdb?sslmode=disable", env("SP_PG_PASSWORD"), env("SP_PG_PORT"))).unwrap();
    let e = PgsqlStore::open(&o).err().unwrap();
    assert!(e.to_string().contains("nosuchdb") && e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn gc_deletes_in_batches_and_keeps_fresh_sessions() {
    let (d, table) = dsn("");
    let o = options::parse(&d).unwrap();
    let mut s = PgsqlStore::open(&o).unwrap();
    let n = super::GC_BATCH as usize * 2 + 7;
    admin()
        .execute(
            &format!("INSERT INTO {table} (id, data, created, updated, expiry, version) SELECT 'old' || g, '\\x00', 0, 0, 0, 1 FROM generate_series(1, $1) AS g"),
            &[&(n as i32)],
        )
        .unwrap();
    let keep = id("fresh");
    let mut b: Box<dyn Store> = Box::new(PgsqlStore::open(&o).unwrap());
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
    let cols = columns(&mut c, &table);
    assert_eq!(cols, ["sess_id character varying", "sess_data bytea", "sess_lifetime integer", "sess_time integer"]);
    let r = c.query_one(&format!("SELECT sess_data, sess_lifetime - sess_time FROM {table} WHERE sess_id = 'sfabcdefgh1'"), &[]).unwrap();
    assert_eq!((r.get::<_, Vec<u8>>(0), r.get::<_, i32>(1)), (b"a|i:1;".to_vec(), 100));
    // Symfony's legacy rows (sess_lifetime relative) are read too.
    c.execute(&format!("INSERT INTO {table} VALUES ('legacy1', 'x', 3600, extract(epoch FROM now())::int)"), &[]).unwrap();
    assert_eq!(s.get(&id("legacy1"), LIFE).unwrap().as_deref(), Some(&b"x"[..]));
    // The lock key is Symfony's (first 8 bytes, little-endian), so its LOCK_ADVISORY requests wait for ours.
    let t = Token::new();
    assert!(matches!(s.lock(&id("sfabcdefgh1"), &t, LIFE, LIFE).unwrap(), Got::Locked(Some(_))));
    let key = i64::from_le_bytes(*b"sfabcdef");
    assert!(!c.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).unwrap().get::<_, bool>(0));
    s.unlock(&id("sfabcdefgh1"), &t).unwrap();
    assert!(c.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).unwrap().get::<_, bool>(0));
}

/// lock=row (for pgBouncer in transaction mode): lock rows with owner and expiry, as SQLite's.
#[test]
fn conformance_lock_rows() {
    let o = opts("&lock=row");
    assert!(!conformance(|| open(&o)));
    let o = opts("&lock=row");
    expiring_locks(|| open(&o));
    let o = opts("&lock=row");
    dead_holder_locks(|| open(&o));
}

/// With lock rows every step is one statement: no advisory lock and no open transaction is left on
/// the connection between them (what a transaction-mode pooler needs), and the write and release
/// commit together (the increments test, with lock rows).
#[test]
fn lock_rows_hold_nothing_on_the_connection() {
    let (d, table) = dsn("&lock=row");
    let o = options::parse(&d).unwrap();
    let mut s = PgsqlStore::open(&o).unwrap();
    let t = Token::new();
    assert!(matches!(s.lock_and_load(&id("rowlock"), &t, LIFE, ex()).unwrap(), Acquire::Locked(None)));
    let pid: i32 = s.client.query_one("SELECT pg_backend_pid()", &[]).unwrap().get(0);
    let r = admin()
        .query_one("SELECT (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1), (SELECT state FROM pg_stat_activity WHERE pid = $1)", &[&pid])
        .unwrap();
    assert_eq!((r.get::<_, i64>(0), r.get::<_, String>(1).as_str()), (0, "idle"), "no advisory lock, no transaction open");
    let owner: String = admin().query_one(&format!("SELECT owner FROM {table}_locks WHERE id = 'rowlock'"), &[]).unwrap().get(0);
    assert_eq!(owner, t.as_str());
    let mut s: Box<dyn Store> = Box::new(s);
    assert_eq!(s.put(&id("rowlock"), b"x", LIFE, Some(&t)).unwrap(), W::Done);
    assert_eq!(admin().query_one(&format!("SELECT count(*) FROM {table}_locks"), &[]).unwrap().get::<_, i64>(0), 0);
}

/// The per-user index (issue 13) on the native table, with advisory locks and with lock rows: the
/// engine's `end` leaves a session ended also while another connection holds its lock.
#[test]
fn users_conformance_advisory_and_lock_rows() {
    let o = opts("");
    crate::store::users_tests::users_conformance(|| open(&o), "pa", true);
    let o = opts("&lock=row");
    crate::store::users_tests::users_conformance(|| open(&o), "pr", true);
}

/// Symfony's table has no user column: no index (the session layer warns that the store keeps none).
#[test]
fn symfony_table_keeps_no_user_index() {
    let mut s = open(&opts("&schema=symfony"));
    assert!(s.users().is_none());
}

/// A request whose binding does not change makes no round trip for it: the read brought the
/// binding (`bound` answers from it); a binding is one round trip.
#[test]
fn bound_comes_with_the_read_and_a_bind_is_one_round_trip() {
    use crate::store::users::User;
    for q in ["", "&lock=row"] {
        let o = opts(q);
        let (mut a, mut b) = (open(&o), open(&o));
        let (s, alice) = (id("boundread"), User::new(b"alice").unwrap());
        a.put(&s, b"x|i:1;", LIFE, None).unwrap();
        a.users().unwrap().bind(&s, Some(&alice), None, ex()).unwrap();
        // A fresh handle: the index's first use checked its columns; then a bind is one trip.
        b.users().unwrap().bound(&id("other"), ex()).unwrap();
        b.users().unwrap().bind(&id("other"), None, None, ex()).unwrap();
        let t0 = b.round_trips();
        b.users().unwrap().bind(&id("other"), None, None, ex()).unwrap();
        assert_eq!(b.round_trips() - t0, 1, "a bind is one round trip ({q})");
        b.event(&crate::store::Event::Started);
        let t = Token::new();
        assert!(matches!(b.lock_and_load(&s, &t, LIFE, ex()).unwrap(), Acquire::Locked(Some(_))));
        let t0 = b.round_trips();
        assert_eq!(b.users().unwrap().bound(&s, ex()).unwrap(), Some(alice.clone()), "{q}");
        assert_eq!(b.round_trips(), t0, "bound answered from the locked read ({q})");
        b.unlock(&s, &t).unwrap();
        b.event(&crate::store::Event::Started);
        b.load(&s, ex()).unwrap();
        let t0 = b.round_trips();
        assert_eq!(b.users().unwrap().bound(&s, ex()).unwrap(), Some(alice.clone()));
        assert_eq!(b.round_trips(), t0, "bound answered from the unlocked read ({q})");
        // Rebound elsewhere since: a new request reads it again and sees the new binding.
        a.users().unwrap().bind(&s, None, None, ex()).unwrap();
        b.event(&crate::store::Event::Started);
        b.load(&s, ex()).unwrap();
        assert_eq!(b.users().unwrap().bound(&s, ex()).unwrap(), None, "{q}");
    }
}

/// An expired row that a write replaces is a new session: bound to nobody, created now.
#[test]
fn an_expired_session_written_again_is_unbound() {
    use crate::store::users::User;
    let o = opts("");
    let mut a = open(&o);
    let alice = User::new(b"alice").unwrap();
    let short = Expiry::new(Duration::from_secs(1));
    for (n, expect) in [("exp1", crate::store::Expect::Any), ("exp2", crate::store::Expect::Absent)] {
        let s = id(n);
        a.save(&s, b"x|i:1;", crate::store::Expect::Any, None, short).unwrap();
        a.users().unwrap().bind(&s, Some(&alice), None, short).unwrap();
        std::thread::sleep(Duration::from_millis(1100));
        assert!(matches!(a.save(&s, b"y|i:2;", expect, None, short).unwrap(), crate::store::Written::Done(_)));
        a.event(&crate::store::Event::Started);
        assert_eq!(a.users().unwrap().bound(&s, short).unwrap(), None, "{n}");
        assert!(a.users().unwrap().list(&alice, short).unwrap().is_empty(), "{n}");
    }
}

/// create=never: the index's columns and table are named when missing, never made.
#[test]
fn create_never_names_what_the_index_lacks() {
    use crate::store::users::User;
    let (d, table) = dsn("");
    drop(open(&options::parse(&d).unwrap()));
    let mut s = open(&options::parse(&format!("{d}&create=never")).unwrap());
    let e = s.users().unwrap().list(&User::new(b"alice").unwrap(), ex()).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains(&format!("column {table}.client_ip")) && msg.contains(&format!("table {table}_meta")), "{msg}");
    assert!(!columns(&mut admin(), &table).iter().any(|c| c.starts_with("client_ip")), "nothing made");
    // create=auto adds them to the existing table.
    let mut s = open(&options::parse(&d).unwrap());
    assert!(s.users().unwrap().list(&User::new(b"alice").unwrap(), ex()).unwrap().is_empty());
    assert!(columns(&mut admin(), &table).ends_with(&["client_ip text".to_string(), "user_agent text".to_string()]));
}
