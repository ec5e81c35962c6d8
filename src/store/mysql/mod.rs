//! MySQL / MariaDB: one table (`schema=native`, or Symfony's in place), a session's lock the server's
//! `GET_LOCK` (or a lock row), every step of the contract one round trip: a CALL of a stored procedure
//! (`sql.rs`), or for a write that releases no lock one plain statement.
//!
//! `lock=advisory` (the default): `GET_LOCK` on a name derived from the database, the table and the
//! session id (an MD5 in hex: lock names are at most 64 characters and shared by the whole server),
//! held on this worker's connection from read to write. The server frees it when the connection
//! closes (a killed PHP worker's lock is free at once) and wakes a waiter when it is released
//! (`wait_for_release` blocks in the server's `GET_LOCK(k, timeout)`, no polling).
//!
//! `lock=row`: lock rows with owner token and expiry, every step one CALL that leaves nothing on the
//! connection (for ProxySQL's multiplexing and other poolers that hand a connection to another client
//! between statements, where GET_LOCK is not ours on the next one).
//!
//! Versions are a column, bumped by the statement that writes, checked in the same statement (or, for
//! a create, in the procedure's transaction); a new row starts at a random version (a destroyed and
//! recreated session never comes back at an old one).
//! Times are the server's clock, so web servers with skewed clocks agree.

pub mod options;
mod scan;
mod sql;
mod users;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder, Params, Row, SslOpts, Value};

pub use options::MysqlOptions;
use super::sqlopts::{LockMode, Schema, SslMode};
use super::sqlshared::{loaded, op_of, Op, Step};
use super::{Acquire, Busy, Collect, ErrorKind, Expect, Expiry, Loaded, Pooled, Result, Store, StoreError};
use super::{Touched, Written};
use crate::id::SessionId;
use crate::lock::Token;

/// Rows deleted per gc statement: small enough that no writer waits behind one.
pub const GC_BATCH: u64 = 500;

/// Suffix of the procedures' names; bumped when their code changes, so that an old deployment's
/// procedures are never called with new arguments, nor an old build's with new code. sp2: the common
/// writes are one statement, without a transaction. sp3: lock and read answer the row's `user_id`
/// too (so `Users::bound` needs no statement of its own). A database an older build made gets the
/// new procedures beside its own (create=auto, or the README's DDL), so during a rolling deploy old
/// and new workers run on one table at once, each calling its own procedures.
const FN_TAG: &str = "sp3";

/// The prefix of the advisory lock names (and of the DDL's lock): the same for every build, so that
/// an old and a new worker exclude each other on one session. Never bumped with `FN_TAG`.
const LOCK_TAG: &str = "sp1";

/// The longest single wait in the server for a lock's release. The connection's read timeout is the
/// connect timeout plus this, so a server that stops answering costs at most that; a longer
/// lock_wait_timeout is waited in slices (the session layer calls again until its deadline).
const WAIT_SLICE: Duration = Duration::from_secs(1);

pub struct MysqlStore {
    conn: Conn,
    table: String,
    schema: Schema,
    lock: LockMode,
    /// The database, in the advisory lock names (GET_LOCK's names are server-wide).
    db: String,
    /// Host:port or the socket path, as errors name them; never credentials.
    at: String,
    name: String,
    /// The locks this connection holds, with the token of the request that took each.
    held: Vec<(SessionId, Token)>,
    /// The `user_id` the last read found, for `Users::bound` (None inside: no session, or unbound).
    pub(super) read_user: Option<(SessionId, Option<Vec<u8>>)>,
    /// Statements this connection prepared (the driver caches them): a first use costs a round trip.
    prepared: HashSet<&'static str>,
    broken: bool,
    trips: u64,
}

/// The advisory lock name of `id`: `sp1_` and the MD5 of database, table and id in hex (36 chars).
pub fn lock_name(db: &str, table: &str, id: &SessionId) -> String {
    let d = md5::compute([db.as_bytes(), b"\0", table.as_bytes(), b"\0", id.as_str().as_bytes()].concat());
    format!("{LOCK_TAG}_{d:x}")
}

