//! The embedded default engine: one SQLite file, WAL mode, per-session locks.
//!
//! Every operation is one short transaction; no transaction is ever held across a PHP request. A
//! request that takes a session's lock writes nothing for it: the lock is a kernel lock, an OFD lock
//! on the session's *gate*, one byte of the file `<database>-locks` (a hash of the id). So a cycle
//! is one read and one write transaction, the write at the request's end, which checks the lock and
//! writes the session in one step. The kernel frees a gate when its holder's process dies, and wakes
//! whoever waits on it when it is released.
//!
//! A gate holder also locks one byte of a range of 2^26 above 2^62 chosen by the id, the byte that
//! says (in 10 ms, modulo the range) when its `lock_expire` ends: its *stamp*. A waiter reads it
//! with F_OFD_GETLK, waits on the gate no longer than that, and then takes the lock over with a
//! row in `session_locks`, as every lock was before. A row outranks a gate: a gate holder's write
//! is refused when any row for its session exists (a takeover, or REVOKED: the session was ended,
//! or its taker released it while the old holder still ran). A request that gets the gate and finds
//! a row decides in a write transaction, as before.
//!
//! Row locks: the owner token and an expiry, and, while held, an OFD lock on a byte of its own (a
//! hash of the id and the owner), so that a row whose byte nobody holds is known dead (SQLite is
//! always on the local host) and taken over at once instead of after `lock_expire`. Owners that hold
//! such a byte are stored as `k:<token>`; a lock row of another form (written by an older version)
//! is only taken over once it has expired. Without a writable lock file (a read-only mount), or on
//! a database we may not write, locks are rows only.
//!
//! Every row carries a `version`, changed by every write in the same statement that writes: a write
//! that expects a version makes it that + 1, any other write a fresh random one (so a session
//! destroyed and created again never comes back at a version a request read before; and the writer
//! knows the new version without reading it back). A write that expects a version is `UPDATE … WHERE version = ?`, one that
//! expects no session an INSERT that loses to a live row (an expired row counts as absent), both in
//! the transaction that checks and releases the writer's lock; a refused write reads what is stored
//! now in that same transaction. Databases made before the column existed get it at open (every
//! old row at version 0).

mod checkpoint;
pub mod options;
mod users;
mod scan;

pub use checkpoint::{describe as describe_checkpoints, stop_all as stop_checkpointers};

use std::fs::OpenOptions;
use std::io::ErrorKind as IoKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::wal::CheckpointMode;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

pub use options::SqliteOptions;
use super::{unix_now, Acquire, Busy, Collect, ErrorKind, Expect, Expiry, Loaded, Pooled, Result, Store, StoreError};
use super::{Touched, Version, Written};
use crate::id::SessionId;
use crate::kwait::{self, Kind};
use crate::lock::Token;
use crate::private;

/// Rows deleted per gc transaction: small enough that no writer waits behind one.
pub const GC_BATCH: usize = 500;
/// Rows of the cutoff's own minute one gc batch looks at (`gc_batches`).
const GC_EDGE_SCAN: usize = 4 * GC_BATCH;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id         TEXT PRIMARY KEY NOT NULL,  -- session id, [a-zA-Z0-9,-]{1,256}
    data       BLOB NOT NULL,              -- the encoded session, bytes as PHP gave them
    created_at REAL NOT NULL,              -- unix time (s) of the first write
    updated_at REAL NOT NULL,              -- unix time (s) of the last write or timestamp update
    user_id    TEXT,                       -- reserved for a per-user session index; NULL today
    version    INTEGER NOT NULL DEFAULT 0, -- changed by every write; a write may expect the one it read
    gc_bucket  INTEGER                     -- the minute of updated_at (its unix time / 60), for gc
);
CREATE TABLE IF NOT EXISTS session_locks (
    id         TEXT PRIMARY KEY NOT NULL,  -- session id
    owner      TEXT NOT NULL,              -- k:<token> of a request that took a lock over; x: revokes a lock
    expires_at REAL NOT NULL               -- unix time (s) after which the lock may be taken over
) WITHOUT ROWID;
";

/// What a database made before versions (issue 11) lacks; added at open.
const ADD_VERSION: &str = "ALTER TABLE sessions ADD COLUMN version INTEGER NOT NULL DEFAULT 0";

/// What a database made before gc buckets lacks; added at open (its rows keep NULL until gc fills
/// them in, `gc_batches`).
const ADD_GC_BUCKET: &str = "ALTER TABLE sessions ADD COLUMN gc_bucket INTEGER";

/// gc finds idle sessions by the minute of their last write (`gc_bucket`), not by `updated_at`
/// itself: an index of `updated_at` is rewritten by every write (measured: 3.1 WAL frames per update
/// instead of 1.0, and 3.5 per new session instead of 2.45), the bucket's index only when a write
/// moves the session into another minute, about once a minute for a busy session. So a write sets
/// `gc_bucket` only when the row it read (or last wrote) is in another minute (`seen_minute`):
/// SQLite maintains an index for every UPDATE that names its column, even with an unchanged value.
/// (Triggers that kept it for every writer cost a new session 10 % of its throughput through
/// php-fpm.) Rows an older version or the sqlite3 shell wrote keep an older bucket, or none (gc
/// fills those in), which gc's check of `updated_at` makes harmless. The old index goes.
pub const GC_BUCKET_SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS sessions_gc_bucket ON sessions(gc_bucket);
DROP INDEX IF EXISTS sessions_updated_at;
";

/// The gc bucket of unix time `t` (s), as the SQL `CAST(t / 60 AS INTEGER)` computes it.
pub(super) fn gc_bucket(t: f64) -> i64 {
    (t / 60.0) as i64
}

pub struct SqliteStore {
    conn: Connection,
    name: String,
    path: PathBuf,
    /// The database path as errors name it (`StoreError::at`).
    at: String,
    /// (device, inode) of the database file when opened.
    identity: (u64, u64),
    broken: bool,
    /// The lock file (`<database>-locks`), its path and (device, inode), and whether we could open it
    /// for writing: only then do our holdings come with a lock byte. None when it can not be opened
    /// at all (a read-only directory without one): locks are then rows only, as before.
    locks: Option<(std::fs::File, bool)>,
    locks_path: PathBuf,
    locks_identity: Option<(u64, u64)>,
    /// The lock this handle holds: OS locks held by this handle's descriptor of the lock file (they
    /// ARE the lock, like the files engine's flocked descriptor), not session state; everything else
    /// a request needs travels in the values (`Loaded`, `Expect`, `Busy`).
    hold: Option<Hold>,
    /// The per-user index's schema was made (or found) by this connection (`users.rs`).
    users_ready: bool,
    /// A database made by an older version that we may only read (`migrate`): read through a view
    /// that shows the columns it lacks; every change is refused (`writable`), for this reason.
    frozen: Option<&'static str>,
    /// The `gc_bucket` of a session's row as this handle last read or wrote it (see
    /// `GC_BUCKET_SCHEMA`); None when not known.
    seen_bucket: Option<(SessionId, i64)>,
    /// The process that opened it: a store a forked child holds from its parent (a session open
    /// at the fork) serves that request on, and is then closed, never pooled (see `crate::pool`).
    pid: u32,
}

/// What a handle holds of one session's lock (see the module's comment).
struct Hold {
    id: SessionId,
    /// The owner's token (as `Token::as_str`).
    owner: String,
    /// The session's own lock byte (`gate_at`), and the expiry stamp beside it (`stamp_at`) when it
    /// could be taken: the lock of a request that wrote no row.
    gate: Option<(u64, Option<u64>)>,
    /// The lock byte of a lock row of ours (`beacon_at`).
    beacon: Option<u64>,
    /// Whether the lock is (also) a row of ours in `session_locks`.
    row: bool,
}

/// A lock row that revokes the lock of a request that may hold it by its gate alone: left when the
/// session was ended (`users::end`, "log out everywhere"), and when a request that took an expired
/// gate over releases its row while the old holder still has the gate. That holder's write then
/// finds a row not its own and is refused. Any request that gets the gate takes it over (the old
/// holder is gone then), and gc removes one nobody came for after a day.
pub(crate) const REVOKED: &str = "x:";
/// How long a REVOKED row is kept: longer than any `lock_expire` (at most 86 400 s).
pub(crate) const REVOKED_FOR: f64 = 86_400.0 + 60.0;

/// The expiry stamp's unit (10 ms) and range: a holder locks one byte of a range of STAMP_UNITS
/// bytes, the one that says (modulo the range) when its lock expires; a waiter finds which with
/// F_OFD_GETLK. Half the range, 3.9 days, is more than the longest `lock_expire` (1 day).
const STAMP_PER_S: f64 = 100.0;
const STAMP_UNITS: u64 = 1 << 26;

