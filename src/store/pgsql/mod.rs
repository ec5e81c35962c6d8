//! PostgreSQL: one table (`schema=native`), a session's lock a server-side advisory lock.
//!
//! `lock=advisory` (the default): `pg_advisory_lock` on a key derived from the table and the session
//! id, a session-level lock held on this worker's connection from read to write. The server frees it
//! when the connection closes (a killed PHP worker's lock is free at once) and wakes a waiter when it
//! is released (`wait_for_release` blocks in the server, bounded by `lock_timeout`, no polling).
//!
//! Each step of the contract is one round trip: a PL/pgSQL function per step, created with the table
//! (`create=auto`). Inside a VOLATILE function every statement reads a fresh snapshot, so
//! - lock and read: `pg_try_advisory_lock`, then the read, which sees every write committed before
//!   the lock was ours;
//! - write and release: the write takes the transaction-level advisory lock on the same key, then
//!   releases the session-level one: a waiter gets the lock only when the write's transaction has
//!   committed (a plain `pg_advisory_unlock` in the writing statement would hand the lock over
//!   before the commit, and the next holder would read the old data).
//!
//! No transaction is held open across a request: every statement is its own (autocommit).
//!
//! Versions are a column, bumped by the statement that writes, checked in its WHERE clause; a new row
//! starts at a random version (a destroyed and recreated session never comes back at an old one).
//! Times are the server's clock (`clock_timestamp()`), so web servers with skewed clocks agree.

pub mod options;
mod scan;
mod users;

use std::time::{Duration, Instant};

use postgres::types::ToSql;
use postgres::{Client, NoTls, Statement};

pub use options::PgsqlOptions;
use super::sqlopts::{LockMode, Schema, SslMode};
use super::{Acquire, Busy, Collect, ErrorKind, Expect, Expiry, Loaded, Pooled, Result, Store, StoreError};
use super::{Touched, Written};
use super::sqlshared::{sql_version, version_of};
use crate::id::SessionId;
use crate::lock::Token;

/// Rows deleted per gc statement: small enough that no writer waits behind one.
pub const GC_BATCH: i64 = 500;

/// Suffix of the helper functions' names; bumped when their code changes, so that an old deployment's
/// functions are never called with new arguments.
const FN_TAG: &str = "sp2";

/// The DDL of the native table; `{t}` is the table name (README: "PostgreSQL").
pub const NATIVE_DDL: &str = "
CREATE TABLE IF NOT EXISTS {t} (
    id      text PRIMARY KEY,            -- session id, [a-zA-Z0-9,-]{1,256}
    data    bytea NOT NULL,              -- the encoded session, bytes as PHP gave them
    created double precision NOT NULL,   -- unix time (s, server clock) of the first write
    updated double precision NOT NULL,   -- unix time of the last write or timestamp update
    expiry  double precision NOT NULL,   -- updated + the writer's session.gc_maxlifetime
    user_id text,                        -- for a per-user session index; NULL today
    version bigint NOT NULL              -- bumped by every write; a write may expect the one it read
);
CREATE INDEX IF NOT EXISTS {t}_updated ON {t} (updated);
CREATE INDEX IF NOT EXISTS {t}_expiry ON {t} (expiry);
CREATE INDEX IF NOT EXISTS {t}_user_id ON {t} (user_id);
";

/// The step functions (see the module comment). `{t}` the table, `{f}` the function prefix.
const NATIVE_FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION {f}_write(k bigint, rel boolean, op int, sid text, d bytea, want bigint, life float8)
RETURNS TABLE (ok boolean, nv bigint, cd bytea, cv bigint) LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    t0 float8 := extract(epoch FROM clock_timestamp());
    r bigint;