/// A MySQL error as a `StoreError` at `at`, in the server's or the driver's words.
pub fn my_error(at: &str, e: &mysql::Error) -> StoreError {
    use mysql::{DriverError as D, Error as E};
    match e {
        E::MySqlError(m) => {
            let kind = match m.code {
                // lock wait timeout, query interrupted by max_statement_time
                1205 | 1969 | 3024 => ErrorKind::Timeout,
                // packet too large, data too long, result too large
                1153 | 1406 | 1301 => ErrorKind::TooLarge,
                // access denied, unknown database, too many connections, shutdown, killed, read-only
                1044 | 1045 | 1049 | 1040 | 1203 | 1053 | 1927 | 1290 | 1836 | 2002 | 2003 | 2006 | 2013 => ErrorKind::Unavailable,
                _ => ErrorKind::Backend,
            };
            StoreError::new(kind, at, format!("{} (error {}, SQLSTATE {})", m.message, m.code, m.state))
        }
        E::IoError(io) => StoreError::io(at, io, format!("{io}")),
        E::DriverError(D::ConnectTimeout) | E::DriverError(D::Timeout) => StoreError::new(ErrorKind::Timeout, at, format!("{e}")),
        E::DriverError(D::CouldNotConnect(Some((_, words, kind)))) => StoreError::io(at, &std::io::Error::from(*kind), format!("could not connect: {words}")),
        E::DriverError(D::PacketTooLarge) => StoreError::new(ErrorKind::TooLarge, at, format!("{e} (the server's max_allowed_packet)")),
        E::DriverError(D::CouldNotConnect(None) | D::TlsNotSupported | D::UnknownAuthPlugin(_) | D::CleartextPluginDisabled) => {
            StoreError::new(ErrorKind::Unavailable, at, format!("{e}"))
        }
        E::TlsError(t) => StoreError::new(ErrorKind::Unavailable, at, format!("TLS: {t}")),
        // The packet codec's I/O error (its type is mysql_common's, not re-exported): a read that
        // timed out reads "Resource temporarily unavailable" (EAGAIN from SO_RCVTIMEO).
        E::CodecError(c) => {
            let words = c.to_string();
            let timed_out = words.contains("os error 11") || words.contains("timed out");
            let words = if timed_out { format!("no answer within the timeout ({words})") } else { words };
            StoreError::new(if timed_out { ErrorKind::Timeout } else { ErrorKind::Unavailable }, at, words)
        }
        E::DriverError(_) => StoreError::new(ErrorKind::Unavailable, at, format!("{e}")),
        _ => StoreError::new(ErrorKind::Backend, at, format!("{e}")),
    }
}

/// The driver's options for `o`: TCP or the socket, TLS as `sslmode` asks (certificates checked only
/// for verify-full, as libpq), timeouts so a dead or stopped server costs about the connect timeout.
fn builder(o: &MysqlOptions, tls: bool) -> Result<OptsBuilder> {
    let user = o.user.clone().unwrap_or_else(|| std::env::var("USER").unwrap_or_else(|_| "root".into()));
    let io_timeout = o.connect_timeout.max(Duration::from_secs(1)) + WAIT_SLICE;
    let mut b = OptsBuilder::new()
        .user(Some(user))
        .pass(o.password.clone())
        .db_name(Some(o.dbname.clone()))
        .prefer_socket(false)
        .tcp_connect_timeout(Some(o.connect_timeout))
        .read_timeout(Some(io_timeout))
        .write_timeout(Some(io_timeout))
        .tcp_keepalive_time_ms(Some(5000))
        .tcp_keepalive_probe_interval_secs(Some(1))
        .tcp_keepalive_probe_count(Some(3))
        .tcp_user_timeout_ms(Some(o.connect_timeout.max(Duration::from_secs(1)).as_millis() as u32))
        // Strict: a value that does not fit is an error, never silently truncated.
        .init(vec!["SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')"]);
    b = match &o.socket {
        Some(s) => b.socket(Some(s.display().to_string())),
        None => b.ip_or_hostname(Some(o.hosts[0].0.clone())).tcp_port(o.hosts[0].1),
    };
    if tls {
        let mut ssl = SslOpts::default();
        if o.sslmode == SslMode::VerifyFull {
            if let Some(p) = &o.sslrootcert {
                super::sqlshared::read_root_cert(p)?;
                ssl = ssl.with_root_cert_path(Some(p.clone()));
            }
        } else {
            ssl = ssl.with_danger_accept_invalid_certs(true).with_danger_skip_domain_validation(true);
        }
        b = b.ssl_opts(Some(ssl));
    }
    Ok(b)
}