/// Why an operation failed, before it is named (`SqliteStore::named`).
enum Fail {
    Sql(rusqlite::Error),
    /// An I/O error on the lock file, with what was being done.
    Io(&'static str, std::io::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Fail::Sql(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

type Res<T> = std::result::Result<T, Fail>;

/// SQLite's error as a `StoreError` at `at` (the database path), in SQLite's words: busy past
/// busy_timeout is a timeout, a damaged file corrupt, a file we may not open or write unavailable.
fn sql_error(at: &str, e: &rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    let kind = match e.sqlite_error_code() {
        Some(C::DatabaseBusy | C::DatabaseLocked) => ErrorKind::Timeout,
        Some(C::NotADatabase | C::DatabaseCorrupt) => ErrorKind::Corrupt,
        Some(C::TooBig) => ErrorKind::TooLarge,
        Some(C::CannotOpen | C::PermissionDenied | C::ReadOnly | C::NotFound) => ErrorKind::Unavailable,
        _ if matches!(e, rusqlite::Error::FromSqlConversionFailure(..) | rusqlite::Error::InvalidColumnType(..)) => {
            ErrorKind::Corrupt
        }
        _ => ErrorKind::Backend,
    };
    // rusqlite's errors carry SQLite's code as their source: its Display alone says it once.
    StoreError::new(kind, at, e.to_string())
}

/// An I/O error about `p`, in the words "`what` `p`: cause" (or the cause alone when `what` is empty).
fn io_error(p: &Path, e: &std::io::Error, what: &str) -> StoreError {
    let detail = if what.is_empty() { e.to_string() } else { format!("{what} {}: {e}", p.display()) };
    StoreError::io(p.display().to_string(), e, detail)
}

/// A row's version as the contract's `Version`, and back (None: no row can have it).
fn version_of(v: i64) -> Version {
    Version::new(v as u64 as u128)
}

fn sql_version(v: Version) -> Option<i64> {
    u64::try_from(v.get()).ok().map(|u| u as i64)
}

/// The version of a new row: random (62 bits, so that +1 per write never overflows), so that a session
/// destroyed (or collected) and created again never comes back at a version read before.
fn fresh_version() -> i64 {
    (crate::lock::fresh_u64() >> 2) as i64
}

/// The stored form of an owner that holds a kernel lock byte.
fn row_owner(owner: &Token) -> String {
    format!("k:{}", owner.as_str())
}

/// The byte of `<database>-locks` that `stored_owner`'s hold on `id` locks: a stable hash (MD5, the
/// same in every version and process), below 2^62 so that it is a valid file offset.
fn beacon_at(id: &SessionId, stored_owner: &str) -> u64 {
    let d = md5::compute([id.as_str().as_bytes(), b"\0", stored_owner.as_bytes()].concat()).0;
    u64::from_le_bytes(d[..8].try_into().expect("16-byte digest")) & ((1 << 62) - 1)
}

/// The session's own lock byte of `<database>-locks`: a request that holds it holds the session's
/// lock (unless a lock row says otherwise). Below 2^62, as `beacon_at`; a hash of the id alone.
fn gate_at(id: &SessionId) -> u64 {
    u64::from_le_bytes(gate_digest(id)[..8].try_into().expect("16-byte digest")) & ((1 << 62) - 1)
}

fn gate_digest(id: &SessionId) -> [u8; 16] {
    md5::compute([b"gate\0", id.as_str().as_bytes()].concat()).0
}

/// Where the session's expiry stamps live: a range of STAMP_UNITS bytes above 2^62 (so apart from
/// every `gate_at` and `beacon_at`), one of 2^35 ranges chosen by the id's hash. Two sessions held
/// at once share a range with odds of 2^-35; a waiter may then read the other's stamp, which can
/// only matter once that other holder has itself outlived its lock_expire.
fn stamp_range(id: &SessionId) -> u64 {
    let h = u64::from_le_bytes(gate_digest(id)[8..].try_into().expect("16-byte digest"));
    (1 << 62) + ((h & ((1 << 35) - 1)) << 26)
}

/// The stamp byte that says a lock taken at `now` expires `lock_expire` later.
fn stamp_at(id: &SessionId, now: f64, lock_expire: Duration) -> u64 {
    let ahead = lock_expire.as_secs_f64().min((STAMP_UNITS / 2) as f64 / STAMP_PER_S - 1.0);
    stamp_range(id) + ((now + ahead) * STAMP_PER_S) as u64 % STAMP_UNITS
}

/// Seconds until the lock whose stamp is at `at` expires (negative: expired that long ago).
fn stamp_left(id: &SessionId, at: u64, now: f64) -> f64 {
    let now_u = (now * STAMP_PER_S) as u64 % STAMP_UNITS;
    let ahead = (at - stamp_range(id) + STAMP_UNITS - now_u) % STAMP_UNITS;
    if ahead < STAMP_UNITS / 2 {
        ahead as f64 / STAMP_PER_S
    } else {
        -((STAMP_UNITS - ahead) as f64) / STAMP_PER_S
    }
}

/// Whether this process may write `p` (`access(W_OK)`: the mode bits for us, an immutable flag,
/// a read-only mount).
fn may_write(p: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c) = std::ffi::CString::new(p.as_os_str().as_bytes()) else { return false };
    // SAFETY: a valid NUL-terminated path.
    unsafe { libc::access(c.as_ptr(), libc::W_OK) == 0 }
}

fn file_identity(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

impl SqliteStore {
    pub fn open(o: &SqliteOptions) -> Result<Self> {
        let name = format!("sqlite://{}", o.path.display());
        let at = o.path.display().to_string();
        // Open errors say which store first (the warning reads "cannot open sqlite:///…: cause").
        let named = |e: StoreError| StoreError::new(e.kind(), e.at(), format!("{name}: {}", e.detail()));
        let (conn, frozen) = Self::connect(o, &at).map_err(named)?;
        let identity = file_identity(&o.path).ok_or_else(|| {
            StoreError::new(ErrorKind::Unavailable, &at, format!("{name}: the database file vanished while opening"))
        })?;
        let mut locks_path = o.path.clone().into_os_string();
        locks_path.push("-locks");
        let locks_path = PathBuf::from(locks_path);
        // A read-only database (a read-only mount, a file the user may only read) is still read:
        // then the lock file is opened read-only, or not at all, and holdings are rows only.
        let locks = match private::open(
            &locks_path,
            OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600),
            0o600,
        ) {
            Ok(f) => Some((f, true)),
            // Planted (another owner's, a symlink, a mode beyond 0600): refused like the database.
            Err(e) if e.raw_os_error().is_none() => return Err(named(io_error(&locks_path, &e, ""))),
            Err(_) => private::open(&locks_path, OpenOptions::new().read(true), 0o600).ok().map(|f| (f, false)),
        };
        let locks_identity = file_identity(&locks_path);
        Ok(SqliteStore {
            conn,
            name,
            path: o.path.clone(),
            at,
            identity,
            broken: false,
            locks,
            locks_path,
            locks_identity,
            hold: None,
            users_ready: false,
            frozen,
            seen_bucket: None,
            pid: crate::lock::pid(),
        })
    }

    /// Whether the holder `stored_owner` of `id`'s lock row still runs. Only owners that hold a
    /// kernel lock byte can be told dead; and only while our lock file is the one at the path (a
    /// removed and recreated lock file would hide live holders from us).
    fn holder_alive(&mut self, id: &SessionId, stored_owner: &str) -> Res<bool> {
        let Some((f, _)) = &self.locks else { return Ok(true) };
        if !stored_owner.starts_with("k:") {
            return Ok(true);
        }
        if file_identity(&self.locks_path) != self.locks_identity {
            self.broken = true;
            return Ok(true);
        }
        kwait::byte_is_locked(f, beacon_at(id, stored_owner)).map_err(|e| Fail::Io("cannot check the lock file", e))
    }

    /// Takes lock byte `at` for our holding: false when we can not hold one (no writable lock file),
    /// or a hash collision with a live holding (practically never).
    fn take_beacon(&self, at: u64) -> Res<bool> {
        match &self.locks {
            Some((f, true)) => kwait::try_lock_byte(f, at).map_err(|e| Fail::Io("cannot lock the lock file", e)),
            _ => Ok(false),
        }
    }

    /// Drops the kernel locks of our hold on `id` for `owner` (after its lock row, if any, is gone):
    /// the stamp before the gate, so that a stamp never outlives its holder's gate.
    fn release_hold(&mut self, id: &SessionId, owner: &Token) {
        if !self.hold.as_ref().is_some_and(|h| h.id == *id && h.owner == owner.as_str()) {
            return;
        }
        let h = self.hold.take().expect("checked above");
        Self::drop_bytes(&self.locks, h.gate, h.beacon);
    }

    fn drop_bytes(locks: &Option<(std::fs::File, bool)>, gate: Option<(u64, Option<u64>)>, beacon: Option<u64>) {
        let Some((f, _)) = locks else { return };
        if let Some((g, stamp)) = gate {
            if let Some(st) = stamp {
                let _ = kwait::unlock_byte(f, st);
            }
            let _ = kwait::unlock_byte(f, g);
        }
        if let Some(b) = beacon {
            let _ = kwait::unlock_byte(f, b);
        }
    }

    /// Whether this handle holds `id`'s lock for `owner` by its gate alone, without a row.
    fn holds_by_gate(&self, id: &SessionId, owner: &Token) -> bool {
        self.hold.as_ref().is_some_and(|h| h.id == *id && h.owner == owner.as_str() && h.gate.is_some() && !h.row)
    }

    /// The lock file, when locks may be taken without a row: we can lock its bytes, and the
    /// database can be written (a frozen one is read with row locks, which it refuses, as before).
    fn gate_file(&self) -> Option<&std::fs::File> {
        match &self.locks {
            Some((f, true)) if self.frozen.is_none() => Some(f),
            _ => None,
        }
    }

    /// The connection, and why it may only read, when it reads an old database it can not migrate
    /// (`migrate`).
    fn connect(o: &SqliteOptions, at: &str) -> Result<(Connection, Option<&'static str>)> {
        let dir = o.path.parent().unwrap_or(Path::new("/"));
        if o.private_dir {
            private::ensure_private_dir(dir).map_err(|e| io_error(dir, &e, ""))?;
        }
        if !dir.is_dir() {
            let why = if dir.exists() { "is not a directory" } else { "does not exist" };
            return Err(StoreError::new(ErrorKind::Unavailable, dir.display().to_string(), format!("directory {} {why}", dir.display())));
        }
        if o.path.is_dir() {
            return Err(StoreError::new(ErrorKind::Unavailable, at, format!("{} is a directory, not a database file", o.path.display())));
        }
        check_files(&o.path)?;
        let sql = |e: rusqlite::Error| sql_error(at, &e);
        // In a forked child, the parent's checkpointer connections are closed before the child
        // opens one of its own (as its pooled ones are, `crate::pool`).
        checkpoint::close_inherited();
        let mut conn = Connection::open(&o.path).map_err(sql)?;
        let patience = Patience::new(o.busy_timeout);
        conn.busy_handler(Some(busy_backoff(patience.clone()))).map_err(sql)?;
        let checkpointer = file_identity(&o.path).map(|id| checkpoint::Checkpointer::for_database(&o.path, id, o.synchronous_full));
        conn.wal_hook(Some(checkpoint_hook(patience, checkpointer))).map_err(sql)?;
        // Switching to WAL needs a moment of exclusive access; when many workers start at once, retry.
        let mut tries = 0;
        loop {
            match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
                Ok(_) => break,
                Err(e) if tries < 50 && is_busy(&e) => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(sql(e)),
            }
        }
        conn.execute_batch(if o.synchronous_full { "PRAGMA synchronous=FULL" } else { "PRAGMA synchronous=NORMAL" })
            .map_err(sql)?;
        // A log grown large (by a build before `checkpoint_hook`) is cut back at its next restart.
        conn.execute_batch(&format!("PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")).map_err(sql)?;
        conn.execute_batch(SCHEMA).map_err(sql)?;
        let frozen = migrate(&mut conn).map_err(sql)?;
        Ok((conn, frozen))
    }

    /// Names a failure (the database, or the lock file for its I/O errors).
    fn named(&self, f: Fail) -> StoreError {
        match f {
            Fail::Sql(e) => sql_error(&self.at, &e),
            Fail::Io(what, e) => io_error(&self.locks_path, &e, what),
            Fail::Store(e) => e,
        }
    }

    /// Marks the connection as not reusable after any error, and names it.
    fn guard<T>(&mut self, r: Res<T>) -> Result<T> {
        r.map_err(|f| {
            self.broken = true;
            self.named(f)
        })
    }

    /// The live session, and its row's gc bucket.
    fn load_in(conn: &Connection, id: &SessionId, exp: Expiry, now: f64) -> rusqlite::Result<(Option<Loaded>, Option<i64>)> {
        conn.prepare_cached("SELECT data, version, gc_bucket FROM sessions WHERE id = ?1 AND updated_at >= ?2")?
            .query_row(params![id.as_str(), now - exp.lifetime.as_secs_f64()], |r| {
                Ok((Some(Loaded { data: r.get(0)?, version: version_of(r.get(1)?) }), r.get(2)?))
            })
            .optional()
            .map(Option::unwrap_or_default)
    }

    /// Keeps what a read or write found of `id`'s gc bucket (`seen_bucket`).
    fn saw_bucket(&mut self, id: &SessionId, bucket: Option<i64>) {
        self.seen_bucket = bucket.map(|b| (id.clone(), b));
    }

    /// The minute `id`'s row was in when this handle last read or wrote it. A write whose time is
    /// in that minute leaves its `gc_bucket` (and the index) alone: writes store the time they got
    /// the write transaction at, so in their order, and a bucket read before is at most the stored
    /// one, which is at most the writer's: equal to the writer's, all three are.
    fn seen_minute(&self, id: &SessionId) -> Option<i64> {
        self.seen_bucket.as_ref().filter(|(seen, _)| seen == id).map(|&(_, b)| b)
    }

    /// Ends `owner`'s lock row inside `tx`; false when the lock is no longer ours. `revoke`: someone
    /// else holds the session's gate (a holder whose expired lock this row took over), so the row is
    /// made REVOKED instead of deleted, and that holder's write stays refused.
    fn release_in(tx: &Connection, id: &SessionId, owner: &Token, revoke: bool) -> rusqlite::Result<bool> {
        let (mine, plain) = (row_owner(owner), owner.as_str());
        let n = if revoke {
            tx.prepare_cached("UPDATE session_locks SET owner = ?4, expires_at = ?5 WHERE id = ?1 AND (owner = ?2 OR owner = ?3)")?
                .execute(params![id.as_str(), mine, plain, REVOKED, unix_now() + REVOKED_FOR])?
        } else {
            tx.prepare_cached("DELETE FROM session_locks WHERE id = ?1 AND (owner = ?2 OR owner = ?3)")?
                .execute(params![id.as_str(), mine, plain])?
        };
        Ok(n == 1)
    }

    /// Whether `owner`'s release of a row (it holds no gate alone) must leave it REVOKED.
    fn revoke_on_release(&self, id: &SessionId, owner: Option<&Token>, by_gate: bool) -> Res<bool> {
        match owner {
            Some(_) if !by_gate => self.gate_held_elsewhere(id),
            _ => Ok(false),
        }
    }

    /// Whether a row's release must leave it REVOKED (`release_in`): another open file holds the
    /// session's gate. Our own gate does not count; a waiter's passing look at it may, which only
    /// costs the next request one write transaction.
    fn gate_held_elsewhere(&self, id: &SessionId) -> Res<bool> {
        match self.gate_file() {
            Some(f) => kwait::byte_is_locked(f, gate_at(id)).map_err(|e| Fail::Io("cannot check the lock file", e)),
            None => Ok(false),
        }
    }