BEGIN
    IF rel THEN
        -- Held until this transaction commits: nobody gets the lock before the write is visible.
        PERFORM pg_advisory_xact_lock(k);
        PERFORM pg_advisory_unlock(k);
    END IF;
    IF op = 0 THEN      -- any, or under our lock
        INSERT INTO {t} AS s (id, data, created, updated, expiry, version)
            VALUES (sid, d, t0, t0, t0 + life, (random() * 4e18)::bigint)
            ON CONFLICT (id) DO UPDATE SET data = excluded.data, updated = excluded.updated,
                expiry = excluded.expiry, version = s.version + 1,
                -- An expired row overwritten is a new session: created now, bound to nobody.
                created = CASE WHEN s.updated < t0 - life THEN excluded.created ELSE s.created END,
                user_id = CASE WHEN s.updated < t0 - life THEN NULL ELSE s.user_id END
            RETURNING s.version INTO r;
    ELSIF op = 1 THEN   -- absent: an expired row counts as absent (and its binding goes with it)
        INSERT INTO {t} AS s (id, data, created, updated, expiry, version)
            VALUES (sid, d, t0, t0, t0 + life, (random() * 4e18)::bigint)
            ON CONFLICT (id) DO UPDATE SET data = excluded.data, created = excluded.created,
                updated = excluded.updated, expiry = excluded.expiry, version = s.version + 1,
                user_id = NULL
            WHERE s.updated < t0 - life
            RETURNING s.version INTO r;
    ELSIF op = 5 THEN   -- under our lock, the session read present: only while its row is still there
        -- (ended meanwhile by destroy_user_sessions, which cannot take our advisory lock: refused,
        -- so that the late write does not bring it back)
        UPDATE {t} AS s SET data = d, updated = t0, expiry = t0 + life, version = s.version + 1
            WHERE s.id = sid
            RETURNING s.version INTO r;
    ELSIF op = 2 THEN   -- this version
        UPDATE {t} AS s SET data = d, updated = t0, expiry = t0 + life, version = s.version + 1
            WHERE s.id = sid AND s.version = want AND s.updated >= t0 - life
            RETURNING s.version INTO r;
    ELSIF op = 3 THEN   -- touch
        UPDATE {t} AS s SET updated = t0, expiry = t0 + life WHERE s.id = sid;
        RETURN QUERY SELECT true, NULL::bigint, NULL::bytea, NULL::bigint;
        RETURN;
    ELSE                -- destroy
        DELETE FROM {t} AS s WHERE s.id = sid;
        RETURN QUERY SELECT true, NULL::bigint, NULL::bytea, NULL::bigint;
        RETURN;
    END IF;
    IF r IS NOT NULL THEN
        RETURN QUERY SELECT true, r, NULL::bytea, NULL::bigint;
        RETURN;
    END IF;
    -- Refused: what is stored now (a fresh snapshot: this statement's own).
    RETURN QUERY SELECT false, NULL::bigint, s.data, s.version FROM (SELECT 1) AS one
        LEFT JOIN {t} AS s ON s.id = sid AND s.updated >= t0 - life;
END $fn$;
"#;

/// Lock and read (both schemas): `{id}`, `{data}`, `{ver}` and `{live}` name the schema's columns,
/// its version and its liveness rule over the row alias `s`.
const LOCK_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION {f}_lock(k bigint, sid text, life float8)
RETURNS TABLE (got boolean, d bytea, v bigint, u text) LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    IF NOT pg_try_advisory_lock(k) THEN
        RETURN QUERY SELECT false, NULL::bytea, NULL::bigint, NULL::text;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, s.{data}, {ver}, {user} FROM (SELECT 1) AS one
        LEFT JOIN {t} AS s ON s.{id} = sid AND {live};
END $fn$;
"#;

/// The native table's version and liveness (the reader's lifetime `life`), for `LOCK_FUNCTION`.
const NATIVE_VER: &str = "s.version";
const NATIVE_LIVE: &str = "s.updated >= extract(epoch FROM clock_timestamp()) - life";

/// Waits (bounded by lock_timeout) until the advisory lock `k` is free; true when it was.
const WAIT_FUNCTION: &str = r#"
CREATE OR REPLACE FUNCTION {f}_wait(k bigint, ms int) RETURNS boolean LANGUAGE plpgsql VOLATILE AS $fn$
BEGIN
    PERFORM set_config('lock_timeout', greatest(ms, 1)::text, true);
    BEGIN
        PERFORM pg_advisory_lock(k);
        PERFORM pg_advisory_unlock(k);
        RETURN true;
    EXCEPTION WHEN lock_not_available THEN
        RETURN false;
    END;
END $fn$;
"#;

/// `lock=row`: the lock table and the step functions that use it (the data steps are the native
/// write function's, called with `rel = false`). For connection poolers in transaction mode
/// (pgBouncer), where a session-level advisory lock is not ours on the next statement: every step is
/// one statement, its own transaction. The lock row's delete and the write commit together; a waiter's
/// insert of its lock row waits for that commit, and its read (the next statement) sees the write.
const ROW_DDL: &str = "
CREATE TABLE IF NOT EXISTS {t}_locks (
    id      text PRIMARY KEY,            -- session id
    owner   text NOT NULL,               -- token of the request holding the lock
    expires double precision NOT NULL    -- unix time (s, server clock) after which it may be taken over
);
";

const ROW_FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION {f}_rlock(sid text, life float8, own text, lexp float8)
RETURNS TABLE (got boolean, d bytea, v bigint, left_s float8, u text) LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    t0 float8 := extract(epoch FROM clock_timestamp());
    n int;
BEGIN
    INSERT INTO {t}_locks AS l (id, owner, expires) VALUES (sid, own, t0 + lexp)
        ON CONFLICT (id) DO UPDATE SET owner = excluded.owner, expires = excluded.expires WHERE l.expires < t0;
    GET DIAGNOSTICS n = ROW_COUNT;
    IF n = 0 THEN
        RETURN QUERY SELECT false, NULL::bytea, NULL::bigint, (SELECT l.expires - t0 FROM {t}_locks AS l WHERE l.id = sid), NULL::text;
        RETURN;
    END IF;
    RETURN QUERY SELECT true, s.data, s.version, NULL::float8, s.user_id FROM (SELECT 1) AS one
        LEFT JOIN {t} AS s ON s.id = sid AND s.updated >= extract(epoch FROM clock_timestamp()) - life;
END $fn$;

CREATE OR REPLACE FUNCTION {f}_rwrite(own text, op int, sid text, d bytea, want bigint, life float8)
RETURNS TABLE (lost boolean, ok boolean, nv bigint, cd bytea, cv bigint) LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    n int;
BEGIN
    IF own IS NOT NULL THEN
        DELETE FROM {t}_locks AS l WHERE l.id = sid AND l.owner = own;
        GET DIAGNOSTICS n = ROW_COUNT;
        -- A destroy deletes also when the lock is no longer ours (as on the other engines).
        IF n = 0 AND op <> 4 THEN
            RETURN QUERY SELECT true, false, NULL::bigint, NULL::bytea, NULL::bigint;
            RETURN;
        END IF;
    END IF;
    RETURN QUERY SELECT false, w.ok, w.nv, w.cd, w.cv FROM {f}_write(0, false, op, sid, d, want, life) AS w;
END $fn$;
"#;

/// Symfony's PdoSessionHandler table (5.4, its `createTable()` for pgsql; the index named per table).
pub const SYMFONY_DDL: &str = "
DO $do$ BEGIN
    -- Only when Symfony's createTable() did not make it (which also made an index on sess_lifetime).
    IF to_regclass('{t}') IS NULL THEN
        CREATE TABLE {t} (
            sess_id       VARCHAR(128) NOT NULL PRIMARY KEY,
            sess_data     BYTEA NOT NULL,
            sess_lifetime INTEGER NOT NULL,    -- unix time the session expires (time() + gc_maxlifetime at write)
            sess_time     INTEGER NOT NULL     -- unix time of the write
        );
        CREATE INDEX {t}_expiry ON {t} (sess_lifetime);
    END IF;
END $do$;
";

/// The step functions over Symfony's table: the same signatures as the native ones. A session lives
/// until `sess_lifetime` (Symfony's rule; a value up to MAX_LIFETIME, 315576000, is the legacy relative
/// form: `sess_time + sess_lifetime`). There is no version column: the version is the first 64 bits
/// of an MD5 over the row (data, time, lifetime), so it changes whenever the data may have.
const SYMFONY_FUNCTIONS: &str = r#"
CREATE OR REPLACE FUNCTION {f}_write(k bigint, rel boolean, op int, sid text, d bytea, want bigint, life float8)
RETURNS TABLE (ok boolean, nv bigint, cd bytea, cv bigint) LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    now0 float8 := extract(epoch FROM clock_timestamp());
    t0 int := floor(now0)::int;
    e0 int := floor(now0 + life)::int;
    r bigint;
BEGIN
    IF rel THEN
        PERFORM pg_advisory_xact_lock(k);
        PERFORM pg_advisory_unlock(k);
    END IF;
    IF op = 0 THEN
        INSERT INTO {t} AS s (sess_id, sess_data, sess_lifetime, sess_time) VALUES (sid, d, e0, t0)
            ON CONFLICT (sess_id) DO UPDATE SET sess_data = excluded.sess_data,
                sess_lifetime = excluded.sess_lifetime, sess_time = excluded.sess_time
            RETURNING {ver} INTO r;
    ELSIF op = 1 THEN
        INSERT INTO {t} AS s (sess_id, sess_data, sess_lifetime, sess_time) VALUES (sid, d, e0, t0)
            ON CONFLICT (sess_id) DO UPDATE SET sess_data = excluded.sess_data,
                sess_lifetime = excluded.sess_lifetime, sess_time = excluded.sess_time
            WHERE NOT ({live})
            RETURNING {ver} INTO r;
    ELSIF op = 2 THEN
        UPDATE {t} AS s SET sess_data = d, sess_lifetime = e0, sess_time = t0
            WHERE s.sess_id = sid AND {ver} = want AND {live}
            RETURNING {ver} INTO r;
    ELSIF op = 3 THEN
        UPDATE {t} AS s SET sess_lifetime = e0, sess_time = t0 WHERE s.sess_id = sid;
        RETURN QUERY SELECT true, NULL::bigint, NULL::bytea, NULL::bigint;
        RETURN;
    ELSE
        DELETE FROM {t} AS s WHERE s.sess_id = sid;
        RETURN QUERY SELECT true, NULL::bigint, NULL::bytea, NULL::bigint;
        RETURN;
    END IF;
    IF r IS NOT NULL THEN
        RETURN QUERY SELECT true, r, NULL::bytea, NULL::bigint;
        RETURN;
    END IF;
    RETURN QUERY SELECT false, NULL::bigint, s.sess_data, {ver} FROM (SELECT 1) AS one
        LEFT JOIN {t} AS s ON s.sess_id = sid AND {live};
END $fn$;
"#;

/// Symfony's row version and liveness, over the row alias `s`.
const SYMFONY_VER: &str = "('x' || substr(md5(s.sess_data || int4send(s.sess_time) || int4send(s.sess_lifetime)), 1, 16))::bit(64)::bigint";
const SYMFONY_LIVE: &str = "(CASE WHEN s.sess_lifetime <= 315576000 THEN s.sess_lifetime + s.sess_time ELSE s.sess_lifetime END) > extract(epoch FROM clock_timestamp())";

/// What a write does (`op` of the write function).
#[derive(Clone, Copy)]
enum Op {
    Put = 0,
    Create = 1,
    AtVersion = 2,
    Touch = 3,
    Destroy = 4,
    /// Under our lock, read present: refused when the row is gone (ended meanwhile). Native only.
    HeldPresent = 5,
}

/// What a write step answered: whether it was applied, the new version, and (refused) what is stored
/// now. None from `write`: the lock was not ours.
type Step = (bool, Option<i64>, Option<Loaded>);

/// The prepared statements of one connection, prepared on first use.
#[derive(Default)]
struct Prepared {
    lock: Option<Statement>,
    write: Option<Statement>,
    wait: Option<Statement>,
    unlock: Option<Statement>,
    holder: Option<Statement>,
    load: Option<Statement>,
    exists: Option<Statement>,
    gc: Option<Statement>,
}

#[derive(Clone, Copy)]
enum Which {
    Lock,
    Write,
    Wait,
    Unlock,
    Holder,
    Load,
    Exists,
    Gc,
}

pub struct PgsqlStore {
    client: Client,
    prepared: Prepared,
    table: String,
    schema: Schema,
    lock: LockMode,
    /// Hosts (or socket) as errors name them; never credentials.
    at: String,
    name: String,
    /// The locks this connection holds, with the token of the request that took each.
    held: Vec<(SessionId, Token)>,
    broken: bool,
    trips: u64,
    /// `create=auto`: the per-user index's columns and table are made at its first use.
    create: bool,
    /// The per-user index's columns and meta table are there (checked once per connection).
    users_ready: bool,
    /// The `user_id` the last read of a session found (None inside: unbound or absent): `bound`
    /// answers from it without a round trip (`users.rs`).
    read_user: Option<(SessionId, Option<String>)>,
    /// The statements of the index and the scan, prepared on first use (`prepared_sql`).
    more: Vec<(&'static str, Statement)>,
}

/// The advisory lock key of `id` in `table`: the first 8 bytes of an MD5 (stable across versions and
/// processes). Two sessions sharing a key only share a lock.
pub fn lock_key(table: &str, id: &SessionId) -> i64 {
    let d = md5::compute([table.as_bytes(), b"\0", id.as_str().as_bytes()].concat()).0;
    i64::from_le_bytes(d[..8].try_into().expect("16-byte digest"))
}

/// A PostgreSQL error as a `StoreError` at `at`, in the server's or the driver's words.
pub fn pg_error(at: &str, e: &postgres::Error) -> StoreError {
    use postgres::error::SqlState as S;
    // The driver's words, then each cause it wraps that it did not already say.
    let mut detail = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let words = c.to_string();
        if !detail.contains(&words) {
            detail = format!("{detail}: {words}");
        }
        cause = c.source();
    }
    if let Some(db) = e.as_db_error() {
        let c = db.code();
        let kind = if *c == S::QUERY_CANCELED || *c == S::LOCK_NOT_AVAILABLE {
            ErrorKind::Timeout
        } else if *c == S::PROGRAM_LIMIT_EXCEEDED {
            ErrorKind::TooLarge
        } else if c.code().starts_with("28")
            || c.code().starts_with("08")
            || c.code().starts_with("57P")
            || *c == S::INVALID_CATALOG_NAME
            || *c == S::READ_ONLY_SQL_TRANSACTION
            || *c == S::TOO_MANY_CONNECTIONS
        {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Backend
        };
        return StoreError::new(kind, at, format!("{detail} (SQLSTATE {})", c.code()));
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return StoreError::io(at, io, detail);
        }
        src = s.source();
    }
    let kind = if detail.contains("timeout") || detail.contains("timed out") {
        ErrorKind::Timeout
    } else if e.is_closed() || detail.contains("connect") || detail.contains("tls") || detail.contains("TLS") {
        ErrorKind::Unavailable
    } else {
        ErrorKind::Backend
    };
    StoreError::new(kind, at, detail)
}