/// Which statement a call runs (its text is built once per table; the driver prepares it once).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Lock,
    Write,
    Wait,
    Unlock,
    Holder,
    Load,
    Exists,
    Gc,
    RowGc,
    /// The writes that release no lock (native table), each one plain statement (`plain_write`).
    Upsert,
    Cas,
    Touch,
    Delete,
}

impl Which {
    fn key(self) -> &'static str {
        match self {
            Which::Lock => "lock",
            Which::Write => "write",
            Which::Wait => "wait",
            Which::Unlock => "unlock",
            Which::Holder => "holder",
            Which::Load => "load",
            Which::Exists => "exists",
            Which::Gc => "gc",
            Which::RowGc => "rowgc",
            Which::Upsert => "upsert",
            Which::Cas => "cas",
            Which::Touch => "touch",
            Which::Delete => "delete",
        }
    }
}

impl MysqlStore {
    pub fn open(o: &MysqlOptions) -> Result<Self> {
        let at = o.at();
        let name = match &o.socket {
            Some(_) => format!("mysql:///{}?socket={at}&table={}", o.dbname, o.table),
            None => format!("mysql://{at}/{}?table={}", o.dbname, o.table),
        };
        let label = name.clone();
        // Open errors say which store first (the warning reads "cannot open mysql://…: cause").
        let named = |e: StoreError| StoreError::new(e.kind(), e.at(), format!("{label}: {}", e.detail()));
        let tls = o.socket.is_none() && o.sslmode != SslMode::Disable;
        let mut r = Conn::new(builder(o, tls).map_err(named)?);
        if o.sslmode == SslMode::Prefer && matches!(r, Err(mysql::Error::DriverError(mysql::DriverError::TlsNotSupported))) {
            // prefer: TLS when the server offers it.
            r = Conn::new(builder(o, false).map_err(named)?);
        }
        let conn = r.map_err(|e| named(my_error(&at, &e)))?;
        let mut s = MysqlStore {
            conn,
            table: o.table.clone(),
            schema: o.schema,
            lock: o.lock,
            db: o.dbname.clone(),
            at,
            name,
            held: Vec::new(),
            read_user: None,
            prepared: HashSet::new(),
            broken: false,
            trips: 2,
        };
        s.ensure_schema(o.create).map_err(named)?;
        Ok(s)
    }

    fn prefix(&self) -> String {
        super::sqlshared::fn_prefix(&self.table, self.schema, FN_TAG)
    }

    /// The lock name of `id`: ours, or with Symfony's table Symfony's own (PdoSessionHandler's
    /// LOCK_ADVISORY: the id's first 64 characters), so that its requests and ours exclude each other
    /// while a site switches.
    fn key(&self, id: &SessionId) -> String {
        match self.schema {
            Schema::Native => lock_name(&self.db, &self.table, id),
            Schema::Symfony => id.as_str().chars().take(64).collect(),
        }
    }

    /// What the schema needs that the database lacks: "table x", "procedure y".
    fn missing(&mut self) -> std::result::Result<Vec<String>, mysql::Error> {
        let t = self.table.clone();
        let (native, row) = (self.schema == Schema::Native, self.lock == LockMode::Row);
        let mut tables = vec![t.clone()];
        if native {
            tables.push(format!("{t}_meta"));
        }
        if row {
            tables.push(format!("{t}_locks"));
        }
        let f = self.prefix();
        let procs: Vec<String> = sql::procedures(native, row).into_iter().map(|(n, _)| format!("{f}_{n}")).collect();
        // By name: information_schema then looks at these only, not at every table of the database.
        let marks = |n: usize| vec!["?"; n].join(", ");
        let names = |v: &[String]| Params::Positional(v.iter().map(|n| Value::from(n.as_str())).collect());
        let have_t: Vec<String> = self.conn.exec(
            format!("SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ({})", marks(tables.len())),
            names(&tables),
        )?;
        let have_p: Vec<String> = self.conn.exec(
            format!(
                "SELECT routine_name FROM information_schema.routines WHERE routine_schema = DATABASE() AND routine_type = 'PROCEDURE' AND routine_name IN ({})",
                marks(procs.len())
            ),
            names(&procs),
        )?;
        let mut m: Vec<String> = tables.into_iter().filter(|n| !have_t.contains(n)).map(|n| format!("table {n}")).collect();
        m.extend(procs.into_iter().filter(|n| !have_p.contains(n)).map(|n| format!("procedure {n}")));
        Ok(m)
    }