    /// Writes `data` in `tx` if the stored session is as `expect` says; the new version, or None.
    /// No `RETURNING` (SQLite buffers a RETURNING statement's rows in an ephemeral table: a b-tree
    /// opened, paged and freed per execution, a third of the instructions of a whole bench cycle and
    /// heap growth trimmed back every cycle): the new version is one the write knows, the expected
    /// one + 1, or else a fresh random one.
    /// `same_minute`: the stored row is in `now`'s minute already, so its `gc_bucket` is left alone
    /// (see `GC_BUCKET_SCHEMA`).
    #[allow(clippy::too_many_arguments)]
    fn write_in(tx: &Connection, id: &SessionId, data: &[u8], expect: Expect, exp: Expiry, now: f64, same_minute: bool) -> rusqlite::Result<Option<i64>> {
        let cutoff = now - exp.lifetime.as_secs_f64();
        let fresh = fresh_version();
        let n = match expect {
            // Under our lock the lock decides (Held): a locking-off writer is overwritten, as before.
            Expect::Any | Expect::Held(_) => tx
                .prepare_cached(if same_minute {
                    "INSERT INTO sessions (id, data, created_at, updated_at, version, gc_bucket)
                     VALUES (?1, ?2, ?3, ?3, ?4, CAST(?3 / 60 AS INTEGER))
                     ON CONFLICT(id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at,
                         version = excluded.version"
                } else {
                    "INSERT INTO sessions (id, data, created_at, updated_at, version, gc_bucket)
                     VALUES (?1, ?2, ?3, ?3, ?4, CAST(?3 / 60 AS INTEGER))
                     ON CONFLICT(id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at,
                         version = excluded.version, gc_bucket = excluded.gc_bucket"
                })?
                .execute(params![id.as_str(), data, now, fresh])?,
            // An expired row is no session: the create replaces it (a new session, created now).
            Expect::Absent => tx
                .prepare_cached(
                    "INSERT INTO sessions (id, data, created_at, updated_at, version, gc_bucket)
                     VALUES (?1, ?2, ?3, ?3, ?4, CAST(?3 / 60 AS INTEGER))
                     ON CONFLICT(id) DO UPDATE SET data = excluded.data, created_at = excluded.created_at,
                         updated_at = excluded.updated_at, version = excluded.version, gc_bucket = excluded.gc_bucket
                     WHERE sessions.updated_at < ?5",
                )?
                .execute(params![id.as_str(), data, now, fresh, cutoff])?,
            Expect::Version(v) => {
                let Some(v) = sql_version(v) else { return Ok(None) };
                let n = tx
                    .prepare_cached(if same_minute {
                        "UPDATE sessions SET data = ?2, updated_at = ?3, version = version + 1
                         WHERE id = ?1 AND version = ?4 AND updated_at >= ?5"
                    } else {
                        "UPDATE sessions SET data = ?2, updated_at = ?3, version = version + 1, gc_bucket = CAST(?3 / 60 AS INTEGER)
                         WHERE id = ?1 AND version = ?4 AND updated_at >= ?5"
                    })?
                    .execute(params![id.as_str(), data, now, v, cutoff])?;
                return Ok((n == 1).then_some(v.wrapping_add(1)));
            }
        };
        Ok((n == 1).then_some(fresh))
    }

    /// Before a change: the path must still name the file this connection opened. A database removed
    /// (or its directory) or replaced while a request ran would take the write into an orphaned inode
    /// and report success; refuse instead, so the request is told its change was not stored.
    fn check_file(&mut self) -> Result<()> {
        self.writable()?;
        if file_identity(&self.path) == Some(self.identity) {
            return Ok(());
        }
        self.broken = true;
        Err(StoreError::new(
            ErrorKind::Unavailable,
            &self.at,
            format!("the database file {} was removed or replaced while this request ran", self.path.display()),
        ))
    }

    /// Refuses a change to a database made by an older version that we may only read (`frozen`):
    /// the view it is read through takes no writes, and the file none either.
    fn writable(&self) -> Result<()> {
        let Some(why) = self.frozen else { return Ok(()) };
        Err(StoreError::new(ErrorKind::Unavailable, &self.at, format!("{} is read-only and {why}", self.path.display())))
    }

    /// Runs `f` in an IMMEDIATE transaction after checking (and releasing) `owner`'s lock: `lost`
    /// when the lock is no longer ours (nothing is changed then).
    fn under_lock<T>(&mut self, id: &SessionId, owner: Option<&Token>, lost: T, f: impl FnOnce(&Connection) -> Res<T>) -> Result<T> {
        if let Err(e) = self.check_file() {
            if let Some(owner) = owner {
                self.release_hold(id, owner);
            }
            return Err(e);
        }
        let by_gate = owner.is_some_and(|o| self.holds_by_gate(id, o));
        // A gate is a lock only in the lock file other requests open: one removed or replaced
        // meanwhile (by hand, a temp cleaner) may have let another request take the session.
        if by_gate && file_identity(&self.locks_path) != self.locks_identity {
            self.broken = true;
            self.release_hold(id, owner.expect("by_gate"));
            return Ok(lost);
        }
        let revoke = self.revoke_on_release(id, owner, by_gate);
        let conn = &self.conn;
        let r = revoke.and_then(|revoke| begin(conn).map_err(Fail::from).map(|()| revoke)).and_then(|revoke| {
            let r = (|| {
                if let Some(owner) = owner {
                    // Held by the gate: ours unless a row says otherwise (a request that took it
                    // over after our lock_expire, or REVOKED). Held by a row: the row must be ours.
                    let ours = if by_gate { Self::unclaimed_in(conn, id)? } else { Self::release_in(conn, id, owner, revoke)? };
                    if !ours {
                        return Ok((lost, false));
                    }
                }
                Ok((f(conn)?, true))
            })();
            end(conn, r, |&(_, commit)| commit)
        });
        let r = r.map(|(t, _)| t);
        if let Some(owner) = owner {
            self.release_hold(id, owner);
        }
        self.guard(r)
    }

    /// No lock row for `id`: nobody took a gate holder's lock over, and the session was not ended.
    fn unclaimed_in(tx: &Connection, id: &SessionId) -> rusqlite::Result<bool> {
        Ok(!tx.prepare_cached("SELECT 1 FROM session_locks WHERE id = ?1")?.exists(params![id.as_str()])?)
    }

    /// `lock_and_load`'s step inside its write transaction: Busy when a live holder has the lock row,
    /// else the row taken (with lock byte `at` of our own when we can hold one: `beacon`) and the data.
    #[allow(clippy::too_many_arguments)]
    fn take_in_tx(
        &mut self,
        id: &SessionId,
        owner: &Token,
        with_byte: &str,
        at: u64,
        lock_expire: Duration,
        exp: Expiry,
        beacon: &mut bool,
    ) -> Res<Acquire> {
        let now = unix_now();
        // The lock byte first (it is ours alone: the hash of the id and our token), so that the row
        // can say whether we hold one; given back by the caller when we do not get the lock.
        *beacon = self.take_beacon(at)?;
        let me = if *beacon { with_byte } else { owner.as_str() };
        // The row taken when free, expired, ours, or `dead`'s: one statement when nobody holds it (the
        // usual case, as a release deletes the row), the holder read only when someone does.
        let take = |conn: &Connection, dead: &str| {
            conn.prepare_cached(
                "INSERT INTO session_locks (id, owner, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                 WHERE session_locks.expires_at <= ?4 OR session_locks.owner IN (?5, ?6, ?7, ?8)",
            )?
            .execute(params![id.as_str(), me, now + lock_expire.as_secs_f64(), now, with_byte, owner.as_str(), dead, REVOKED])
        };
        if take(&self.conn, "")? == 0 {
            // A live-looking holder (unexpired, not us): taken over only when its lock byte tells it is dead.
            let held: Option<(String, f64)> = self
                .conn
                .prepare_cached("SELECT owner, expires_at FROM session_locks WHERE id = ?1")?
                .query_row(params![id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            let Some((o, until)) = held else { return Ok(Acquire::Busy(Busy::default())) };
            if self.holder_alive(id, &o)? {
                let expires_in = Some(Duration::from_secs_f64((until - now).max(0.0)));
                return Ok(Acquire::Busy(Busy { expires_in, foreign: false }));
            }
            if take(&self.conn, &o)? == 0 {
                return Ok(Acquire::Busy(Busy::default()));
            }
        }
        let (data, bucket) = Self::load_in(&self.conn, id, exp, now)?;
        self.saw_bucket(id, bucket);
        Ok(Acquire::Locked(data))
    }

    /// The lock without a write: the session's gate byte taken, then its expiry stamp, then one read
    /// of the lock row and the session. No row: the lock is ours, and the request writes once, at
    /// its end. A row (a request that took over an expired gate, an older version's lock, REVOKED):
    /// decided in a write transaction as before (`lock_by_row`), keeping the gate if it gets the lock.
    /// The gate held by someone else: Busy until its stamp says its lock expired, then taken over
    /// with a row of our own (the holder's write then finds it, and is refused).
    fn lock_by_gate(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Res<Acquire> {
        let f = self.gate_file().expect("checked by the caller");
        let io = |what| move |e| Fail::Io(what, e);
        let (gate, now) = (gate_at(id), unix_now());
        if !kwait::try_lock_byte(f, gate).map_err(io("cannot lock the lock file"))? {
            let range = stamp_range(id);
            let stamp = kwait::locked_in_range(f, range, STAMP_UNITS).map_err(io("cannot check the lock file"))?;
            return match stamp.map(|at| stamp_left(id, at, now)) {
                Some(left) if left <= 0.0 => self.lock_by_row(id, owner, lock_expire, exp, None),
                Some(left) => Ok(Acquire::Busy(Busy { expires_in: Some(Duration::from_secs_f64(left)), foreign: false })),
                // Taken this instant (its stamp comes next), or a waiter looking: wait on the gate.
                None => Ok(Acquire::Busy(Busy::default())),
            };
        }
        let stamp = stamp_at(id, now, lock_expire);
        // A stamp byte another holder has (the same range and expiry: practically never) is left:
        // that lock then expires with the other holder's.
        let stamped = match kwait::try_lock_byte(f, stamp) {
            Ok(got) => got.then_some(stamp),
            Err(e) => {
                Self::drop_bytes(&self.locks, Some((gate, None)), None);
                return Err(io("cannot lock the lock file")(e));
            }
        };
        let read = Self::gated_read(&self.conn, id, exp, now);
        match read {
            Ok((false, data, bucket)) => {
                self.hold = Some(Hold { id: id.clone(), owner: owner.as_str().to_string(), gate: Some((gate, stamped)), beacon: None, row: false });
                self.saw_bucket(id, bucket);
                Ok(Acquire::Locked(data))
            }
            Ok((true, ..)) => self.lock_by_row(id, owner, lock_expire, exp, Some((gate, stamped))),
            Err(e) => {
                Self::drop_bytes(&self.locks, Some((gate, stamped)), None);
                Err(e.into())
            }
        }
    }

    /// One read: whether `id` has a lock row, the session, and its row's gc bucket.
    fn gated_read(conn: &Connection, id: &SessionId, exp: Expiry, now: f64) -> rusqlite::Result<(bool, Option<Loaded>, Option<i64>)> {
        conn.prepare_cached(
            "SELECT l.id IS NOT NULL, s.data, s.version, s.gc_bucket FROM (SELECT ?1 AS id) AS k
             LEFT JOIN session_locks AS l ON l.id = k.id
             LEFT JOIN sessions AS s ON s.id = k.id AND s.updated_at >= ?2",
        )?
        .query_row(params![id.as_str(), now - exp.lifetime.as_secs_f64()], |r| {
            let data: Option<Vec<u8>> = r.get(1)?;
            let version: Option<i64> = r.get(2)?;
            Ok((r.get(0)?, data.map(|data| Loaded { data, version: version_of(version.unwrap_or(0)) }), r.get(3)?))
        })
    }

    /// The lock as a row (with a lock byte of its own when the lock file can be written), in one
    /// write transaction: the holder's check, the take and the read. `gate`: the gate bytes we hold,
    /// kept with the row when we get the lock, else let go.
    fn lock_by_row(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry, gate: Option<(u64, Option<u64>)>) -> Res<Acquire> {
        let with_byte = row_owner(owner);
        let at = beacon_at(id, &with_byte);
        let mut beacon = false;
        // (A read transaction before it, to answer "still busy" without the write lock, was one
        // transaction more for every request; waiters do not poll here, the kernel wakes them.)
        let r = begin(&self.conn).map_err(Fail::from).and_then(|()| {
            let r = self.take_in_tx(id, owner, &with_byte, at, lock_expire, exp, &mut beacon);
            end(&self.conn, r, |a| matches!(a, Acquire::Locked(_)))
        });
        if matches!(r, Ok(Acquire::Locked(_))) {
            self.hold = Some(Hold { id: id.clone(), owner: owner.as_str().to_string(), gate, beacon: beacon.then_some(at), row: true });
        } else {
            Self::drop_bytes(&self.locks, gate, beacon.then_some(at));
        }
        r
    }

    /// gc: deletes idle sessions in batches of GC_BATCH rows, each DELETE its own short transaction
    /// (autocommit), so a writer waits at most for one batch, not for the whole gc. `between` runs
    /// after each batch with the connection and the batch's row count (a no-op outside tests, which
    /// check there that no transaction is open and another connection can write).
    ///
    /// By the `gc_bucket` index: the sessions of the minutes before the cutoff's, then the idle ones
    /// among the first GC_EDGE_SCAN rows of the cutoff's own minute (a minute of more sessions than
    /// that keeps the rest until a later gc; every read ignores them meanwhile). Rows of a database
    /// made before gc buckets have none: each gc first fills them in, in batches too, from the
    /// index's NULL entries.
    fn gc_batches(&mut self, exp: Expiry, mut between: impl FnMut(&Connection, usize)) -> Result<u64> {
        let r = (|| -> Res<u64> {
            // A read first (the index's NULL entries): an UPDATE takes the write lock even when it
            // changes nothing, and once filled in, no row lacks its bucket again.
            let unfilled = |c: &Connection| c.prepare_cached("SELECT EXISTS (SELECT 1 FROM sessions WHERE gc_bucket IS NULL)")?.query_row([], |r| r.get::<_, bool>(0));
            while unfilled(&self.conn)? {
                let n = self
                    .conn
                    .prepare_cached(
                        "UPDATE sessions SET gc_bucket = CAST(updated_at / 60 AS INTEGER) WHERE rowid IN
                         (SELECT rowid FROM sessions WHERE gc_bucket IS NULL LIMIT ?1)",
                    )?
                    .execute(params![GC_BATCH as i64])?;
                between(&self.conn, n);
                if n < GC_BATCH {
                    break;
                }
            }
            let cutoff = unix_now() - exp.lifetime.as_secs_f64();
            let mut total = 0u64;
            loop {
                let n = self
                    .conn
                    .prepare_cached(
                        "DELETE FROM sessions WHERE rowid IN
                         (SELECT rowid FROM sessions WHERE gc_bucket < ?1 AND updated_at < ?2 LIMIT ?3)",
                    )?
                    .execute(params![gc_bucket(cutoff), cutoff, GC_BATCH as i64])?;
                let n = if n < GC_BATCH {
                    // Then the cutoff's own minute, of which only a part is idle: its first
                    // GC_EDGE_SCAN rows looked at, so that a minute of many sessions costs one gc a
                    // bounded look (the rest go with the minutes before the cutoff's, at a later gc).
                    n + self
                        .conn
                        .prepare_cached(
                            "DELETE FROM sessions WHERE rowid IN (SELECT rowid FROM
                             (SELECT rowid, updated_at FROM sessions WHERE gc_bucket = ?1 LIMIT ?4)
                             WHERE updated_at < ?2 LIMIT ?3)",
                        )?
                        .execute(params![gc_bucket(cutoff), cutoff, (GC_BATCH - n) as i64, GC_EDGE_SCAN as i64])?
                } else {
                    n
                };
                total += n as u64;
                between(&self.conn, n);
                if n < GC_BATCH {
                    break;
                }
            }
            // Locks of vanished holders that nobody came back for.
            self.conn
                .prepare_cached("DELETE FROM session_locks WHERE expires_at < ?1")?
                .execute(params![unix_now()])?;
            Ok(total)
        })();
        self.guard(r)
    }
}

/// Brings a database made by an older version to this layout, once: the `version` column (every
/// row at version 0), the `gc_bucket` column with its index (`GC_BUCKET_SCHEMA`; old rows get their
/// bucket from gc), and no `updated_at` index. The first connection that finds
/// something missing adds it in a write transaction, in which it looks again.
///
/// A database we may only read (read-only storage, an immutable file) can not be changed. It is
/// still read: a temporary view named `sessions` shows the missing columns as constants (version 0,
/// no bucket; SQLite looks up an unqualified name in the temp schema first, so every query reads
/// through it), and the reason its changes are refused is returned (`SqliteStore::writable`).
fn migrate(conn: &mut Connection) -> rusqlite::Result<Option<&'static str>> {
    fn has(c: &Connection, column: &str) -> rusqlite::Result<bool> {
        c.prepare_cached("SELECT 1 FROM pragma_table_info('sessions') WHERE name = ?1")?.exists([column])
    }
    fn current(c: &Connection) -> rusqlite::Result<bool> {
        let made: bool = c.prepare_cached(
            "SELECT count(*) = 1 AND NOT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'sessions_updated_at')
             FROM sqlite_master WHERE name = 'sessions_gc_bucket'",
        )?
        .query_row([], |r| r.get(0))?;
        Ok(made && has(c, "version")? && has(c, "gc_bucket")?)
    }
    if current(conn)? {
        return Ok(None);
    }
    let added = (|| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if !has(&tx, "version")? {
            tx.execute_batch(ADD_VERSION)?;
        }
        if !has(&tx, "gc_bucket")? {
            tx.execute_batch(ADD_GC_BUCKET)?;
        }
        tx.execute_batch(GC_BUCKET_SCHEMA)?;
        tx.commit()
    })();
    match added {
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::ReadOnly) => {
            let (version, bucket) = (has(conn, "version")?, has(conn, "gc_bucket")?);
            if version && bucket {
                // Only the index is missing, or the old one there: read as it is (no write reaches it).
                return Ok(None);
            }
            conn.execute_batch(&format!(
                "PRAGMA temp_store = MEMORY;
                 CREATE TEMP VIEW sessions AS
                     SELECT id, data, created_at, updated_at, user_id, {}, {} FROM main.sessions",
                if version { "version" } else { "0 AS version" },
                if bucket { "gc_bucket" } else { "NULL AS gc_bucket" },
            ))?;
            Ok(Some(if version {
                "was made by an older version of session_proxy: it is only read; open it once with write access to update it"
            } else {
                "was made before session versions: it is only read; open it once with write access to add them"
            }))
        }
        r => r.map(|()| None),
    }
}

/// Opens a write transaction (`BEGIN IMMEDIATE`) with a cached statement: rusqlite's
/// `transaction_with_behavior` and `commit` parse "BEGIN IMMEDIATE" and "COMMIT" anew every time.
fn begin(conn: &Connection) -> rusqlite::Result<()> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([]).map(drop)
}