/// Milliseconds until `deadline`, at least 1 (PostgreSQL's lock_timeout 0 means no limit).
fn millis_until(deadline: Instant) -> i32 {
    deadline.saturating_duration_since(Instant::now()).as_millis().clamp(1, i32::MAX as u128) as i32
}

/// The TLS connector `o.sslmode` asks for: certificates checked (against `sslrootcert`, or the
/// system's CAs) only for verify-full, as in libpq.
fn tls(o: &PgsqlOptions, at: &str) -> Result<native_tls::TlsConnector> {
    let mut b = native_tls::TlsConnector::builder();
    if o.sslmode == SslMode::VerifyFull {
        if let Some(p) = &o.sslrootcert {
            b.add_root_certificate(super::sqlshared::read_root_cert(p)?.1);
        }
    } else {
        b.danger_accept_invalid_certs(true).danger_accept_invalid_hostnames(true);
    }
    b.build().map_err(|e| StoreError::new(ErrorKind::Unavailable, at, format!("cannot set up TLS: {e}")))
}

impl PgsqlStore {
    pub fn open(o: &PgsqlOptions) -> Result<Self> {
        let at = o.at();
        let name = format!("pgsql://{at}/{}?table={}", o.dbname, o.table);
        let label = name.clone();
        // Open errors say which store first (the warning reads "cannot open pgsql://…: cause").
        let named = |e: StoreError| StoreError::new(e.kind(), e.at(), format!("{label}: {}", e.detail()));
        let mut cfg = postgres::Config::new();
        for (h, p) in &o.hosts {
            cfg.host(h).port(*p);
        }
        cfg.dbname(&o.dbname).connect_timeout(o.connect_timeout).application_name("session_proxy");
        // A dead peer is noticed within about the connect timeout, not the kernel's minutes.
        cfg.tcp_user_timeout(o.connect_timeout.max(Duration::from_secs(1)))
            .keepalives_idle(Duration::from_secs(5))
            .keepalives_interval(Duration::from_secs(1))
            .keepalives_retries(3);
        if let Some(u) = &o.user {
            cfg.user(u);
        } else {
            cfg.user(&std::env::var("USER").unwrap_or_else(|_| "postgres".into()));
        }
        if let Some(p) = &o.password {
            cfg.password(p);
        }
        if o.hosts.len() > 1 {
            cfg.target_session_attrs(postgres::config::TargetSessionAttrs::ReadWrite);
        }
        let client = match o.sslmode {
            SslMode::Disable => cfg.ssl_mode(postgres::config::SslMode::Disable).connect(NoTls),
            mode => {
                let m = if mode == SslMode::Prefer { postgres::config::SslMode::Prefer } else { postgres::config::SslMode::Require };
                let connector = postgres_native_tls::MakeTlsConnector::new(tls(o, &at).map_err(named)?);
                cfg.ssl_mode(m).connect(connector)
            }
        }
        .map_err(|e| named(pg_error(&at, &e)))?;
        let mut s = PgsqlStore {
            client,
            prepared: Prepared::default(),
            table: o.table.clone(),
            schema: o.schema,
            lock: o.lock,
            at,
            name,
            held: Vec::new(),
            broken: false,
            trips: 1,
            create: o.create,
            users_ready: false,
            read_user: None,
            more: Vec::new(),
        };
        s.ensure_schema(o.create).map_err(named)?;
        Ok(s)
    }