    /// The table(s) and procedures: created (create=auto, serialized by a server lock) or checked.
    fn ensure_schema(&mut self, create: bool) -> Result<()> {
        let (t, f) = (self.table.clone(), self.prefix());
        let (native, row) = (self.schema == Schema::Native, self.lock == LockMode::Row);
        let r = (|| -> std::result::Result<Vec<String>, mysql::Error> {
            let m = self.missing()?;
            self.trips += 2;
            if m.is_empty() || !create {
                return Ok(m);
            }
            // Workers starting at once on an empty database: one creates, the others wait and see.
            let ddl_lock = format!("{LOCK_TAG}_ddl_{}", self.db);
            let got: Option<i64> = self.conn.exec_first("SELECT GET_LOCK(?, 30)", (&ddl_lock,))?;
            if got != Some(1) {
                return Ok(m);
            }
            let done = (|| -> std::result::Result<Vec<String>, mysql::Error> {
                let m = self.missing()?;
                let fill = |s: &str| s.replace("{t}", &t).replace("{f}", &f);
                for ddl in if native { &[sql::NATIVE_DDL, sql::META_DDL][..] } else { &[sql::SYMFONY_DDL][..] } {
                    self.conn.query_drop(fill(ddl))?;
                }
                if row {
                    self.conn.query_drop(fill(sql::ROW_DDL))?;
                }
                for (n, body) in sql::procedures(native, row) {
                    if m.contains(&format!("procedure {f}_{n}")) {
                        self.conn.query_drop(fill(&body))?;
                    }
                }
                self.missing()
            })();
            let _ = self.conn.exec_drop("DO RELEASE_LOCK(?)", (&ddl_lock,));
            self.trips += 8;
            done
        })();
        match r {
            Ok(m) => super::sqlshared::schema_checked(&self.at, m, create),
            Err(e) => Err(my_error(&self.at, &e)),
        }
    }

    fn sql(&self, w: Which) -> String {
        let (t, f) = (&self.table, self.prefix());
        let row = self.lock == LockMode::Row;
        let symfony = self.schema == Schema::Symfony;
        let live = if symfony { sql::SYMFONY_LIVE.replace("s.", "") } else { format!("updated >= {} - ?", sql::NOW) };
        // Symfony's rule is the writer's expiry, not the reader's lifetime (the ? is given and unused).
        let live_p = if symfony { format!("{live} AND ? IS NOT NULL") } else { live };
        match w {
            Which::Lock if row => format!("CALL {f}_rlock(?, ?, ?, ?)"),
            Which::Write if row => format!("CALL {f}_rwrite(?, ?, ?, ?, ?, ?)"),
            Which::Unlock if row => format!("DELETE FROM {t}_locks WHERE id = ? AND owner = ?"),
            Which::Holder => format!("SELECT owner FROM {t}_locks WHERE id = ? AND expires > {}", sql::NOW),
            Which::Lock => format!("CALL {f}_lock(?, ?, ?)"),
            Which::Write => format!("CALL {f}_write(?, ?, ?, ?, ?, ?, ?)"),
            // Free: taken and given back at once, in one statement.
            Which::Wait => "SELECT IF(GET_LOCK(?, ?) = 1, RELEASE_LOCK(?), 0)".to_string(),
            Which::Unlock => "SELECT RELEASE_LOCK(?)".to_string(),
            Which::Load if symfony => format!("SELECT sess_data, {}, NULL FROM {t} AS s WHERE sess_id = ? AND {live_p}", sql::SYMFONY_VER),
            Which::Load => format!("SELECT data, version, user_id FROM {t} WHERE id = ? AND {live_p}"),
            Which::Exists if symfony => format!("SELECT 1 FROM {t} WHERE sess_id = ? AND {live_p}"),
            Which::Exists => format!("SELECT 1 FROM {t} WHERE id = ? AND {live_p}"),
            Which::Gc if symfony => format!("DELETE FROM {t} WHERE NOT ({}) AND ? IS NOT NULL LIMIT {GC_BATCH}", sql::SYMFONY_LIVE.replace("s.", "")),
            Which::Gc => format!("DELETE FROM {t} WHERE updated < {} - ? LIMIT {GC_BATCH}", sql::NOW),
            Which::RowGc => format!("DELETE FROM {t}_locks WHERE expires < {} LIMIT {GC_BATCH}", sql::NOW),
            // The new version comes back in the OK packet's insert id (LAST_INSERT_ID(expr)); the
            // time is the statement's (one value for every column, as the procedures' t0).
            Which::Upsert => format!(
                "INSERT INTO {t} (id, data, created, updated, expiry, version) VALUES (?, ?, {n}, {n}, {n} + ?, ?) \
                 ON DUPLICATE KEY UPDATE data = VALUES(data), updated = VALUES(updated), expiry = VALUES(expiry), version = LAST_INSERT_ID(version + 1)",
                n = sql::STMT_NOW
            ),
            Which::Cas => format!(
                "UPDATE {t} SET data = ?, updated = {n}, expiry = {n} + ?, version = LAST_INSERT_ID(version + 1) WHERE id = ? AND version = ? AND updated >= {n} - ?",
                n = sql::STMT_NOW
            ),
            Which::Touch => format!("UPDATE {t} SET updated = {n}, expiry = {n} + ? WHERE id = ?", n = sql::STMT_NOW),
            Which::Delete => format!("DELETE FROM {t} WHERE id = ?"),
        }
    }