/// Ends the transaction `begin` opened: committed when `r` is Ok and `commit` says so, else rolled
/// back. An error of the step itself says more than that of ending its transaction.
fn end<T>(conn: &Connection, r: Res<T>, commit: impl FnOnce(&T) -> bool) -> Res<T> {
    let sql = if r.as_ref().is_ok_and(commit) { "COMMIT" } else { "ROLLBACK" };
    if let Err(e) = conn.prepare_cached(sql).and_then(|mut st| st.execute([])) {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        return if r.is_err() { r } else { Err(e.into()) };
    }
    r
}

/// SQLite's own busy handler sleeps whole milliseconds (1, 2, 5, 10, 15, 20, 25 ... ms), and a
/// write transaction here lasts tens of microseconds: under concurrent writers most of a waiter's
/// time went to oversleeping the transaction it waited for (the tail latency under php-fpm load).
/// This one starts at 10 µs and doubles up to 1 ms, until `timeout` has passed since the first busy
/// answer of this attempt.
fn busy_backoff(patience: Patience) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut first = Instant::now();
    move |count| {
        let now = Instant::now();
        if count == 0 {
            first = now;
        }
        let waited = now.duration_since(first);
        let timeout = patience.get();
        if waited >= timeout {
            return false;
        }
        std::thread::sleep(busy_step(count).min(timeout - waited));
        true
    }
}

/// How long `busy_backoff` sleeps at its `count`th call of an attempt: 10 µs, doubling up to 1 ms.
fn busy_step(count: i32) -> Duration {
    Duration::from_micros((10u64 << count.clamp(0, 7)).min(1000))
}

/// How long a connection's busy handler waits (`busy_backoff`): the store's `busy_timeout`, and
/// `CHECKPOINT_WAIT` while `checkpoint_hook` checkpoints. Shared by the handler and the hook.
#[derive(Clone)]
struct Patience {
    usual: Duration,
    now_us: Arc<AtomicU64>,
}

impl Patience {
    fn new(usual: Duration) -> Self {
        Patience { usual, now_us: Arc::new(AtomicU64::new(usual.as_micros() as u64)) }
    }
    fn get(&self) -> Duration {
        Duration::from_micros(self.now_us.load(Ordering::Relaxed))
    }
    fn set(&self, d: Duration) {
        self.now_us.store(d.as_micros() as u64, Ordering::Relaxed);
    }
}

/// WAL frames after which a commit asks for a checkpoint: twice SQLite's own `wal_autocheckpoint`
/// default (8 MB of 4 KiB pages). While the commit that checkpointed waited for the syncs, the p99
/// of new sessions through php-fpm (8 workers; a new session writes 3.5 frames) followed the
/// checkpoint's size: 1000 frames gave 17.6–22.5 ms, 500 frames 12.4–13.6
/// (`bench/results/fpm-sqlite-checkpoint-2026-12-04.txt`). With the checkpoint on its own thread,
/// 2000 frames gave new sessions 1.13× the req/s of 500, at the same p99 (6.7 against 6.5 ms) and
/// the same for existing sessions (`bench/results/fpm-sqlite-checkpoint-thread-2026-12-04.txt`):
/// fewer checkpoints, each holding writers back (RESTART) no longer.
const CHECKPOINT_FRAMES: i32 = 2000;
/// How long such a checkpoint waits for the readers of older frames to finish; ours read in one
/// statement, so this is only reached next to a long reader (another program), and the log is then
/// restarted at a later commit instead.
const CHECKPOINT_WAIT: Duration = Duration::from_millis(200);
/// A log larger than this is truncated to it when it restarts (`journal_size_limit`): a few times
/// what CHECKPOINT_FRAMES frames of 4 KiB pages take.
const WAL_LIMIT_BYTES: u64 = 32 << 20;

/// Replaces SQLite's automatic checkpoint, which is PASSIVE: under steady load some reader always
/// reads older frames, so a passive checkpoint never finds the log wholly copied with nobody in it,
/// the log never restarts, and it grows without end (measured: 722 MB in 15 s from 8 php-fpm
/// workers). A RESTART checkpoint holds new writers back while it copies the log and waits for the
/// readers still in it, so the next commit writes the log from its start again.
///
/// A commit that leaves CHECKPOINT_FRAMES frames or more hands the checkpoint to its process's
/// checkpointer thread (`checkpoint`), and runs it itself only where there is none.
///
/// Runs after the commit, whose result stands whatever the checkpoint does: its failure (busy past
/// CHECKPOINT_WAIT, I/O) is never reported as the commit's. After one, this connection tries again
/// only once the log has grown by CHECKPOINT_FRAMES more (or restarted): a reader that stays for
/// minutes (a backup) costs its commits one wait per CHECKPOINT_FRAMES frames, not one each.
fn checkpoint_hook(
    patience: Patience,
    thread: Option<Arc<checkpoint::Checkpointer>>,
) -> impl FnMut(&mut rusqlite::hooks::Wal, i32) -> rusqlite::Result<()> + Send + 'static {
    let mut failed_at = None;
    move |wal, frames| {
        if frames >= CHECKPOINT_FRAMES && thread.as_ref().is_some_and(|t| t.request(frames)) {
            return Ok(());
        }
        if checkpoint_due(frames, failed_at) {
            #[cfg(test)]
            INLINE_CHECKPOINTS.with(|c| c.set(c.get() + 1));
            patience.set(CHECKPOINT_WAIT);
            // As `checkpoint::checkpoint`: PASSIVE copies the log without holding writers back, the
            // RESTART holds them only for what was committed meanwhile, the syncs and the restart.
            let done = wal.checkpoint_v2(CheckpointMode::PASSIVE).is_ok() && wal.checkpoint_v2(CheckpointMode::RESTART).is_ok();
            patience.set(patience.usual);
            failed_at = (!done).then_some(frames);
            if let (true, Some(t)) = (done, &thread) {
                t.restarted();
            }
        }
        Ok(())
    }
}