    fn prefix(&self) -> String {
        super::sqlshared::fn_prefix(&self.table, self.schema, FN_TAG)
    }

    /// The advisory lock key of `id`: ours, or with Symfony's table Symfony's own (PdoSessionHandler's
    /// LOCK_ADVISORY on 64-bit PHP: the first 8 bytes of the id, little-endian), so that its requests
    /// and ours exclude each other while a site switches.
    fn key(&self, id: &SessionId) -> i64 {
        match self.schema {
            Schema::Native => lock_key(&self.table, id),
            Schema::Symfony => {
                let mut b = [0u8; 8];
                let idb = id.as_str().as_bytes();
                b[..idb.len().min(8)].copy_from_slice(&idb[..idb.len().min(8)]);
                i64::from_le_bytes(b)
            }
        }
    }

    /// Creates the table and functions when missing (`create=auto`, serialized by an advisory
    /// transaction lock, so that workers starting at once do not race on the catalog), or names what
    /// is missing (`create=never`). One round trip when everything is there.
    fn ensure_schema(&mut self, create: bool) -> Result<()> {
        let (t, f, schema, row) = (self.table.clone(), self.prefix(), self.schema, self.lock == LockMode::Row);
        let mut fns = vec![format!("{f}_lock"), format!("{f}_write"), format!("{f}_wait")];
        if row {
            fns.extend([format!("{f}_rlock"), format!("{f}_rwrite")]);
        }
        let row_mode = row;
        let missing = |c: &mut Client| -> std::result::Result<Vec<String>, postgres::Error> {
            let row = c.query_one(
                "SELECT to_regclass($1) IS NOT NULL,
                        ARRAY(SELECT n FROM unnest($2::text[]) AS n WHERE NOT EXISTS
                              (SELECT 1 FROM pg_proc p WHERE p.proname = n AND pg_function_is_visible(p.oid)))",
                &[&t, &fns],
            )?;
            let mut m: Vec<String> = row.get::<_, Vec<String>>(1).into_iter().map(|n| format!("function {n}")).collect();
            if !row.get::<_, bool>(0) {
                m.insert(0, format!("table {t}"));
            }
            if row_mode && !c.query_one("SELECT to_regclass($1) IS NOT NULL", &[&format!("{t}_locks")])?.get::<_, bool>(0) {
                m.push(format!("table {t}_locks"));
            }
            Ok(m)
        };
        let r = (|| -> std::result::Result<Vec<String>, postgres::Error> {
            let m = missing(&mut self.client)?;
            self.trips += 1;
            if m.is_empty() || !create {
                return Ok(m);
            }
            let mut tx = self.client.transaction()?;
            tx.execute("SELECT pg_advisory_xact_lock(hashtext('session_proxy ddl'))", &[])?;
            match schema {
                Schema::Native => {
                    tx.batch_execute(&NATIVE_DDL.replace("{t}", &t))?;
                    tx.batch_execute(&NATIVE_FUNCTIONS.replace("{t}", &t).replace("{f}", &f))?;
                    let lock = LOCK_FUNCTION.replace("{id}", "id").replace("{data}", "data").replace("{user}", "s.user_id");
                    tx.batch_execute(&lock.replace("{ver}", NATIVE_VER).replace("{live}", NATIVE_LIVE).replace("{t}", &t).replace("{f}", &f))?;
                    tx.batch_execute(&WAIT_FUNCTION.replace("{f}", &f))?;
                    if row {
                        tx.batch_execute(&ROW_DDL.replace("{t}", &t))?;
                        tx.batch_execute(&ROW_FUNCTIONS.replace("{t}", &t).replace("{f}", &f))?;
                    }
                }
                Schema::Symfony => {
                    tx.batch_execute(&SYMFONY_DDL.replace("{t}", &t))?;
                    let lock = LOCK_FUNCTION.replace("{id}", "sess_id").replace("{data}", "sess_data").replace("{user}", "NULL::text");
                    let body = [SYMFONY_FUNCTIONS, &lock].concat().replace("{ver}", SYMFONY_VER).replace("{live}", SYMFONY_LIVE);
                    tx.batch_execute(&body.replace("{t}", &t).replace("{f}", &f))?;
                    tx.batch_execute(&WAIT_FUNCTION.replace("{f}", &f))?;
                }
            }
            tx.commit()?;
            self.trips += 4;
            Ok(Vec::new())
        })();
        match r {
            Ok(m) => super::sqlshared::schema_checked(&self.at, m, false),
            Err(e) => Err(pg_error(&self.at, &e)),
        }
    }