    /// Runs statement `w`: the rows of its first result. Any error marks the connection not reusable
    /// (the server is gone or replaced: our locks went with the connection).
    fn run(&mut self, w: Which, params: Vec<Value>) -> Result<Vec<Row>> {
        let sql = self.sql(w);
        self.trips += u64::from(self.prepared.insert(w.key()));
        self.query(&sql, params)
    }

    /// Runs `sql` (prepared by the driver on first use) with `params`: the rows of its first result.
    fn query(&mut self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>> {
        self.trips += 1;
        let p = if params.is_empty() { Params::Empty } else { Params::Positional(params) };
        self.conn.exec::<Row, _, _>(sql, p).map_err(|e| self.failed(&e))
    }

    /// Runs statement `w` for its count of affected rows.
    fn run_count(&mut self, w: Which, params: Vec<Value>) -> Result<u64> {
        let sql = self.sql(w);
        self.trips += 1 + u64::from(self.prepared.insert(w.key()));
        let p = if params.is_empty() { Params::Empty } else { Params::Positional(params) };
        match self.conn.exec_drop(sql, p) {
            Ok(()) => Ok(self.conn.affected_rows()),
            Err(e) => Err(self.failed(&e)),
        }
    }

    /// A write on the native table that releases no lock (locking off, optimistic writes, a destroy
    /// without the lock): one plain statement, its answer in the OK packet (affected rows, and the new
    /// version as the insert id). None: a create (expect absent), which takes the procedure.
    fn plain_write(&mut self, id: &SessionId, op: Op, data: &[u8], want: i64, exp: Expiry) -> Result<Option<Step>> {
        let (sid, life) = (Value::from(id.as_str()), Value::from(exp.lifetime.as_secs_f64()));
        let done = |version| Ok(Some(Step { ok: true, version, now: None }));
        match op {
            Op::Put => {
                // A new row's version, random (a destroyed and recreated session never comes back
                // at an old one); RAND() of the server in the procedures.
                let mut b = [0u8; 8];
                getrandom::fill(&mut b).map_err(|e| StoreError::new(ErrorKind::Backend, &self.at, format!("cannot draw a new version: {e}")))?;
                let fresh = (u64::from_le_bytes(b) >> 2) as i64;
                let n = self.run_count(Which::Upsert, vec![sid, Value::from(data), life, Value::from(fresh)])?;
                // 1: inserted at `fresh`; 2: updated, to the version in the insert id.
                done(Some(if n == 1 { fresh } else { self.conn.last_insert_id() as i64 }))
            }
            Op::AtVersion => {
                let n = self.run_count(Which::Cas, vec![Value::from(data), life.clone(), sid, Value::from(want), life])?;
                if n == 1 {
                    return done(Some(self.conn.last_insert_id() as i64));
                }
                // Refused (rare): what is stored now, in a read of its own.
                let now = self.load(id, exp)?;
                Ok(Some(Step { ok: false, version: None, now }))
            }
            Op::Touch => self.run_count(Which::Touch, vec![life, sid]).and_then(|_| done(None)),
            Op::Destroy => self.run_count(Which::Delete, vec![sid]).and_then(|_| done(None)),
            Op::Create | Op::Update => Ok(None),
        }
    }

    fn failed(&mut self, e: &mysql::Error) -> StoreError {
        self.broken = true;
        self.held.clear();
        my_error(&self.at, e)
    }

    fn holds(&self, id: &SessionId) -> Option<&Token> {
        self.held.iter().find(|(s, _)| s == id).map(|(_, t)| t)
    }

    fn forget(&mut self, id: &SessionId) {
        self.held.retain(|(s, _)| s != id);
    }

    fn corrupt(&self, what: &str) -> StoreError {
        StoreError::new(ErrorKind::Corrupt, &self.at, format!("the {what} procedure answered no row"))
    }

    /// One write step; `owner`: only while it holds the lock, which the step releases.
    fn write(&mut self, id: &SessionId, op: Op, data: &[u8], want: i64, owner: Option<&Token>, exp: Expiry) -> Result<Option<Step>> {
        if owner.is_none() && self.schema == Schema::Native {
            if let Some(step) = self.plain_write(id, op, data, want, exp)? {
                return Ok(Some(step));
            }
        }
        let life = Value::from(exp.lifetime.as_secs_f64());
        let (sid, d, op_v, want) = (Value::from(id.as_str()), Value::from(data), Value::from(op as i32), Value::from(want));
        // The columns (ok, nv, cd, cv) start at `at`; with lock rows the first says whether the lock was lost.
        let (rows, at) = if self.lock == LockMode::Row {
            let own = owner.map_or(Value::NULL, |t| Value::from(t.as_str()));
            (self.run(Which::Write, vec![own, op_v, sid, d, want, life]), 1)
        } else {
            let release = match owner {
                Some(t) if self.holds(id) == Some(t) => true,
                Some(_) => return Ok(None),
                None => false,
            };
            let key = Value::from(self.key(id));
            let rows = self.run(Which::Write, vec![key, Value::from(release), op_v, sid, d, want, life]);
            if release {
                self.forget(id);
            }
            (rows, 0)
        };
        let mut row = rows?.into_iter().next().ok_or_else(|| self.corrupt("write"))?;
        let int = |row: &mut Row, i: usize| row.take::<Option<i64>, _>(i).flatten();
        if at == 1 && int(&mut row, 0) == Some(1) {
            return Ok(None);
        }
        let ok = int(&mut row, at) == Some(1);
        let version = int(&mut row, at + 1);
        let now = loaded(row.take::<Option<Vec<u8>>, _>(at + 2).flatten(), int(&mut row, at + 3));
        Ok(Some(Step { ok, version, now }))
    }
}

impl Pooled for MysqlStore {
    fn reusable(&self) -> bool {
        !self.broken && self.held.is_empty()
    }

