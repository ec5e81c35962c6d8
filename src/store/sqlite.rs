//! The embedded default engine: one SQLite file, WAL mode, per-session lock rows.
//!
//! Every operation is one short transaction; no transaction is ever held across a PHP request. A lock
//! is a row in `session_locks` (owner token + expiry), so one session's lock never blocks another's.

use std::io::ErrorKind;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{anyhow, Context};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use super::{unix_now, Acquire, Saved, Store};
use crate::dsn::SqliteOptions;
use crate::id::SessionId;
use crate::lock::Token;
use crate::private;

/// Rows deleted per gc transaction: small enough that no writer waits behind one.
pub const GC_BATCH: usize = 500;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS sessions (
    id         TEXT PRIMARY KEY NOT NULL,  -- session id, [a-zA-Z0-9,-]{1,256}
    data       BLOB NOT NULL,              -- the encoded session, bytes as PHP gave them
    created_at REAL NOT NULL,              -- unix time (s) of the first write
    updated_at REAL NOT NULL,              -- unix time (s) of the last write or timestamp update
    user_id    TEXT                        -- reserved for a per-user session index; NULL today
);
CREATE INDEX IF NOT EXISTS sessions_updated_at ON sessions(updated_at);
CREATE TABLE IF NOT EXISTS session_locks (
    id         TEXT PRIMARY KEY NOT NULL,  -- session id
    owner      TEXT NOT NULL,              -- random token of the request holding the lock
    expires_at REAL NOT NULL               -- unix time (s) after which the lock may be taken over
);
";

pub struct SqliteStore {
    conn: Connection,
    name: String,
    path: std::path::PathBuf,
    /// (device, inode) of the database file when opened.
    identity: (u64, u64),
    broken: bool,
}