    fn statement(&mut self, w: Which) -> std::result::Result<Statement, postgres::Error> {
        let (t, f) = (self.table.clone(), self.prefix());
        let slot = match w {
            Which::Lock => &mut self.prepared.lock,
            Which::Write => &mut self.prepared.write,
            Which::Wait => &mut self.prepared.wait,
            Which::Unlock => &mut self.prepared.unlock,
            Which::Holder => &mut self.prepared.holder,
            Which::Load => &mut self.prepared.load,
            Which::Exists => &mut self.prepared.exists,
            Which::Gc => &mut self.prepared.gc,
        };
        if let Some(s) = slot {
            return Ok(s.clone());
        }
        let row = self.lock == LockMode::Row;
        let sql = match w {
            Which::Lock if row => format!("SELECT got, d, v, left_s, u FROM {f}_rlock($1, $2, $3, $4)"),
            Which::Write if row => format!("SELECT lost, ok, nv, cd, cv FROM {f}_rwrite($1, $2, $3, $4, $5, $6)"),
            Which::Unlock if row => format!("DELETE FROM {t}_locks WHERE id = $1 AND owner = $2"),
            Which::Holder => format!("SELECT owner FROM {t}_locks WHERE id = $1 AND expires > extract(epoch FROM clock_timestamp())"),
            Which::Lock => format!("SELECT got, d, v, u FROM {f}_lock($1, $2, $3)"),
            Which::Write => format!("SELECT ok, nv, cd, cv FROM {f}_write($1, $2, $3, $4, $5, $6, $7)"),
            Which::Wait => format!("SELECT {f}_wait($1, $2)"),
            Which::Unlock => "SELECT pg_advisory_unlock($1)".to_string(),
            Which::Load | Which::Exists | Which::Gc if self.schema == Schema::Symfony => {
                let live = SYMFONY_LIVE.replace("s.", "");
                match w {
                    // ($2, the reader's lifetime, is not Symfony's rule: the writer's expiry is.)
                    Which::Load => format!("SELECT sess_data, {}, NULL::text FROM {t} AS s WHERE sess_id = $1 AND {live} AND $2::float8 IS NOT NULL", SYMFONY_VER),
                    Which::Exists => format!("SELECT 1 FROM {t} WHERE sess_id = $1 AND {live} AND $2::float8 IS NOT NULL"),
                    _ => format!("DELETE FROM {t} WHERE sess_id IN (SELECT sess_id FROM {t} WHERE NOT ({live}) AND $1::float8 IS NOT NULL LIMIT {GC_BATCH})"),
                }
            }
            Which::Load => format!("SELECT data, version, user_id FROM {t} WHERE id = $1 AND updated >= extract(epoch FROM clock_timestamp())::float8 - $2::float8"),
            Which::Exists => format!("SELECT 1 FROM {t} WHERE id = $1 AND updated >= extract(epoch FROM clock_timestamp())::float8 - $2::float8"),
            Which::Gc => format!(
                "DELETE FROM {t} WHERE id IN (SELECT id FROM {t} WHERE updated < extract(epoch FROM clock_timestamp())::float8 - $1::float8 LIMIT {GC_BATCH})"
            ),
        };
        self.trips += 1;
        let s = self.client.prepare(&sql)?;
        *slot = Some(s.clone());
        Ok(s)
    }