    /// A pooled connection that the server closed while it was idle (a restart, `wait_timeout`, a
    /// `KILL`) has its end-of-file (or the server's last error packet) waiting in the socket: a
    /// non-blocking peek sees it, with no round trip, and the pool connects afresh instead of failing
    /// the request. An idle MySQL connection is never sent anything unasked (TLS included: its
    /// handshake's records were all read before the first answer).
    fn still_valid(&mut self) -> bool {
        !self.broken && crate::net::fd_is_quiet(std::os::unix::io::AsRawFd::as_raw_fd(&self.conn))
    }
}

impl Collect for MysqlStore {
    fn gc(&mut self, exp: Expiry) -> Result<u64> {
        let mut total = 0;
        loop {
            let n = self.run_count(Which::Gc, vec![Value::from(exp.lifetime.as_secs_f64())])?;
            total += n;
            if n < GC_BATCH {
                break;
            }
        }
        if self.lock == LockMode::Row {
            // Lock rows of vanished holders that nobody came back for.
            while self.run_count(Which::RowGc, vec![])? >= GC_BATCH {}
        }
        Ok(total)
    }
}

impl Store for MysqlStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        let rows = self.run(Which::Load, vec![Value::from(id.as_str()), Value::from(exp.lifetime.as_secs_f64())])?;
        let Some(mut r) = rows.into_iter().next() else {
            self.read_user = Some((id.clone(), None));
            return Ok(None);
        };
        self.read_user = Some((id.clone(), r.take::<Option<Vec<u8>>, _>(2).flatten()));
        Ok(loaded(r.take::<Option<Vec<u8>>, _>(0).flatten(), r.take::<Option<i64>, _>(1).flatten()))
    }

    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Result<Acquire> {
        let (sid, life) = (Value::from(id.as_str()), Value::from(exp.lifetime.as_secs_f64()));
        let row_mode = self.lock == LockMode::Row;
        if !row_mode {
            match self.holds(id) {
                // This connection holds it for another request (two handles never share a connection,
                // but one handle may be asked twice): busy, as for anyone else.
                Some(t) if t != owner => return Ok(Acquire::Busy(Busy::default())),
                Some(_) => return self.load(id, exp).map(Acquire::Locked),
                None => {}
            }
        }
        let params = if row_mode {
            vec![sid, life, Value::from(owner.as_str()), Value::from(lock_expire.as_secs_f64())]
        } else {
            vec![Value::from(self.key(id)), sid, life]
        };
        let mut row = self.run(Which::Lock, params)?.into_iter().next().ok_or_else(|| self.corrupt("lock"))?;
        if row.take::<Option<i64>, _>(0).flatten() != Some(1) {
            let expires_in = if row_mode { row.take::<Option<f64>, _>(3).flatten().map(|s| Duration::from_secs_f64(s.max(0.0))) } else { None };
            return Ok(Acquire::Busy(Busy { expires_in, foreign: false }));
        }
        if !row_mode {
            self.held.push((id.clone(), owner.clone()));
        }
        self.read_user = Some((id.clone(), row.take::<Option<Vec<u8>>, _>(if row_mode { 4 } else { 3 }).flatten()));
        Ok(Acquire::Locked(loaded(row.take::<Option<Vec<u8>>, _>(1).flatten(), row.take::<Option<i64>, _>(2).flatten())))
    }

    /// Blocks in the server until the lock is released (or `deadline`, or `WAIT_SLICE`): the server
    /// wakes us.
    fn wait_for_release(&mut self, id: &SessionId, _busy: &Busy, deadline: Instant, attempt: u32) -> Result<()> {
        // A lock row tells nobody of its release: the default back-off.
        if self.holds(id).is_some() || self.lock == LockMode::Row {
            super::back_off(deadline, attempt);
            return Ok(());
        }
        let left = deadline.saturating_duration_since(Instant::now()).min(WAIT_SLICE);
        if left.is_zero() {
            return Ok(());
        }
        let key = self.key(id);
        self.run(Which::Wait, vec![Value::from(key.as_str()), Value::from(left.as_secs_f64()), Value::from(key.as_str())])?;
        Ok(())
    }

    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        let (op, want) = op_of(expect);
        Ok(Step::written(self.write(id, op, data, want, owner, exp)?))
    }

    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, exp: Expiry) -> Result<Touched> {
        Ok(match self.write(id, Op::Touch, &[], 0, owner, exp)? {
            None => Touched::LockLost,
            Some(_) => Touched::Done,
        })
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        if self.lock == LockMode::Row {
            return self.run(Which::Unlock, vec![Value::from(id.as_str()), Value::from(owner.as_str())]).map(|_| ());
        }
        if self.holds(id) != Some(owner) {
            return Ok(());
        }
        let key = self.key(id);
        let r = self.run(Which::Unlock, vec![Value::from(key)]);
        self.forget(id);
        r.map(|_| ())
    }

    /// With lock rows, the holder's token (so that a dead holder on this host is broken at once); an
    /// advisory lock dies with its connection and has none.
    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Token>> {
        if self.lock != LockMode::Row {
            return Ok(None);
        }
        let rows = self.run(Which::Holder, vec![Value::from(id.as_str())])?;
        Ok(rows.into_iter().next().and_then(|mut r| r.take::<Option<String>, _>(0).flatten()).map(Token::from_stored))
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        // A destroy by a request that lost the lock still deletes (as on the other engines); it
        // releases only a lock that is its own.
        let owner = owner.filter(|t| self.lock == LockMode::Row || self.holds(id) == Some(*t));
        self.read_user = None;
        self.write(id, Op::Destroy, &[], 0, owner, Expiry::new(Duration::ZERO)).map(|_| ())
    }

    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        Ok(!self.run(Which::Exists, vec![Value::from(id.as_str()), Value::from(exp.lifetime.as_secs_f64())])?.is_empty())
    }

    fn collector(&mut self) -> Option<&mut dyn Collect> {
        Some(self)
    }

    fn users(&mut self) -> Option<&mut dyn super::users::Users> {
        (self.schema == Schema::Native).then_some(self as &mut dyn super::users::Users)
    }

    fn scanner(&mut self) -> Option<&mut dyn super::Scan> {
        Some(self)
    }

    fn round_trips(&self) -> u64 {
        self.trips
    }
}

#[cfg(test)]
pub(crate) mod tests;