fn file_identity(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

impl SqliteStore {
    pub fn open(o: &SqliteOptions) -> anyhow::Result<Self> {
        let name = format!("sqlite://{}", o.path.display());
        let conn = Self::connect(o).map_err(tidy).with_context(|| name.clone())?;
        let identity = file_identity(&o.path).ok_or_else(|| anyhow!("{name}: the database file vanished while opening"))?;
        Ok(SqliteStore { conn, name, path: o.path.clone(), identity, broken: false })
    }

    fn connect(o: &SqliteOptions) -> anyhow::Result<Connection> {
        let dir = o.path.parent().unwrap_or(Path::new("/"));
        if o.private_dir {
            private::ensure_private_dir(dir)?;
        }
        if !dir.is_dir() {
            let why = if dir.exists() { "is not a directory" } else { "does not exist" };
            return Err(anyhow!("directory {} {why}", dir.display()));
        }
        if o.path.is_dir() {
            return Err(anyhow!("{} is a directory, not a database file", o.path.display()));
        }
        check_files(&o.path)?;
        let conn = Connection::open(&o.path)?;
        conn.busy_timeout(o.busy_timeout)?;
        // Switching to WAL needs a moment of exclusive access; when many workers start at once, retry.
        let mut tries = 0;
        loop {
            match conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get::<_, String>(0)) {
                Ok(_) => break,
                Err(e) if tries < 50 && is_busy(&e) => {
                    tries += 1;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(e.into()),
            }
        }
        conn.execute_batch(if o.synchronous_full { "PRAGMA synchronous=FULL" } else { "PRAGMA synchronous=NORMAL" })?;
        conn.execute_batch(SCHEMA)?;
        Ok(conn)
    }

    /// Marks the connection as not reusable after any error (the caller names the database).
    fn guard<T>(&mut self, r: anyhow::Result<T>) -> anyhow::Result<T> {
        if r.is_err() {
            self.broken = true;
        }
        r.map_err(tidy)
    }

    fn load_in(conn: &Connection, id: &SessionId, max_lifetime: Duration, now: f64) -> rusqlite::Result<Option<Vec<u8>>> {
        conn.prepare_cached("SELECT data FROM sessions WHERE id = ?1 AND updated_at >= ?2")?
            .query_row(params![id.as_str(), now - max_lifetime.as_secs_f64()], |r| r.get(0))
            .optional()
    }

    /// Ends `owner`'s lock inside `tx`; false when the lock is no longer ours.
    fn release_in(tx: &Connection, id: &SessionId, owner: &Token) -> rusqlite::Result<bool> {
        let n = tx
            .prepare_cached("DELETE FROM session_locks WHERE id = ?1 AND owner = ?2")?
            .execute(params![id.as_str(), owner.as_str()])?;
        Ok(n == 1)
    }

    /// Before a change: the path must still name the file this connection opened. A database removed
    /// (or its directory) or replaced while a request ran would take the write into an orphaned inode
    /// and report success; refuse instead, so the request is told its change was not stored.
    fn check_file(&mut self) -> anyhow::Result<()> {
        if file_identity(&self.path) == Some(self.identity) {
            return Ok(());
        }
        self.broken = true;
        Err(anyhow!("the database file {} was removed or replaced while this request ran", self.path.display()))
    }

    /// Runs `f` in an IMMEDIATE transaction after checking (and releasing) `owner`'s lock.
    fn under_lock(
        &mut self,
        id: &SessionId,
        owner: Option<&Token>,
        f: impl FnOnce(&Connection) -> rusqlite::Result<()>,
    ) -> anyhow::Result<Saved> {
        self.check_file()?;
        let r = (|| {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(owner) = owner {
                if !Self::release_in(&tx, id, owner)? {
                    return Ok(Saved::LockLost);
                }
            }
            f(&tx)?;
            tx.commit()?;
            Ok(Saved::Done)
        })();
        self.guard(r)
    }
}

/// The files SQLite opens beside a database: a planted `-wal`/`-shm` would receive the session data,
/// a planted hot `-journal` would be rolled back into the database.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Session data is secret, so before SQLite opens anything: the database and its companions must be
/// ours and private (`private::check_file`), never symlinks. The database, `-wal` and `-shm` are
/// created 0600 here when missing, so SQLite never makes them and nobody else can make them first.
fn check_files(db: &Path) -> anyhow::Result<()> {
    /// Opens (checks) `p`, creating it when `create` and missing; Ok(false) when it could not be created.
    fn ours(p: &Path, create: bool) -> std::io::Result<Option<std::fs::File>> {
        loop {
            match private::open(p, std::fs::OpenOptions::new().read(true), 0o600) {
                Ok(f) => return Ok(Some(f)),
                Err(e) if e.kind() == ErrorKind::NotFound && create => {}
                Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            }
            match private::open(p, std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600), 0o600) {
                Ok(f) => return Ok(Some(f)),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }
    let f = ours(db, true).map_err(|e| match e.raw_os_error() {
        Some(_) => anyhow!(e).context(format!("cannot create {} (is the directory writable?)", db.display())),
        None => anyhow!(e),
    })?;
    // Not beside a file that is no database (SQLite refuses it next, and nothing is left behind).
    let mut head = [0u8; 16];
    let n = f.map(|mut f| std::io::Read::read(&mut f, &mut head).unwrap_or(0)).unwrap_or(0);
    let create = n == 0 || &head[..n] == &b"SQLite format 3\0"[..n];
    for suffix in COMPANIONS {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        match ours(Path::new(&p), create && suffix != "-journal") {
            Ok(_) => {}
            // A directory we may not write (read-only storage): SQLite says what it can do there.
            Err(e) if e.kind() != ErrorKind::PermissionDenied || e.raw_os_error().is_some() => {}
            Err(e) => return Err(e.into()),
        }
    }
    // A database we may not write at all (another owner's, mode 0600): say so, not "unable to open".
    let c = std::ffi::CString::new(db.as_os_str().as_encoded_bytes())?;
    // SAFETY: c is a valid NUL-terminated path.
    if unsafe { libc::access(c.as_ptr(), libc::R_OK | libc::W_OK) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EACCES) {
            return Err(private::explain_open_error(db, e).into());
        }
    }
    Ok(())
}

/// rusqlite's errors carry SQLite's code as their source, so a chain prints the same words twice
/// ("file is not a database: Error code 26: file is not a database"): keep SQLite's message once.
fn tidy(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<rusqlite::Error>() {
        Ok(sqlite) => anyhow!("{sqlite}"),
        Err(other) => other,
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(e.sqlite_error_code(), Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked))
}

impl Store for SqliteStore {
    fn describe(&self) -> String {
        self.name.clone()
    }

    fn load(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<Option<Vec<u8>>> {
        let r = Self::load_in(&self.conn, id, max_lifetime, unix_now()).map_err(Into::into);
        self.guard(r)
    }

    fn lock_and_load(
        &mut self,
        id: &SessionId,
        owner: &Token,
        expire: Duration,
        max_lifetime: Duration,
    ) -> anyhow::Result<Acquire> {
        let r = (|| {
            let now = unix_now();
            // Waiters poll here: a plain read (no write lock in WAL mode) answers "still busy" cheaply.
            let held: Option<(String, f64)> = self
                .conn
                .prepare_cached("SELECT owner, expires_at FROM session_locks WHERE id = ?1")?
                .query_row(params![id.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()?;
            if let Some((o, exp)) = held {
                if o != owner.as_str() && exp > now {
                    return Ok(Acquire::Busy);
                }
            }
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = unix_now();
            let taken = tx
                .prepare_cached(
                    "INSERT INTO session_locks (id, owner, expires_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT(id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
                     WHERE session_locks.expires_at <= ?4 OR session_locks.owner = excluded.owner",
                )?
                .execute(params![id.as_str(), owner.as_str(), now + expire.as_secs_f64(), now])?;
            if taken == 0 {
                return Ok(Acquire::Busy);
            }
            let data = Self::load_in(&tx, id, max_lifetime, now)?;
            tx.commit()?;
            Ok(Acquire::Locked(data))
        })();
        self.guard(r)
    }

    fn save(&mut self, id: &SessionId, data: &[u8], _ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved> {
        self.under_lock(id, owner, |tx| {
            let now = unix_now();
            tx.prepare_cached(
                "INSERT INTO sessions (id, data, created_at, updated_at) VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT(id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at",
            )?
            .execute(params![id.as_str(), data, now])?;
            Ok(())
        })
    }

    fn touch(&mut self, id: &SessionId, _ttl: Duration, owner: Option<&Token>) -> anyhow::Result<Saved> {
        self.under_lock(id, owner, |tx| {
            tx.prepare_cached("UPDATE sessions SET updated_at = ?2 WHERE id = ?1")?
                .execute(params![id.as_str(), unix_now()])?;
            Ok(())
        })
    }

    fn unlock(&mut self, id: &SessionId, owner: &Token) -> anyhow::Result<()> {
        let r = Self::release_in(&self.conn, id, owner).map(|_| ()).map_err(Into::into);
        self.guard(r)
    }

    fn lock_holder(&mut self, id: &SessionId) -> anyhow::Result<Option<Token>> {
        let r = self
            .conn
            .prepare_cached("SELECT owner FROM session_locks WHERE id = ?1 AND expires_at > ?2")
            .and_then(|mut st| st.query_row(params![id.as_str(), unix_now()], |r| r.get::<_, String>(0)).optional())
            .map(|o| o.map(Token::from_stored))
            .map_err(Into::into);
        self.guard(r)
    }

    fn destroy(&mut self, id: &SessionId, owner: Option<&Token>) -> anyhow::Result<()> {
        self.check_file()?;
        let r = (|| {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.prepare_cached("DELETE FROM sessions WHERE id = ?1")?.execute(params![id.as_str()])?;
            if let Some(owner) = owner {
                Self::release_in(&tx, id, owner)?;
            }
            tx.commit()
        })()
        .map_err(Into::into);
        self.guard(r)
    }

    fn exists(&mut self, id: &SessionId, max_lifetime: Duration) -> anyhow::Result<bool> {
        let r = (|| {
            self.conn
                .prepare_cached("SELECT 1 FROM sessions WHERE id = ?1 AND updated_at >= ?2")?
                .query_row(params![id.as_str(), unix_now() - max_lifetime.as_secs_f64()], |_| Ok(()))
                .optional()
                .map(|o| o.is_some())
        })()
        .map_err(Into::into);
        self.guard(r)
    }

    fn gc(&mut self, max_lifetime: Duration) -> anyhow::Result<u64> {
        let r = (|| {
            let cutoff = unix_now() - max_lifetime.as_secs_f64();
            let mut total = 0u64;
            loop {
                // Each batch is its own short transaction so writers interleave with a large gc.
                let n = self
                    .conn
                    .prepare_cached(
                        "DELETE FROM sessions WHERE rowid IN
                         (SELECT rowid FROM sessions WHERE updated_at < ?1 LIMIT ?2)",
                    )?
                    .execute(params![cutoff, GC_BATCH as i64])?;
                total += n as u64;
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

    fn reusable(&self) -> bool {
        !self.broken
    }

    /// A connection to a deleted or replaced file would read and write an orphaned inode.
    fn still_valid(&mut self) -> bool {
        file_identity(&self.path) == Some(self.identity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{conformance, expiring_locks, TempDir};

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
        conformance(|| Box::new(store(&dir)));
    }

    #[test]
    fn expired_locks_are_taken_over() {
        let dir = TempDir::new("sqlite-expire");
        expiring_locks(|| Box::new(store(&dir)));
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
        let mut s = store(&dir);
        s.save(&id, b"old", life, None).unwrap();
        assert_eq!(s.lock_and_load(&id, &t, life, life).unwrap(), Acquire::Locked(Some(b"old".to_vec())));
        std::fs::remove_file(&path).unwrap();
        let e = s.save(&id, b"new", life, Some(&t)).unwrap_err();
        assert!(format!("{e:#}").contains("was removed or replaced"), "{e:#}");
        assert!(s.touch(&id, life, Some(&t)).is_err());
        assert!(s.destroy(&id, Some(&t)).is_err());
        assert!(!s.reusable());
        // Replaced by another database (a restore): the new file is not written through the old handle.
        let mut s = store(&dir);
        s.save(&id, b"v1", life, None).unwrap();
        let other = dir.path().join("other.sqlite");
        let mut o = SqliteStore::open(&SqliteOptions { path: other.clone(), busy_timeout: Duration::from_secs(5), synchronous_full: false, private_dir: false }).unwrap();
        o.save(&id, b"restored", life, None).unwrap();
        drop(o);
        std::fs::rename(&other, &path).unwrap();
        let before = std::fs::read(&path).unwrap();
        assert!(s.save(&id, b"v2", life, None).is_err());
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
                "INSERT INTO sessions (id, data, created_at, updated_at) VALUES (?1, x'00', 0, 0)",
                params![format!("old{i}")],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let keep = SessionId::parse(b"fresh").unwrap();
        s.save(&keep, b"x", Duration::from_secs(60), None).unwrap();
        assert_eq!(s.gc(Duration::from_secs(60)).unwrap(), n as u64);
        assert!(s.exists(&keep, Duration::from_secs(60)).unwrap());
    }

    #[test]
    fn database_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new("sqlite-mode");
        let _s = store(&dir);
        let mode = std::fs::metadata(dir.path().join("s.sqlite")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "mode {mode:o}");
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
}