    /// Runs prepared statement `w`: its rows. Any error marks the connection not reusable.
    fn run(&mut self, w: Which, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<postgres::Row>> {
        let prepared = self.statement(w);
        self.query(prepared, params)
    }

    /// Runs a statement just prepared (or the error preparing it): its rows.
    fn query(&mut self, prepared: std::result::Result<Statement, postgres::Error>, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<postgres::Row>> {
        let r = prepared.and_then(|s| {
            self.trips += 1;
            self.client.query(&s, params)
        });
        r.map_err(|e| {
            self.broken = true;
            // The server is gone or replaced: our locks went with the connection.
            self.held.clear();
            pg_error(&self.at, &e)
        })
    }

    /// Runs the statement named `key` (its SQL made by `sql` from the table name on first use, then
    /// kept prepared): its rows. Errors as `run`'s.
    fn run_sql(&mut self, key: &'static str, sql: impl FnOnce(&str) -> String, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<postgres::Row>> {
        let prepared = match self.more.iter().find(|(k, _)| *k == key) {
            Some((_, s)) => Ok(s.clone()),
            None => {
                self.trips += 1;
                let text = sql(&self.table);
                self.client.prepare(&text).inspect(|s| self.more.push((key, s.clone())))
            }
        };
        self.query(prepared, params)
    }

    fn holds(&self, id: &SessionId) -> Option<&Token> {
        self.held.iter().find(|(s, _)| s == id).map(|(_, t)| t)
    }

    fn forget(&mut self, id: &SessionId) {
        self.held.retain(|(s, _)| s != id);
    }

    /// One write step; `owner`: only while it holds the lock, which the step releases.
    fn write(&mut self, id: &SessionId, op: Op, data: &[u8], want: i64, owner: Option<&Token>, exp: Expiry) -> Result<Option<Step>> {
        let life = exp.lifetime.as_secs_f64();
        // The columns (ok, nv, cd, cv) start at `at`; with lock rows the first says whether the lock was lost.
        let (rows, at) = if self.lock == LockMode::Row {
            let own = owner.map(Token::as_str);
            (self.run(Which::Write, &[&own, &(op as i32), &id.as_str(), &data, &want, &life]), 1)
        } else {
            let release = match owner {
                Some(t) if self.holds(id) == Some(t) => true,
                Some(_) => return Ok(None),
                None => false,
            };
            let key = self.key(id);
            let rows = self.run(Which::Write, &[&key, &release, &(op as i32), &id.as_str(), &data, &want, &life]);
            if release {
                self.forget(id);
            }
            (rows, 0)
        };
        let row = rows?.into_iter().next().ok_or_else(|| StoreError::new(ErrorKind::Corrupt, &self.at, "the write function answered no row"))?;
        if at == 1 && row.get::<_, bool>(0) {
            return Ok(None);
        }
        let current = match (row.get::<_, Option<Vec<u8>>>(at + 2), row.get::<_, Option<i64>>(at + 3)) {
            (Some(data), Some(v)) => Some(Loaded { data, version: version_of(v) }),
            _ => None,
        };
        Ok(Some((row.get(at), row.get(at + 1), current)))
    }
}

impl Pooled for PgsqlStore {
    fn reusable(&self) -> bool {
        !self.broken && self.held.is_empty()
    }

    fn still_valid(&mut self) -> bool {
        !self.client.is_closed()
    }
}

impl Collect for PgsqlStore {
    fn gc(&mut self, exp: Expiry) -> Result<u64> {
        let life = exp.lifetime.as_secs_f64();
        let mut total = 0;
        loop {
            let s = self.statement(Which::Gc).map_err(|e| pg_error(&self.at, &e))?;
            self.trips += 1;
            let n = self.client.execute(&s, &[&life]).map_err(|e| {
                self.broken = true;
                pg_error(&self.at, &e)
            })?;
            total += n;
            if n < GC_BATCH as u64 {
                break;
            }
        }
        if self.lock == LockMode::Row {
            // Lock rows of vanished holders that nobody came back for.
            let t = self.table.clone();
            self.trips += 1;
            self.client
                .execute(&format!("DELETE FROM {t}_locks WHERE expires < extract(epoch FROM clock_timestamp())"), &[])
                .map_err(|e| pg_error(&self.at, &e))?;
        }
        Ok(total)
    }
}

impl Store for PgsqlStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        let rows = self.run(Which::Load, &[&id.as_str(), &exp.lifetime.as_secs_f64()])?;
        let row = rows.into_iter().next();
        self.read_user = Some((id.clone(), row.as_ref().and_then(|r| r.get(2))));
        Ok(row.map(|r| Loaded { data: r.get(0), version: version_of(r.get(1)) }))
    }

    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Result<Acquire> {
        if self.lock == LockMode::Row {
            let params: [&(dyn ToSql + Sync); 4] = [&id.as_str(), &exp.lifetime.as_secs_f64(), &owner.as_str(), &lock_expire.as_secs_f64()];
            let rows = self.run(Which::Lock, &params)?;
            let row = rows.into_iter().next().ok_or_else(|| StoreError::new(ErrorKind::Corrupt, &self.at, "the lock function answered no row"))?;
            if !row.get::<_, bool>(0) {
                let expires_in = row.get::<_, Option<f64>>(3).map(|s| Duration::from_secs_f64(s.max(0.0)));
                return Ok(Acquire::Busy(Busy { expires_in, foreign: false }));
            }
            self.read_user = Some((id.clone(), row.get(4)));
            return Ok(Acquire::Locked(match (row.get::<_, Option<Vec<u8>>>(1), row.get::<_, Option<i64>>(2)) {
                (Some(data), Some(v)) => Some(Loaded { data, version: version_of(v) }),
                _ => None,
            }));
        }
        match self.holds(id) {
            // This connection holds it for another request (two handles never share a connection,
            // but one handle may be asked twice): busy, as for anyone else.
            Some(t) if t != owner => return Ok(Acquire::Busy(Busy::default())),
            Some(_) => return self.load(id, exp).map(Acquire::Locked),
            None => {}
        }
        let key = self.key(id);
        let rows = self.run(Which::Lock, &[&key, &id.as_str(), &exp.lifetime.as_secs_f64()])?;
        let row = rows.into_iter().next().ok_or_else(|| StoreError::new(ErrorKind::Corrupt, &self.at, "the lock function answered no row"))?;
        if !row.get::<_, bool>(0) {
            return Ok(Acquire::Busy(Busy::default()));
        }
        self.held.push((id.clone(), owner.clone()));
        self.read_user = Some((id.clone(), row.get(3)));
        Ok(Acquire::Locked(match (row.get::<_, Option<Vec<u8>>>(1), row.get::<_, Option<i64>>(2)) {
            (Some(data), Some(v)) => Some(Loaded { data, version: version_of(v) }),
            _ => None,
        }))
    }