#[cfg(test)]
thread_local! {
    /// Checkpoints this thread's commits ran themselves.
    static INLINE_CHECKPOINTS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Whether a commit that leaves `frames` frames in the log checkpoints, when this connection's last
/// checkpoint gave up at `failed_at` frames.
fn checkpoint_due(frames: i32, failed_at: Option<i32>) -> bool {
    frames >= CHECKPOINT_FRAMES
        && failed_at.is_none_or(|at| frames < at || frames >= at.saturating_add(CHECKPOINT_FRAMES))
}

/// The files SQLite opens beside a database: a planted `-wal`/`-shm` would receive the session data,
/// a planted hot `-journal` would be rolled back into the database.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Session data is secret, so before SQLite opens anything: the database and its companions must be
/// ours and private (`private::check_file`), never symlinks. The database, `-wal` and `-shm` are
/// created 0600 here when missing, so SQLite never makes them and nobody else can make them first.
///
/// Files that exist are checked through `private::inspect` (O_PATH), never opened: a connection of
/// this process (the pool keys on engine and layers, so one process may hold several on one
/// database) keeps POSIX locks on them, which closing a descriptor of ours would drop. The header
/// is read only when no `-shm` exists, that is when no connection anywhere has the database open.
fn check_files(db: &Path) -> Result<()> {
    /// Checks `p`, creating it when `create` and missing; Ok(false) when it is missing (not created).
    fn ours(p: &Path, create: bool) -> std::io::Result<bool> {
        loop {
            match private::inspect(p, 0o600) {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == IoKind::NotFound && create => {}
                Err(e) if e.kind() == IoKind::NotFound => return Ok(false),
                Err(e) => return Err(e),
            }
            // A new inode: no connection holds locks on it, so its descriptor may close.
            match private::open(p, std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600), 0o600) {
                Ok(_) => return Ok(true),
                Err(e) if e.kind() == IoKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
    ours(db, true).map_err(|e| match e.raw_os_error() {
        Some(_) => StoreError::io(db.display().to_string(), &e, format!("cannot create {} (is the directory writable?): {e}", db.display())),
        None => io_error(db, &e, ""),
    })?;
    let companion = |suffix: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        std::path::PathBuf::from(p)
    };
    // Not beside a file that is no database (SQLite refuses it next, and nothing is left behind).
    let create = match ours(&companion("-shm"), false) {
        Ok(true) => true,
        _ => {
            let mut head = [0u8; 16];
            let n = std::fs::File::open(db).map(|mut f| std::io::Read::read(&mut f, &mut head).unwrap_or(0)).unwrap_or(0);
            n == 0 || head[..n] == b"SQLite format 3\0"[..n]
        }
    };
    for suffix in COMPANIONS {
        let p = companion(suffix);
        match ours(&p, create && suffix != "-journal") {
            Ok(_) => {}
            // A directory we may not write (read-only storage): SQLite says what it can do there.
            Err(e) if e.kind() != IoKind::PermissionDenied || e.raw_os_error().is_some() => {}
            Err(e) => return Err(io_error(&p, &e, "")),
        }
    }
    // A database we may not write at all (another owner's, mode 0600): say so, not "unable to open".
    let c = std::ffi::CString::new(db.as_os_str().as_encoded_bytes())
        .map_err(|e| StoreError::new(ErrorKind::Unavailable, db.display().to_string(), e.to_string()))?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EACCES) {
            let e = private::explain_open_error(db, e);
            return Err(io_error(db, &e, ""));
        }
    }
    Ok(())
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

impl Pooled for SqliteStore {
    /// A frozen store (`migrate`) is not kept either: the next request opens the file again, and
    /// migrates it once its storage can be written.
    fn reusable(&self) -> bool {
        !self.broken && self.frozen.is_none() && self.pid == crate::lock::pid()
    }

    /// A connection to a deleted or replaced file would read and write an orphaned inode.
    fn still_valid(&mut self) -> bool {
        file_identity(&self.path) == Some(self.identity) && file_identity(&self.locks_path) == self.locks_identity
    }
}

impl Collect for SqliteStore {
    fn gc(&mut self, exp: Expiry) -> Result<u64> {
        self.writable()?;
        self.gc_batches(exp, |_, _| {})
    }
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn load(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<Loaded>> {
        let r = Self::load_in(&self.conn, id, exp, unix_now()).map_err(Fail::Sql);
        let (data, bucket) = self.guard(r)?;
        self.saw_bucket(id, bucket);
        Ok(data)
    }

    fn lock_and_load(&mut self, id: &SessionId, owner: &Token, lock_expire: Duration, exp: Expiry) -> Result<Acquire> {
        // A hold of an earlier lock this handle never released is let go first.
        if let Some(h) = self.hold.take() {
            Self::drop_bytes(&self.locks, h.gate, h.beacon);
        }
        // A database we may not write (made read-only or immutable, a read-only mount) is locked by a
        // row, which fails at once with SQLite's word for it, as before: the request then fails at
        // its start, not only at its end, after its work.
        let r = if self.gate_file().is_some() && may_write(&self.path) {
            self.lock_by_gate(id, owner, lock_expire, exp)
        } else {
            self.lock_by_row(id, owner, lock_expire, exp, None)
        };
        self.guard(r)
    }

    /// Woken by the kernel when the holder's lock byte is released (or its process dies): the gate
    /// of a holder without a row, no later than its stamp's expiry; the beacon of a row's holder, no
    /// later than the row's expiry, when it may be taken over. The holder is read again from its row
    /// (it may have changed since the failed attempt), so nothing of it is kept in the handle.
    fn wait_for_release(&mut self, id: &SessionId, _busy: &Busy, deadline: Instant, attempt: u32) -> Result<()> {
        let held: Option<(String, f64)> = self
            .conn
            .prepare_cached("SELECT owner, expires_at FROM session_locks WHERE id = ?1")
            .and_then(|mut st| st.query_row(params![id.as_str()], |r| Ok((r.get(0)?, r.get(1)?))).optional())
            .map_err(|e| self.named(Fail::Sql(e)))?;
        let now = unix_now();
        let wait = |path: &Path, kind: Kind, until: Instant| {
            kwait::wait_until_free(path, kind, until).map(drop).map_err(|e| Fail::Io("cannot wait on the lock file", e))
        };
        let r = match held {
            // No row, or REVOKED: the lock, if any, is a gate.
            _ if self.gate_file().is_some() && held.as_ref().is_none_or(|(o, _)| o == REVOKED) => {
                // Until the holder's stamp says its lock expires (read again: it may be another's now).
                let f = self.gate_file().expect("checked above");
                match kwait::locked_in_range(f, stamp_range(id), STAMP_UNITS) {
                    Err(e) => Err(Fail::Io("cannot check the lock file", e)),
                    Ok(stamp) => {
                        let left = stamp.map(|at| stamp_left(id, at, now).max(0.0));
                        let until = left.map_or(deadline, |s| deadline.min(Instant::now() + Duration::from_secs_f64(s)));
                        wait(&self.locks_path, Kind::Byte(gate_at(id)), until)
                    }
                }
            }
            // Free, or expired (it may be taken over): try again at once.
            None => Ok(()),
            Some((_, until)) if until <= now => Ok(()),
            Some((o, until)) if o.starts_with("k:") && self.locks.is_some() => {
                let until = Instant::now() + Duration::from_secs_f64(until - now);
                wait(&self.locks_path, Kind::Byte(beacon_at(id, &o)), deadline.min(until))
            }
            _ => {
                super::back_off(deadline, attempt);
                Ok(())
            }
        };
        r.map_err(|f| self.named(f))
    }

    fn save(&mut self, id: &SessionId, data: &[u8], expect: Expect, owner: Option<&Token>, exp: Expiry) -> Result<Written> {
        // One write transaction: the lock's check and release, the expectation's check and the write
        // (one statement), and on a refusal the read of what is stored now.
        let (seen, mut at) = (self.seen_minute(id), 0.0);
        let r = self.under_lock(id, owner, Written::LockLost, |tx| {
            // The time once the write transaction is ours: writes store it in their order.
            let now = unix_now();
            at = now;
            Ok(match Self::write_in(tx, id, data, expect, exp, now, seen == Some(gc_bucket(now)))? {
                Some(v) => Written::Done(version_of(v)),
                None => Written::Conflict(Self::load_in(tx, id, exp, now)?.0),
            })
        });
        self.saw_bucket(id, matches!(r, Ok(Written::Done(_))).then(|| gc_bucket(at)));
        r
    }

    fn touch(&mut self, id: &SessionId, owner: Option<&Token>, _exp: Expiry) -> Result<Touched> {
        let (seen, mut at) = (self.seen_minute(id), 0.0);
        let r = self.under_lock(id, owner, Touched::LockLost, |tx| {
            let now = unix_now();
            at = now;
            tx.prepare_cached(if seen == Some(gc_bucket(now)) {
                "UPDATE sessions SET updated_at = ?2 WHERE id = ?1"
            } else {
                "UPDATE sessions SET updated_at = ?2, gc_bucket = CAST(?2 / 60 AS INTEGER) WHERE id = ?1"
            })?
            .execute(params![id.as_str(), now])?;
            Ok(Touched::Done)
        });
        self.saw_bucket(id, matches!(r, Ok(Touched::Done)).then(|| gc_bucket(at)));
        r
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> Result<()> {
        // A gate alone is let go without SQL; a row (ours, or a dead holder's: `lock_holder`) deleted.
        let r = if self.holds_by_gate(id, owner) {
            Ok(())
        } else {
            self.gate_held_elsewhere(id).and_then(|revoke| Self::release_in(&self.conn, id, owner, revoke).map(drop).map_err(Fail::Sql))
        };
        if r.is_ok() {
            self.release_hold(id, owner);
        }
        self.guard(r)
    }

    fn lock_holder(&mut self, id: &SessionId) -> Result<Option<Token>> {
        let r = self
            .conn
            .prepare_cached("SELECT owner FROM session_locks WHERE id = ?1 AND expires_at > ?2 AND owner != ?3")
            .and_then(|mut st| st.query_row(params![id.as_str(), unix_now(), REVOKED], |r| r.get::<_, String>(0)).optional())
            .map(|o| o.map(|o| Token::from_stored(o.strip_prefix("k:").map(str::to_string).unwrap_or(o))))
            .map_err(Fail::Sql);
        self.guard(r)
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> Result<()> {
        self.saw_bucket(id, None);
        self.check_file()?;
        let by_gate = owner.is_some_and(|o| self.holds_by_gate(id, o));
        let revoke = self.revoke_on_release(id, owner, by_gate);
        let revoke = self.guard(revoke)?;
        let conn = &self.conn;
        let r = begin(conn).map_err(Fail::from).and_then(|()| {
            let r = (|| -> Res<()> {
                conn.prepare_cached("DELETE FROM sessions WHERE id = ?1")?.execute(params![id.as_str()])?;
                if let Some(owner) = owner.filter(|_| !by_gate) {
                    Self::release_in(conn, id, owner, revoke)?;
                }
                Ok(())
            })();
            end(conn, r, |_| true)
        });
        if let (true, Some(owner)) = (r.is_ok(), owner) {
            self.release_hold(id, owner);
        }
        self.guard(r)
    }

    fn exists(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        let r = self
            .conn
            .prepare_cached("SELECT 1 FROM sessions WHERE id = ?1 AND updated_at >= ?2")
            .and_then(|mut st| st.exists(params![id.as_str(), unix_now() - exp.lifetime.as_secs_f64()]))
            .map_err(Fail::Sql);
        self.guard(r)
    }

    fn collector(&mut self) -> Option<&mut dyn Collect> {
        Some(self)
    }

    fn users(&mut self) -> Option<&mut dyn super::users::Users> {
        Some(self)
    }

    fn scanner(&mut self) -> Option<&mut dyn super::Scan> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{conformance, expired_locks, woken_at_release, Got, Ops, TempDir, W};

    fn ex(d: Duration) -> Expiry {
        Expiry::new(d)
    }

    /// A write that expects anything (last writer wins), without a lock.
    fn put(s: &mut dyn Store, id: &SessionId, data: &[u8], life: Duration) -> Result<Written> {
        s.save(id, data, Expect::Any, None, ex(life))
    }

    fn boxed(dir: &TempDir) -> Box<dyn Store> {
        Box::new(store(dir))
    }

    fn store(dir: &TempDir) -> SqliteStore {
        SqliteStore::open(&SqliteOptions {
            path: dir.path().join("s.sqlite"),
            busy_timeout: Duration::from_secs(5),
            synchronous_full: false,
        private_dir: false,
        })
        .unwrap()
    }

    #[test]
    fn conforms() {
        let dir = TempDir::new("sqlite-conf");
        assert!(!conformance(|| boxed(&dir)), "gc deletes in one statement: no window to race");
    }

    #[test]
    fn keeps_a_user_index() {
        let dir = TempDir::new("sqlite-users");
        crate::store::users_tests::users_conformance(|| boxed(&dir), "sq", true);
    }

    /// The schema of the version before issue 11: no `version` column.
    const SCHEMA_V1: &str = "
        CREATE TABLE sessions (id TEXT PRIMARY KEY NOT NULL, data BLOB NOT NULL, created_at REAL NOT NULL,
            updated_at REAL NOT NULL, user_id TEXT);
        CREATE INDEX sessions_updated_at ON sessions(updated_at);
        CREATE TABLE session_locks (id TEXT PRIMARY KEY NOT NULL, owner TEXT NOT NULL, expires_at REAL NOT NULL);";

    /// `s.sqlite` in `dir` as the previous version made it (WAL mode, no `version` column), with the
    /// session `old` in it (data "old").
    fn old_database(dir: &TempDir) -> std::path::PathBuf {
        let path = dir.path().join("s.sqlite");
        std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path).unwrap();
        let old = Connection::open(&path).unwrap();
        // WAL, as every database of ours is (a read-only one could not be switched to it).
        old.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
        old.execute_batch(SCHEMA_V1).unwrap();
        old.execute("INSERT INTO sessions (id, data, created_at, updated_at) VALUES ('old', x'6f6c64', ?1, ?1)", params![unix_now()])
            .unwrap();
        path
    }

    /// A database made by the previous version, with a session in it, is migrated in place at open:
    /// the session reads at a version, a write at it wins and a stale one loses; the column is the
    /// new schema's, and the next connection adds nothing.
    #[test]
    fn databases_without_versions_are_migrated_at_open() {
        let dir = TempDir::new("sqlite-migrate");
        let path = old_database(&dir);
        let life = ex(Duration::from_secs(60));
        let id = SessionId::parse(b"old").unwrap();
        let mut s = boxed(&dir);
        let l = s.load(&id, life).unwrap().expect("the old session is kept");
        assert_eq!(l.data, b"old");
        let Written::Done(v) = s.save(&id, b"new", Expect::Version(l.version), None, life).unwrap() else { panic!("CAS at the read version") };
        assert!(matches!(s.save(&id, b"stale", Expect::Version(l.version), None, life).unwrap(), Written::Conflict(Some(_))));
        let mut t = boxed(&dir);
        assert_eq!(t.load(&id, life).unwrap(), Some(Loaded { data: b"new".to_vec(), version: v }));
        let c = Connection::open(&path).unwrap();
        let strings = |sql: &str| -> Vec<String> {
            c.prepare(sql).unwrap().query_map([], |r| r.get(0)).unwrap().collect::<rusqlite::Result<_>>().unwrap()
        };
        let cols = strings("SELECT name || ' ' || type || ' ' || \"notnull\" || ' ' || coalesce(dflt_value, '-') FROM pragma_table_info('sessions')");
        assert_eq!(cols[5..], ["version INTEGER 1 0", "gc_bucket INTEGER 0 -"], "{cols:?}");
        assert_eq!(cols.len(), 7, "{cols:?}");
        let made = strings("SELECT type || ' ' || name FROM sqlite_master WHERE tbl_name = 'sessions' AND type IN ('index', 'trigger') ORDER BY name");
        assert_eq!(
            made,
            ["index sessions_gc_bucket", "index sqlite_autoindex_sessions_1"],
            "the gc bucket's index made, the updated_at index gone"
        );
    }

    /// An old database we may only read (here an immutable file; CI runs as root, who alone may set
    /// that) is read as before versions, at version 0, and every change to it is refused with a
    /// warning that says why; nothing in it changes.
    #[test]
    fn a_read_only_database_without_versions_is_read_and_changes_are_refused() {
        struct Immutable(std::path::PathBuf);
        impl Drop for Immutable {
            fn drop(&mut self) {
                let _ = std::process::Command::new("chattr").arg("-i").arg(&self.0).status();
            }
        }
        let dir = TempDir::new("sqlite-ro-old");
        let path = old_database(&dir);
        let ok = std::process::Command::new("chattr").arg("+i").arg(&path).status().is_ok_and(|s| s.success());
        assert!(ok, "chattr +i {} failed: this test needs root", path.display());
        let _undo = Immutable(path.clone());
        let life = ex(Duration::from_secs(60));
        let id = SessionId::parse(b"old").unwrap();
        let mut s = boxed(&dir);
        let l = s.load(&id, life).unwrap().expect("the old session is read");
        assert_eq!(l.data, b"old");
        assert!(s.exists(&id, life).unwrap());
        let refused = |e: StoreError| {
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{e:?}");
            assert!(e.detail().contains("is read-only and was made before session versions"), "{}", e.detail());
        };
        refused(s.save(&id, b"new", Expect::Version(l.version), None, life).unwrap_err());
        refused(s.save(&id, b"new", Expect::Any, None, life).unwrap_err());
        refused(s.destroy(&id, None).unwrap_err());
        refused(s.touch(&id, None, life).unwrap_err());
        refused(s.collector().expect("sqlite collects").gc(ex(Duration::ZERO)).unwrap_err());
        let owner = Token::new();
        assert!(s.lock_and_load(&id, &owner, Duration::from_secs(5), life).is_err(), "no lock row can be written");
        drop(s);
        drop(_undo);
        let c = Connection::open(&path).unwrap();
        let (data, cols): (Vec<u8>, i64) = c
            .query_row("SELECT data, (SELECT count(*) FROM pragma_table_info('sessions')) FROM sessions WHERE id = 'old'", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((data.as_slice(), cols), (&b"old"[..], 5), "the file is as it was");
    }

    #[test]
    fn expired_locks_are_taken_over() {
        let dir = TempDir::new("sqlite-expire");
        expired_locks(&|| boxed(&dir));
    }

    #[test]
    fn replaced_file_is_noticed() {
        let dir = TempDir::new("sqlite-replaced");
        let mut s = store(&dir);
        assert!(s.still_valid());
        std::fs::remove_file(dir.path().join("s.sqlite")).unwrap();
        assert!(!s.still_valid());
        let _fresh = store(&dir);
        assert!(!s.still_valid(), "a new file at the same path is another database");
    }

    #[test]
    fn changes_to_a_removed_or_replaced_file_are_refused() {
        let dir = TempDir::new("sqlite-gone");
        let path = dir.path().join("s.sqlite");
        let id = SessionId::parse(b"gone").unwrap();
        let life = Duration::from_secs(60);
        let t = Token::new();
        // Removed between read and write (the directory wiped by a deploy, a cleanup job).
        let mut s = boxed(&dir);
        s.put(&id, b"old", life, None).unwrap();
        assert_eq!(s.lock(&id, &t, life, life).unwrap(), Got::Locked(Some(b"old".to_vec())));
        std::fs::remove_file(&path).unwrap();
        let e = s.put(&id, b"new", life, Some(&t)).unwrap_err();
        assert!(format!("{e:#}").contains("was removed or replaced"), "{e:#}");
        assert_eq!((e.kind(), e.at()), (ErrorKind::Unavailable, path.display().to_string().as_str()));
        assert!(s.tch(&id, life, Some(&t)).is_err());
        assert!(s.destroy(&id, Some(&t)).is_err());
        assert!(!s.reusable());
        // Replaced by another database (a restore): the new file is not written through the old handle.
        let mut s = boxed(&dir);
        s.put(&id, b"v1", life, None).unwrap();
        let other = dir.path().join("other.sqlite");
        let mut o = SqliteStore::open(&SqliteOptions { path: other.clone(), busy_timeout: Duration::from_secs(5), synchronous_full: false, private_dir: false }).unwrap();
        put(&mut o, &id, b"restored", life).unwrap();
        drop(o);
        std::fs::rename(&other, &path).unwrap();
        let before = std::fs::read(&path).unwrap();
        assert!(s.put(&id, b"v2", life, None).is_err());
        assert!(s.destroy(&id, None).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before, "the new file is untouched");
    }

    #[test]
    fn gc_deletes_in_batches() {
        let dir = TempDir::new("sqlite-gc");
        let mut s = store(&dir);
        let n = GC_BATCH * 2 + 7;
        let tx = s.conn.transaction().unwrap();
        for i in 0..n {
            tx.execute(
                "INSERT INTO sessions (id, data, created_at, updated_at, gc_bucket) VALUES (?1, x'00', 0, 0, 0)",
                params![format!("old{i}")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let life = Duration::from_secs(60);
        let keep = SessionId::parse(b"fresh").unwrap();
        put(&mut s, &keep, b"x", life).unwrap();
        // A second connection that never waits (busy_timeout 0) writes between gc's batches: it would
        // get SQLITE_BUSY if gc held one transaction over all of them.
        let mut other = store(&dir);
        other.conn.busy_timeout(Duration::ZERO).unwrap();
        let writer = SessionId::parse(b"writer").unwrap();
        let mut batches = Vec::new();
        let deleted = s
            .gc_batches(ex(life), |conn, rows| {
                assert!(conn.is_autocommit(), "no transaction open after batch {}", batches.len());
                put(&mut other, &writer, format!("{}", batches.len()).as_bytes(), life).unwrap();
                batches.push(rows);
            })
            .unwrap();
        assert_eq!(deleted, n as u64);
        assert_eq!(batches, [GC_BATCH, GC_BATCH, 7], "batches of {GC_BATCH} rows");
        assert!(s.exists(&keep, ex(life)).unwrap());
        assert_eq!(s.load(&writer, ex(life)).unwrap().map(|l| l.data).as_deref(), Some(&b"2"[..]), "the writer's last write is kept");
        // gc() is the same deletion.
        assert_eq!(s.collector().expect("SQLite collects").gc(ex(life)).unwrap(), 0);
    }

    /// A write that leaves its session in the minute it was in touches no index: one WAL frame (the
    /// row's page), where an index of `updated_at` made it two to three. A write into another minute
    /// than the one its read found moves `gc_bucket` there.
    #[test]
    fn a_write_within_its_minute_leaves_the_gc_index_alone() {
        let dir = TempDir::new("sqlite-gc-bucket");
        let mut s = store(&dir);
        let life = Duration::from_secs(7200);
        let id = SessionId::parse(b"bucketed").unwrap();
        put(&mut s, &id, b"n|i:0;", life).unwrap();
        let wal = dir.path().join("s.sqlite-wal");
        const FRAME: u64 = 24 + 4096;
        let frames = (0..3).find_map(|_| {
            let (minute, before) = (gc_bucket(unix_now()), std::fs::metadata(&wal).unwrap().len());
            let t = Token::new();
            for i in 1..=4 {
                put(&mut s, &id, format!("n|i:{i};").as_bytes(), life).unwrap();
            }
            // And under a lock: the read (the lock's) and a touch.
            assert!(matches!(s.lock_and_load(&id, &t, Duration::from_secs(30), ex(life)).unwrap(), Acquire::Locked(Some(_))));
            assert_eq!(s.touch(&id, Some(&t), ex(life)).unwrap(), Touched::Done);
            // A minute that ended meanwhile moved the session: measure again.
            (gc_bucket(unix_now()) == minute).then(|| (std::fs::metadata(&wal).unwrap().len() - before) / FRAME)
        });
        assert_eq!(frames, Some(5), "one frame per write");
        let bucket_of = |s: &SqliteStore, id: &str| -> (Option<i64>, i64) {
            s.conn
                .query_row("SELECT gc_bucket, CAST(updated_at / 60 AS INTEGER) FROM sessions WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
        };
        let (b, minute) = bucket_of(&s, "bucketed");
        assert_eq!(b, Some(minute));
        assert!((0..=1).contains(&(gc_bucket(unix_now()) - minute)), "the minute of the last write: {minute}");
        // Written an hour ago (by another handle, as far as this one knows): read, then written now.
        s.conn.execute("UPDATE sessions SET updated_at = updated_at - 3600, gc_bucket = gc_bucket - 60 WHERE id = 'bucketed'", []).unwrap();
        let mut fresh = store(&dir);
        for (step, h) in [("a write after a read", &mut fresh), ("a write after its own write", &mut s)] {
            if step == "a write after its own write" {
                h.conn.execute("UPDATE sessions SET updated_at = updated_at - 3600, gc_bucket = gc_bucket - 60 WHERE id = 'bucketed'", []).unwrap();
                h.saw_bucket(&id, Some(gc_bucket(unix_now()) - 60));
            } else {
                assert!(h.load(&id, ex(life)).unwrap().is_some());
            }
            put(h, &id, b"n|i:9;", life).unwrap();
            let (b, now_minute) = bucket_of(h, "bucketed");
            assert!(b == Some(now_minute) && now_minute >= minute, "{step}: moved to its minute: {b:?} {now_minute}");
        }
    }

    /// A database made before gc buckets: its rows have none (NULL) after the migration. gc gives
    /// them theirs and collects the idle ones; the live ones stay and are counted.
    #[test]
    fn gc_fills_in_the_buckets_of_old_rows() {
        let dir = TempDir::new("sqlite-gc-old");
        let path = old_database(&dir);
        let old = Connection::open(&path).unwrap();
        let now = unix_now();
        for i in 0..(GC_BATCH + 20) {
            let (id, at) = (format!("idle{i}"), if i % 2 == 0 { 1000.0 } else { now - 7200.0 });
            old.execute("INSERT INTO sessions (id, data, created_at, updated_at) VALUES (?1, x'00', ?2, ?2)", params![id, at]).unwrap();
            old.execute("INSERT INTO sessions (id, data, created_at, updated_at) VALUES (?1, x'00', ?2, ?2)", params![format!("live{i}"), now - 5.0])
                .unwrap();
        }
        drop(old);
        let mut s = store(&dir);
        let nulls = |s: &SqliteStore| s.conn.query_row("SELECT count(*) FROM sessions WHERE gc_bucket IS NULL", [], |r| r.get::<_, i64>(0)).unwrap();
        assert_eq!(nulls(&s), 2 * (GC_BATCH as i64 + 20) + 1, "migrated rows have no bucket yet");
        let life = ex(Duration::from_secs(3600));
        use crate::store::users::{Count, Users};
        // The live ones and the old database's own session.
        assert_eq!(s.count_active(Duration::from_secs(60)).unwrap(), Count::Sessions(GC_BATCH as u64 + 21));
        assert_eq!(s.collector().expect("SQLite collects").gc(life).unwrap(), GC_BATCH as u64 + 20);
        assert_eq!(nulls(&s), 0, "every row has its bucket");
        assert_eq!(s.count_active(Duration::from_secs(60)).unwrap(), Count::Sessions(GC_BATCH as u64 + 21), "from the index now");
        assert!(s.exists(&SessionId::parse(b"live7").unwrap(), life).unwrap());
        assert!(!s.exists(&SessionId::parse(b"idle7").unwrap(), ex(Duration::from_secs(100_000_000))).unwrap(), "collected");
        assert!(s.exists(&SessionId::parse(b"old").unwrap(), life).unwrap(), "the old database's own session is live");
    }

    /// The lock is taken without a write: while another connection holds the write transaction for
    /// 1.5 s, a request still takes a session's lock and reads it at once (a lock row would wait for
    /// that writer), and no lock row exists while it is held. Another store is told Busy, with
    /// the holder's lock_expire left, until the holder's one write releases it.
    #[test]
    fn a_lock_is_taken_without_a_write() {
        let dir = TempDir::new("sqlite-gate");
        let id = SessionId::parse(b"gated").unwrap();
        let life = Duration::from_secs(60);
        let mut a = store(&dir);
        put(&mut a, &id, b"v|i:1;", life).unwrap();
        let released = hold_write_lock(dir.path().join("s.sqlite"), Duration::from_millis(1500));
        let t = Token::new();
        let t0 = Instant::now();
        let got = a.lock_and_load(&id, &t, Duration::from_secs(40), ex(life)).unwrap();
        assert!(t0.elapsed() < Duration::from_millis(1000), "the lock waited for the writer: {:?}", t0.elapsed());
        assert!(matches!(got, Acquire::Locked(Some(ref l)) if l.data == b"v|i:1;"), "{got:?}");
        let rows: i64 = a.conn.query_row("SELECT count(*) FROM session_locks", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 0, "no lock row");
        let mut b = store(&dir);
        let Acquire::Busy(busy) = b.lock_and_load(&id, &Token::new(), life, ex(life)).unwrap() else { panic!("a holds it") };
        let left = busy.expires_in.expect("the holder's stamp is read");
        assert!(left > Duration::from_secs(38) && left <= Duration::from_secs(40), "{left:?}");
        released.recv().unwrap();
        let Acquire::Locked(Some(l)) = got else { unreachable!() };
        assert!(matches!(a.save(&id, b"v|i:2;", Expect::Held(Some(l.version)), Some(&t), ex(life)).unwrap(), Written::Done(_)));
        let tb = Token::new();
        let Acquire::Locked(Some(l)) = b.lock_and_load(&id, &tb, life, ex(life)).unwrap() else { panic!("released") };
        assert_eq!(l.data, b"v|i:2;");
        b.unlock(&id, &tb).unwrap();
    }

    /// A holder past its lock_expire is taken over with a row; when the new holder releases that
    /// row while the old one still has its gate, the row stays REVOKED, so the old holder's late
    /// write is refused even then, and the next request still gets the lock at once.
    #[test]
    fn a_taken_over_gate_holder_stays_refused_after_the_release() {
        let dir = TempDir::new("sqlite-revoked");
        let id = SessionId::parse(b"revoked").unwrap();
        let life = Duration::from_secs(60);
        let (mut a, mut b, mut c) = (store(&dir), store(&dir), store(&dir));
        put(&mut a, &id, b"base", life).unwrap();
        let (ta, tb, tc) = (Token::new(), Token::new(), Token::new());
        assert!(matches!(a.lock_and_load(&id, &ta, Duration::from_millis(200), ex(life)).unwrap(), Acquire::Locked(_)));
        std::thread::sleep(Duration::from_millis(300));
        assert!(matches!(b.lock_and_load(&id, &tb, life, ex(life)).unwrap(), Acquire::Locked(_)), "taken over");
        assert!(matches!(b.save(&id, b"by b", Expect::Held(None), Some(&tb), ex(life)).unwrap(), Written::Done(_)));
        assert_eq!(a.save(&id, b"stale", Expect::Held(None), Some(&ta), ex(life)).unwrap(), Written::LockLost);
        assert!(matches!(c.lock_and_load(&id, &tc, life, ex(life)).unwrap(), Acquire::Locked(Some(ref l)) if l.data == b"by b"));
        c.unlock(&id, &tc).unwrap();
        let rows: i64 = c.conn.query_row("SELECT count(*) FROM session_locks", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 0, "the REVOKED row went with c's lock");
    }

    /// A stamp tells how long a lock has left across the wrap of its range, and a lock long expired
    /// reads as expired.
    #[test]
    fn stamps_tell_the_time_left() {
        let id = SessionId::parse(b"stamped").unwrap();
        let wrap = STAMP_UNITS as f64 / STAMP_PER_S;
        for now in [1.7e9, 1.7e9 + wrap - 0.5, 1.7e9 + wrap - 0.004, 1.7e9 + 3.0 * wrap + 0.02] {
            for expire in [0.3, 30.0, 86_400.0] {
                let at = stamp_at(&id, now, Duration::from_secs_f64(expire));
                assert!(at >= stamp_range(&id) && at < stamp_range(&id) + STAMP_UNITS);
                let left = stamp_left(&id, at, now);
                assert!((left - expire).abs() <= 0.011, "now {now} expire {expire}: {left}");
                let later = stamp_left(&id, at, now + expire + 3600.0);
                assert!((later + 3600.0).abs() <= 0.011, "an hour past: {later}");
            }
        }
        assert_ne!(stamp_range(&id), stamp_range(&SessionId::parse(b"stamped2").unwrap()));
        assert!(stamp_range(&id) >= 1 << 62 && gate_at(&id) < 1 << 62);
    }

    /// A lock file removed and made again while a request holds a gate in it: another request may
    /// have taken the session through the new file, so the holder's write is refused (LockLost),
    /// not stored, and the new holder's is.
    #[test]
    fn a_replaced_lock_file_refuses_the_gate_holders_write() {
        let dir = TempDir::new("sqlite-gate-file");
        let id = SessionId::parse(b"gatefile").unwrap();
        let life = Duration::from_secs(60);
        let mut a = store(&dir);
        put(&mut a, &id, b"first", life).unwrap();
        let ta = Token::new();
        assert!(matches!(a.lock_and_load(&id, &ta, life, ex(life)).unwrap(), Acquire::Locked(Some(_))));
        std::fs::remove_file(dir.path().join("s.sqlite-locks")).unwrap();
        let mut b = store(&dir);
        let tb = Token::new();
        assert!(matches!(b.lock_and_load(&id, &tb, life, ex(life)).unwrap(), Acquire::Locked(Some(_))), "the new file's gate is free");
        assert_eq!(a.save(&id, b"by a", Expect::Held(None), Some(&ta), ex(life)).unwrap(), Written::LockLost);
        assert!(matches!(b.save(&id, b"by b", Expect::Held(None), Some(&tb), ex(life)).unwrap(), Written::Done(_)));
        assert_eq!(store(&dir).load(&id, ex(life)).unwrap().unwrap().data, b"by b");
    }

    /// An ended session ("log out everywhere") leaves an REVOKED row while its lock may be held
    /// without a row; the next request takes it over at once, and gc removes one nobody came for.
    #[test]
    fn an_ended_row_is_taken_over_and_collected() {
        let dir = TempDir::new("sqlite-ended");
        let (id, other) = (SessionId::parse(b"ended1").unwrap(), SessionId::parse(b"ended2").unwrap());
        let life = Duration::from_secs(60);
        let mut a = store(&dir);
        put(&mut a, &id, b"x", life).unwrap();
        put(&mut a, &other, b"y", life).unwrap();
        assert!(crate::store::users::Users::end(&mut a, &id, ex(life)).unwrap());
        assert!(crate::store::users::Users::end(&mut a, &other, ex(life)).unwrap());
        let t = Token::new();
        assert_eq!(a.lock_and_load(&id, &t, life, ex(life)).unwrap(), Acquire::Locked(None));
        assert!(matches!(a.save(&id, b"new", Expect::Held(None), Some(&t), ex(life)).unwrap(), Written::Done(_)));
        let rows = |a: &SqliteStore| a.conn.query_row("SELECT group_concat(id) FROM session_locks", [], |r| r.get::<_, Option<String>>(0)).unwrap();
        assert_eq!(rows(&a).as_deref(), Some("ended2"), "the taken row went with the write");
        a.conn.execute("UPDATE session_locks SET expires_at = ?1", params![unix_now() - 1.0]).unwrap();
        a.collector().unwrap().gc(ex(life)).unwrap();
        assert_eq!(rows(&a), None);
    }

    /// Another connection holding the write lock for `hold`; returns once it has it, and the instant
    /// it released it through the channel.
    fn hold_write_lock(path: std::path::PathBuf, hold: Duration) -> std::sync::mpsc::Receiver<Instant> {
        let (tx, rx) = std::sync::mpsc::channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("BEGIN IMMEDIATE").unwrap();
            ready_tx.send(()).unwrap();
            std::thread::sleep(hold);
            c.execute_batch("COMMIT").unwrap();
            tx.send(Instant::now()).unwrap();
        });
        ready_rx.recv().unwrap();
        rx
    }

    /// A second store on the same database in one process (the pool keys on engine and layers) must
    /// not drop the first one's POSIX locks: checking a file by opening and closing a descriptor of it
    /// did, so another process closing its connection took the database for unused, checkpointed
    /// and deleted the WAL and `-shm` under the live connection (then "file is not a database").
    #[test]
    fn a_second_store_in_the_process_keeps_the_first_ones_locks() {
        let dir = TempDir::new("sqlite-two-stores");
        let db = dir.path().join("s.sqlite");
        let mut a = store(&dir);
        let sid = SessionId::parse(b"twostores1").unwrap();
        put(&mut a, &sid, b"a|i:1;", Duration::from_secs(60)).unwrap();
        let mut b = store(&dir);
        put(&mut b, &SessionId::parse(b"twostores2").unwrap(), b"b|i:2;", Duration::from_secs(60)).unwrap();
        // Another process opens and closes the database: with our locks intact it is not the last.
        let py = "import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\nc.execute('SELECT count(*) FROM sessions').fetchall()\nc.close()";
        let st = std::process::Command::new("python3").args(["-c", py]).arg(&db).status().unwrap();
        assert!(st.success());
        let shm = std::path::PathBuf::from(format!("{}-shm", db.display()));
        assert!(shm.exists(), "the other process deleted -shm under our open connections");
        assert_eq!(a.load(&sid, ex(Duration::from_secs(60))).unwrap().unwrap().data, b"a|i:1;");
        put(&mut a, &sid, b"a|i:3;", Duration::from_secs(60)).unwrap();
        drop(b);
        assert_eq!(store(&dir).load(&sid, ex(Duration::from_secs(60))).unwrap().unwrap().data, b"a|i:3;");
    }

    #[test]
    fn busy_writers_still_give_up_at_busy_timeout() {
        let dir = TempDir::new("sqlite-busy-timeout");
        let mut s = SqliteStore::open(&SqliteOptions {
            path: dir.path().join("s.sqlite"),
            busy_timeout: Duration::from_millis(200),
            synchronous_full: false,
            private_dir: false,
        })
        .unwrap();
        let released = hold_write_lock(dir.path().join("s.sqlite"), Duration::from_millis(1500));
        let t0 = Instant::now();
        let e = put(&mut s, &SessionId::parse(b"busy").unwrap(), b"x", Duration::from_secs(60)).unwrap_err();
        let waited = t0.elapsed();
        assert!(format!("{e:#}").contains("database is locked"), "{e:#}");
        assert_eq!(e.kind(), ErrorKind::Timeout, "busy past busy_timeout is a timeout");
        // Not before busy_timeout; and it gave up (did not wait for the 1.5 s holder).
        assert!(waited >= Duration::from_millis(200) && waited < Duration::from_millis(1200), "{waited:?}");
        released.recv().unwrap();
    }

    /// A writer that met another's write transaction gets the lock soon after that one commits.
    /// SQLite's own busy handler sleeps 1, 2, 5, 10, 15, 20 ... ms: against a 20 ms holder it tries
    /// again at 18 and 33 ms, 13 ms after the release (measured: 13.4-14.1 ms, with SQLite's handler
    /// put back). Ours sleeps at most 1 ms between tries. The schedule is checked as such: a timed
    /// median (under 6 ms, as this test was before) is a timed assertion, at a loaded machine's mercy.
    #[test]
    fn busy_writers_retry_within_a_millisecond() {
        let steps: Vec<u128> = (0..10).map(|c| busy_step(c).as_micros()).collect();
        assert_eq!(steps, [10, 20, 40, 80, 160, 320, 640, 1000, 1000, 1000]);
        assert_eq!(busy_step(-1), busy_step(0));
        assert_eq!(busy_step(i32::MAX), Duration::from_millis(1));
        // And a writer behind a held write transaction waits it out through the handler.
        let dir = TempDir::new("sqlite-busy-wakeup");
        let mut s = store(&dir);
        let released = hold_write_lock(dir.path().join("s.sqlite"), Duration::from_millis(20));
        put(&mut s, &SessionId::parse(b"wake").unwrap(), b"x", Duration::from_secs(60)).unwrap();
        released.recv().unwrap();
    }

    /// A holder whose process died leaves its lock row but not its kernel lock byte (dropping the
    /// store closes the lock file, as the process' death does): the next request takes the lock at
    /// once, long before the row's expiry. A live holder keeps it.
    #[test]
    fn a_dead_holders_lock_is_taken_over_at_once() {
        let dir = TempDir::new("sqlite-dead-holder");
        let id = SessionId::parse(b"deadholder").unwrap();
        let (life, expire) = (Duration::from_secs(60), Duration::from_secs(60));
        let (ta, tb) = (Token::new(), Token::new());
        let mut a = boxed(&dir);
        let mut b = boxed(&dir);
        a.put(&id, b"before", life, None).unwrap();
        assert_eq!(a.lock(&id, &ta, expire, life).unwrap(), Got::Locked(Some(b"before".to_vec())));
        assert_eq!(b.lock(&id, &tb, expire, life).unwrap(), Got::Busy, "a live holder keeps it");
        drop(a);
        assert_eq!(b.lock(&id, &tb, expire, life).unwrap(), Got::Locked(Some(b"before".to_vec())));
        let mut c = boxed(&dir);
        assert_eq!(c.lock(&id, &Token::new(), expire, life).unwrap(), Got::Busy, "b holds it now");
        assert_eq!(b.put(&id, b"by b", life, Some(&tb)).unwrap(), W::Done);
        assert_eq!(c.get(&id, life).unwrap(), Some(b"by b".to_vec()));
    }

    /// A lock row written by an older version (a plain token, no lock byte) can not be told dead:
    /// it is honoured until it expires, as before.
    #[test]
    fn lock_rows_without_a_lock_byte_wait_for_their_expiry() {
        let dir = TempDir::new("sqlite-legacy-row");
        let id = SessionId::parse(b"legacyrow").unwrap();
        let life = Duration::from_secs(60);
        let mut s = store(&dir);
        s.conn
            .execute("INSERT INTO session_locks (id, owner, expires_at) VALUES (?1, ?2, ?3)", params![
                id.as_str(),
                Token::new().as_str(),
                unix_now() + 0.3
            ])
            .unwrap();
        let t = Token::new();
        assert!(matches!(s.lock_and_load(&id, &t, life, ex(life)).unwrap(), Acquire::Busy(_)));
        std::thread::sleep(Duration::from_millis(350));
        assert_eq!(s.lock_and_load(&id, &t, life, ex(life)).unwrap(), Acquire::Locked(None));
    }

    /// A waiter is woken by the release itself (`woken_at_release`), and no later than the holder's
    /// expiry when the holder stays (then it takes the lock over).
    #[test]
    fn waiters_wake_at_the_release_or_the_expiry() {
        let dir = TempDir::new("sqlite-wake");
        let id = SessionId::parse(b"wakeme").unwrap();
        let life = Duration::from_secs(60);
        let open = || boxed(&dir);
        let (mut a, mut b, tb) = woken_at_release(open(), open(), &id);
        assert_eq!(b.unlock(&id, &tb).unwrap(), ());
        let ta = Token::new();

        // A holder that stays past its lock_expire (300 ms): the waiter wakes at the expiry.
        let short = Duration::from_millis(300);
        assert!(matches!(a.lock(&id, &ta, short, life).unwrap(), Got::Locked(_)));
        let t0 = Instant::now();
        assert_eq!(b.lock(&id, &tb, life, life).unwrap(), Got::Busy);
        crate::store::Store::wait_for_release(&mut *b, &id, &crate::store::Busy::default(), t0 + Duration::from_secs(5), 0).unwrap();
        let waited = t0.elapsed();
        assert!(waited >= Duration::from_millis(250) && waited < Duration::from_millis(1500), "{waited:?}");
        std::thread::sleep(Duration::from_millis(60));
        assert!(matches!(b.lock(&id, &tb, life, life).unwrap(), Got::Locked(_)));
        assert_eq!(a.put(&id, b"too late", life, Some(&ta)).unwrap(), W::LockLost);
    }

    #[test]
    fn database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("sqlite-mode");
        let _s = store(&dir);
        for f in ["s.sqlite", "s.sqlite-locks"] {
            let mode = std::fs::metadata(dir.path().join(f)).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{f}: mode {mode:o}");
        }
    }

    #[test]
    fn planted_files_are_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("sqlite-planted");
        let open = |p: &Path| {
            SqliteStore::open(&SqliteOptions { path: p.into(), busy_timeout: Duration::from_secs(1), synchronous_full: false, private_dir: false })
        };
        let target = dir.path().join("target.sqlite");
        drop(open(&target).unwrap());
        let link = dir.path().join("link.sqlite");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = format!("{:#}", open(&link).err().unwrap());
        assert!(e.contains("symbolic link") && e.contains("link.sqlite"), "{e}");
        // A -wal (or -shm, -journal) that anyone may read: the session data would go into it.
        for suffix in ["-wal", "-shm", "-journal"] {
            let db = dir.path().join(format!("c{suffix}.sqlite"));
            let comp = dir.path().join(format!("c{suffix}.sqlite{suffix}"));
            std::fs::write(&comp, b"").unwrap();
            std::fs::set_permissions(&comp, std::fs::Permissions::from_mode(0o666)).unwrap();
            let e = format!("{:#}", open(&db).err().unwrap());
            assert!(e.contains(&format!("c{suffix}.sqlite{suffix}")) && e.contains("mode 0666"), "{e}");
        }
        // Fresh ones are created 0600 before SQLite opens anything.
        let db = dir.path().join("fresh.sqlite");
        let _s = open(&db).unwrap();
        for p in ["fresh.sqlite", "fresh.sqlite-wal", "fresh.sqlite-shm"] {
            let mode = std::fs::metadata(dir.path().join(p)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{p}");
        }
    }

    #[test]
    fn errors_name_the_path() {
        let e = SqliteStore::open(&SqliteOptions {
            path: "/nonexistent-dir-sp/x.sqlite".into(),
            busy_timeout: Duration::from_secs(1),
            synchronous_full: false,
        private_dir: false,
        })
        .err()
        .unwrap();
        let msg = format!("{e:#}");
        assert!(msg.contains("sqlite:///nonexistent-dir-sp/x.sqlite") && msg.contains("does not exist"), "{msg}");

        let dir = TempDir::new("sqlite-corrupt");
        let p = dir.path().join("c.sqlite");
        std::fs::write(&p, vec![b'z'; 8192]).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let e = SqliteStore::open(&SqliteOptions { path: p, busy_timeout: Duration::from_secs(1), synchronous_full: false, private_dir: false })
            .err()
            .unwrap();
        let msg = format!("{e:#}");
        assert!(msg.contains("c.sqlite") && msg.contains("not a database"), "{msg}");
        assert_eq!(msg.matches("not a database").count(), 1, "said once: {msg}");

        let e = SqliteStore::open(&SqliteOptions {
            path: dir.path().join("c.sqlite/x.sqlite"),
            busy_timeout: Duration::from_secs(1),
            synchronous_full: false,
        private_dir: false,
        })
        .err()
        .unwrap();
        assert!(format!("{e:#}").contains("c.sqlite is not a directory"), "{e:#}");
    }

    #[test]
    fn a_checkpoint_that_gave_up_waits_for_more_log() {
        assert!(!checkpoint_due(CHECKPOINT_FRAMES - 1, None));
        assert!(checkpoint_due(CHECKPOINT_FRAMES, None));
        let at = CHECKPOINT_FRAMES + 5;
        // Given up at `at`: not again until the log has grown by CHECKPOINT_FRAMES frames more...
        assert!(!checkpoint_due(at, Some(at)));
        assert!(!checkpoint_due(at + CHECKPOINT_FRAMES - 1, Some(at)));
        assert!(checkpoint_due(at + CHECKPOINT_FRAMES, Some(at)));
        // ...or has restarted (another connection's checkpoint) and refilled.
        assert!(checkpoint_due(CHECKPOINT_FRAMES, Some(at)));
        assert!(!checkpoint_due(CHECKPOINT_FRAMES - 1, Some(at)));
    }

    /// New sessions whose writes take the log past CHECKPOINT_FRAMES (3.5 WAL frames each, `fill`).
    const PAST: u32 = CHECKPOINT_FRAMES as u32 / 3 + 50;

    /// Writes `n` new sessions of 3000 bytes (3.5 WAL frames each), with a pause of 1 ms after every
    /// 20, as requests leave one: a loop without any lets the thread's RESTART find no moment
    /// without a writer within CHECKPOINT_WAIT (`a_thread_that_gave_up_hands_over_to_the_commits`).
    fn fill(s: &mut dyn Store, tag: &str, n: u32) {
        let data = vec![b'x'; 3000];
        for i in 0..n {
            let id = SessionId::parse(format!("{tag}{i}").as_bytes()).unwrap();
            put(s, &id, &data, Duration::from_secs(60)).unwrap();
            if i % 20 == 19 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }

    /// This process's checkpointer of the database file now at `path`.
    fn checkpointer(path: &Path) -> Arc<checkpoint::Checkpointer> {
        checkpoint::Checkpointer::for_database(path, file_identity(path).unwrap(), false)
    }

    /// A database in a new directory whose checkpointer thread has completed a checkpoint.
    fn checkpointed_once(tag: &str) -> (TempDir, PathBuf, SqliteStore, Arc<checkpoint::Checkpointer>) {
        let dir = TempDir::new(tag);
        let path = dir.path().join("s.sqlite");
        let mut s = store(&dir);
        let cp = checkpointer(&path);
        fill(&mut s, "first", PAST);
        assert!(checkpointed(&cp), "the thread checkpointed");
        (dir, path, s, cp)
    }

    /// Polls (bounded) until `cp`'s thread has completed a checkpoint.
    fn checkpointed(cp: &checkpoint::Checkpointer) -> bool {
        let end = Instant::now() + Duration::from_secs(30);
        while cp.completed() == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        cp.completed() > 0
    }

    /// A commit past CHECKPOINT_FRAMES hands the checkpoint to its process's checkpointer thread,
    /// and waits for none of its syncs: the log is checkpointed, and no commit ran one itself.
    #[test]
    fn checkpoints_run_on_a_thread_of_their_own() {
        let dir = TempDir::new("sqlite-ckpt-thread");
        let mut s = store(&dir);
        let cp = checkpointer(&dir.path().join("s.sqlite"));
        assert!(!cp.running(), "started at the first request, not at open");
        INLINE_CHECKPOINTS.with(|c| c.set(0));
        fill(&mut s, "t", PAST);
        assert!(checkpointed(&cp), "the thread checkpointed");
        assert!(cp.running());
        assert_eq!(INLINE_CHECKPOINTS.with(|c| c.get()), 0, "no commit checkpointed itself");
        // Every connection to the database in this process shares it.
        let again = store(&dir);
        assert!(Arc::ptr_eq(&cp, &checkpointer(&dir.path().join("s.sqlite"))));
        drop(again);
    }

    /// Without its thread (ended, as at MSHUTDOWN), commits checkpoint themselves, and the log stays
    /// bounded as before.
    #[test]
    fn without_the_thread_commits_checkpoint_themselves() {
        let (dir, _, mut s, cp) = checkpointed_once("sqlite-ckpt-inline");
        cp.end();
        assert!(!cp.running());
        INLINE_CHECKPOINTS.with(|c| c.set(0));
        fill(&mut s, "b", 6 * PAST);
        assert!(INLINE_CHECKPOINTS.with(|c| c.get()) >= 5, "the commits checkpointed");
        let wal = std::fs::metadata(dir.path().join("s.sqlite-wal")).unwrap().len();
        assert!(wal < 2 * CHECKPOINT_FRAMES as u64 * 4200, "the log restarted ({wal} bytes)");
    }

    /// When the thread's checkpoint gives up (here a reader holds an old snapshot), the commits
    /// after the log grew CHECKPOINT_FRAMES more checkpoint themselves, as before the thread; once
    /// that restarted the log, the thread is asked again.
    #[test]
    fn a_thread_that_gave_up_hands_over_to_the_commits() {
        let (dir, path, mut s, cp) = checkpointed_once("sqlite-ckpt-gaveup");
        let reader = Connection::open(&path).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        reader.query_row("SELECT count(*) FROM sessions", [], |r| r.get::<_, i64>(0)).unwrap();
        INLINE_CHECKPOINTS.with(|c| c.set(0));
        let before = cp.completed();
        // The thread tries first (and waits CHECKPOINT_WAIT for the reader), then a commit.
        fill(&mut s, "held", 3 * PAST);
        assert_eq!(cp.completed(), before, "the reader kept the thread's checkpoint from completing");
        assert!(INLINE_CHECKPOINTS.with(|c| c.get()) > 0, "a commit checkpointed itself");
        reader.execute_batch("COMMIT").unwrap();
        drop(reader);
        // The reader gone, a commit's own checkpoint restarts the log; then the thread serves again.
        fill(&mut s, "after", 3 * PAST);
        let end = Instant::now() + Duration::from_secs(30);
        while cp.completed() == before && Instant::now() < end {
            fill(&mut s, "late", 20);
        }
        assert!(cp.completed() > before, "the thread checkpoints again");
        drop(dir);
    }

    /// A database put in place of another (the operator replaced the file) gets a checkpointer of
    /// its own: the old one's connection reaches only the old file, and its thread is ended.
    #[test]
    fn a_database_put_in_place_of_another_gets_its_own_checkpointer() {
        let (dir, path, s, old) = checkpointed_once("sqlite-ckpt-replaced");
        drop(s);
        for f in ["s.sqlite", "s.sqlite-wal", "s.sqlite-shm"] {
            let _ = std::fs::rename(dir.path().join(f), dir.path().join(format!("old-{f}")));
        }
        let mut s = store(&dir);
        let new = checkpointer(&path);
        assert!(!Arc::ptr_eq(&old, &new));
        assert!(!old.running(), "the old file's checkpointer was ended");
        INLINE_CHECKPOINTS.with(|c| c.set(0));
        fill(&mut s, "b", PAST);
        assert!(checkpointed(&new), "the new file is checkpointed by its own thread");
        assert_eq!(INLINE_CHECKPOINTS.with(|c| c.get()), 0);
    }

    /// A forked child never touches its parent's checkpointer (whose thread stayed behind, maybe
    /// holding its lock): a request to it is declined (the inherited connection checkpoints
    /// itself), and a connection of its own gets a checkpointer of the child's.
    #[test]
    fn a_forked_child_checkpoints_without_its_parents_thread() {
        let (_dir, path, mut s, parent) = checkpointed_once("sqlite-ckpt-fork");
        // SAFETY: the child only runs this test's code and leaves by _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // No SQLite here: other tests' threads of this process may hold SQLite's mutexes at
            // the fork (PHP forks from its one thread; the checkpointer threads are kept out of
            // SQLite across a fork, `in_sqlite`). The phpt fork tests run SQLite in a child.
            let inherited_declines = !parent.request(CHECKPOINT_FRAMES);
            let mine = checkpointer(&path);
            let ok = inherited_declines && !Arc::ptr_eq(&mine, &parent);
            // SAFETY: ends the child without running the parent's destructors or test harness.
            unsafe { libc::_exit(if ok { 0 } else { 3 }) };
        }
        let end = Instant::now() + Duration::from_secs(60);
        let mut status = 0;
        loop {
            // SAFETY: waits for our own child.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            if Instant::now() > end {
                unsafe { libc::kill(pid, libc::SIGKILL) };
                panic!("the child hung");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status:#x}");
        // The parent's thread still serves the parent.
        let before = parent.completed();
        fill(&mut s, "q", 2 * PAST);
        let end = Instant::now() + Duration::from_secs(30);
        while parent.completed() == before && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(parent.completed() > before);
    }

    /// A fork made while the thread checkpoints waits for the checkpoint to end (`in_sqlite`): the
    /// child never starts with one of SQLite's own mutexes held by a thread it does not have. Here
    /// the log holds ~90 MB, so the checkpoint (a copy and two syncs) outlasts a fork by far.
    #[test]
    fn a_fork_waits_for_a_checkpoint_under_way() {
        let dir = TempDir::new("sqlite-ckpt-fork-wait");
        let path = dir.path().join("s.sqlite");
        let s = store(&dir);
        // A large log written by a connection without our hook (nothing asks for a checkpoint).
        let big = Connection::open(&path).unwrap();
        big.execute_batch(
            "PRAGMA wal_autocheckpoint=0;
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30000)
             INSERT INTO sessions (id, data, created_at, updated_at) SELECT 'big' || i, randomblob(3000), 0, 0 FROM n;",
        )
        .unwrap();
        let cp = checkpointer(&path);
        assert!(cp.request(CHECKPOINT_FRAMES), "the thread takes it");
        let end = Instant::now() + Duration::from_secs(30);
        while !cp.checkpointing() && cp.completed() == 0 && Instant::now() < end {
            std::thread::sleep(Duration::from_micros(50));
        }
        assert_eq!(cp.completed(), 0, "the checkpoint was seen under way");
        assert!(cp.checkpointing(), "the thread checkpoints");
        // SAFETY: the child leaves at once by _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            // SAFETY: ends the child without running the parent's destructors or test harness.
            unsafe { libc::_exit(0) };
        }
        let done_at_fork = cp.completed();
        let mut status = 0;
        // SAFETY: waits for our own child, which exits at once.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status:#x}");
        assert_eq!(done_at_fork, 1, "the fork waited for the checkpoint to end");
        // The thread's checkpoint copied the whole log: the next commit writes it from its start.
        big.execute("UPDATE sessions SET data = x'00' WHERE id = 'big1'", []).unwrap();
        let in_log: i64 = big.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get(1)).unwrap();
        assert!(in_log < 10, "the log restarted ({in_log} frames)");
        drop((big, s));
    }

    /// Under steady load, with some reader always inside the log, the log is still restarted: it
    /// stays bounded (SQLite's own PASSIVE autocheckpoint let it grow by every commit, to 51 MB
    /// here, and 722 MB in 15 s of php-fpm load).
    #[test]
    fn the_log_stays_bounded_while_readers_overlap() {
        let dir = TempDir::new("sqlite-wal");
        let mut s = store(&dir);
        let path = dir.path().join("s.sqlite");
        let wal = dir.path().join("s.sqlite-wal");
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers = {
            let (path, stop) = (path.clone(), stop.clone());
            std::thread::spawn(move || {
                // Two connections whose read transactions overlap: one is always open.
                let c: Vec<Connection> = (0..2).map(|_| Connection::open(&path).unwrap()).collect();
                let begin = |c: &Connection| {
                    c.execute_batch("BEGIN").unwrap();
                    c.query_row("SELECT count(*) FROM sessions", [], |r| r.get::<_, i64>(0)).unwrap();
                };
                begin(&c[0]);
                let mut reads = 0u64;
                for i in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let (held, next) = (&c[i % 2], &c[(i + 1) % 2]);
                    begin(next);
                    std::thread::sleep(Duration::from_micros(500));
                    held.execute_batch("COMMIT").unwrap();
                    reads += 1;
                }
                reads
            })
        };
        let data = vec![b'x'; 3000];
        let mut largest = 0;
        for n in 0..4000u32 {
            let id = SessionId::parse(format!("wal{}", n % 300).as_bytes()).unwrap();
            put(&mut s, &id, &data, Duration::from_secs(60)).unwrap();
            if n % 100 == 0 {
                largest = largest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            }
        }
        stop.store(true, Ordering::Relaxed);
        let reads = readers.join().unwrap();
        assert!(reads > 100, "the readers overlapped the writes ({reads} read transactions)");
        assert!(largest < WAL_LIMIT_BYTES, "the log grew to {largest} bytes");
    }
}