    /// Blocks in the server until the lock is released (or `deadline`): the server wakes us.
    fn wait_for_release(&mut self, id: &SessionId, _busy: &Busy, deadline: Instant, attempt: u32) -> Result<()> {
        // A lock row tells nobody of its release: the default back-off.
        if self.holds(id).is_some() || self.lock == LockMode::Row {
            super::back_off(deadline, attempt);
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Ok(());
        }
        let key = self.key(id);
        self.run(Which::Wait, &[&key, &millis_until(deadline)])?;
        Ok(())
    }

    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        let (op, want) = match expect {
            // Read under our lock: written only while the row is there (ended meanwhile: refused).
            Expect::Held(Some(_)) if self.schema == Schema::Native => (Op::HeldPresent, 0),
            Expect::Any | Expect::Held(_) => (Op::Put, 0),
            Expect::Absent => (Op::Create, 0),
            Expect::Version(v) => match sql_version(v) {
                Some(v) => (Op::AtVersion, v),
                // No row can have it: refused with what is there.
                None => (Op::AtVersion, i64::MIN),
            },
        };
        Ok(match self.write(id, op, data, want, owner, exp)? {
            None => Written::LockLost,
            Some((true, Some(v), _)) => Written::Done(version_of(v)),
            Some((_, _, now)) => Written::Conflict(now),
        })
    }

    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> Result<Touched> {
        Ok(match self.write(id, Op::Touch, &[], 0, owner, exp)? {
            None => Touched::LockLost,
            Some(_) => Touched::Done,
        })
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        if self.lock == LockMode::Row {
            return self.run(Which::Unlock, &[&id.as_str(), &owner.as_str()]).map(|_| ());
        }
        if self.holds(id) != Some(owner) {
            return Ok(());
        }
        let key = self.key(id);
        let r = self.run(Which::Unlock, &[&key]);
        self.forget(id);
        r.map(|_| ())
    }

    /// With lock rows, the holder's token (so that a dead holder on this host is broken at once); an
    /// advisory lock dies with its connection and has none.
    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Token>> {
        if self.lock != LockMode::Row {
            return Ok(None);
        }
        let rows = self.run(Which::Holder, &[&id.as_str()])?;
        Ok(rows.into_iter().next().map(|r| Token::from_stored(r.get::<_, String>(0))))
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        // A destroy by a request that lost the lock still deletes (as on the other engines); it
        // releases only a lock that is its own.
        let owner = owner.filter(|t| self.lock == LockMode::Row || self.holds(id) == Some(*t));
        self.read_user = None;
        self.write(id, Op::Destroy, &[], 0, owner, Expiry::new(Duration::ZERO)).map(|_| ())
    }

    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        Ok(!self.run(Which::Exists, &[&id.as_str(), &exp.lifetime.as_secs_f64()])?.is_empty())
    }

    fn collector(&mut self) -> Option<&mut dyn Collect> {
        Some(self)
    }

    /// Native schema only: Symfony's table has no user column, so it keeps no index (the session
    /// layer then says the store keeps no per-user session index).
    fn users(&mut self) -> Option<&mut dyn super::users::Users> {
        match self.schema {
            Schema::Native => Some(self),
            Schema::Symfony => None,
        }
    }

    fn scanner(&mut self) -> Option<&mut dyn super::Scan> {
        Some(self)
    }

    /// A new request reads its session afresh: what an earlier one read is not its binding.
    fn event(&mut self, e: &super::Event) {
        if *e == super::Event::Started {
            self.read_user = None;
        }
    }

    fn round_trips(&self) -> u64 {
        self.trips
    }
}

#[cfg(test)]
pub(crate) mod tests;
