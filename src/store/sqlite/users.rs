//! The SQLite engine's per-user index (issue 13): the reserved `user_id` column of `sessions` (the
//! user's bytes, as a BLOB) with a partial index on it, plus `client_ip` / `user_agent` for
//! `session_proxy.track_client`. A binding is one UPDATE of the session's row, so the index is never
//! out of step with the session: a destroyed, expired or collected row leaves its user's list with
//! it. The handles' secret is a row of `session_proxy_meta`, created with the first use.
//!
//! All of it is made at the first use of the index by a connection (`ensure`), so that a database
//! that never binds a user keeps the schema of before.

use std::time::Duration;

use rusqlite::types::ValueRef;
use rusqlite::{params, OptionalExtension, TransactionBehavior};

use super::{unix_now, Fail, Res, SqliteStore, REVOKED, REVOKED_FOR};
use crate::id::SessionId;
use crate::store::users::{Client, Count, Listed, User, Users};
use crate::store::{Expiry, Result};

const USERS_SCHEMA: &str = "
CREATE INDEX IF NOT EXISTS sessions_user_id ON sessions(user_id) WHERE user_id IS NOT NULL;
CREATE TABLE IF NOT EXISTS session_proxy_meta (
    name  TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
);
";

/// A user as stored: the BLOB we wrote, or TEXT another writer (an SQL tool) put there.
fn user_of(v: ValueRef<'_>) -> Option<User> {
    match v {
        ValueRef::Blob(b) | ValueRef::Text(b) => User::new(b).ok(),
        _ => None,
    }
}

fn text_of(v: ValueRef<'_>) -> Option<String> {
    match v {
        ValueRef::Blob(b) | ValueRef::Text(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

impl SqliteStore {
    /// The index, the client columns and the secret's table, once per connection.
    fn ensure(&mut self) -> Res<()> {
        if self.users_ready {
            return Ok(());
        }
        self.check_file().map_err(Fail::Store)?;
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(USERS_SCHEMA)?;
        for col in ["client_ip", "user_agent"] {
            let has = tx.prepare("SELECT 1 FROM pragma_table_info('sessions') WHERE name = ?1")?.exists(params![col])?;
            if !has {
                tx.execute_batch(&format!("ALTER TABLE sessions ADD COLUMN {col} TEXT"))?;
            }
        }
        tx.commit()?;
        self.users_ready = true;
        Ok(())
    }

    fn cutoff(exp: Expiry) -> f64 {
        unix_now() - exp.lifetime.as_secs_f64()
    }
}

impl Users for SqliteStore {
    /// One indexed lookup on the local file (no round trip: SQLite is embedded).
    fn bound(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<User>> {
        let r = (|| -> Res<Option<User>> {
            let u = self
                .conn
                .prepare_cached("SELECT user_id FROM sessions WHERE id = ?1 AND updated_at >= ?2")?
                .query_row(params![id.as_str(), Self::cutoff(exp)], |r| Ok(user_of(r.get_ref(0)?)))
                .optional()?;
            Ok(u.flatten())
        })();
        self.guard(r)
    }

    fn bind(&mut self, id: &SessionId, user: Option<&User>, client: Option<&Client>, _exp: Expiry) -> Result<()> {
        let r = (|| -> Res<()> {
            self.ensure()?;
            self.check_file().map_err(Fail::Store)?;
            let (ip, agent) = match (user, client) {
                (Some(_), Some(c)) => (Some(c.ip.as_str()), Some(c.agent.as_str())),
                _ => (None, None),
            };
            self.conn
                .prepare_cached("UPDATE sessions SET user_id = ?2, client_ip = ?3, user_agent = ?4 WHERE id = ?1")?
                .execute(params![id.as_str(), user.map(User::as_bytes), ip, agent])?;
            Ok(())
        })();
        self.guard(r)
    }

    fn list(&mut self, user: &User, exp: Expiry) -> Result<Vec<Listed>> {
        let r = (|| -> Res<Vec<Listed>> {
            self.ensure()?;
            let mut st = self.conn.prepare_cached(
                "SELECT id, created_at, updated_at, client_ip, user_agent FROM sessions
                 WHERE user_id = ?1 AND updated_at >= ?2 ORDER BY created_at",
            )?;
            let rows = st.query_map(params![user.as_bytes(), Self::cutoff(exp)], |r| {
                let id: String = r.get(0)?;
                let (ip, agent) = (text_of(r.get_ref(3)?), text_of(r.get_ref(4)?));
                let client = (ip.is_some() || agent.is_some()).then(|| Client { ip: ip.unwrap_or_default(), agent: agent.unwrap_or_default() });
                Ok((id, r.get::<_, f64>(1)?, r.get::<_, f64>(2)?, client))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, created, last_active, client) = row?;
                // Only ids of ours are in the table; anything else is skipped, never handed on.
                if let Ok(id) = SessionId::parse(id.as_bytes()) {
                    out.push(Listed { id, created, last_active, client });
                }
            }
            Ok(out)
        })();
        self.guard(r)
    }

    /// The session row deleted and its lock row made REVOKED in one transaction: the holder of the
    /// lock (by a row, or by its gate alone) then finds a row not its own at its write (LockLost),
    /// and the session layer drops that write.
    fn end(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        self.check_file()?;
        let r = (|| -> Res<bool> {
            let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let live = tx
                .prepare_cached("DELETE FROM sessions WHERE id = ?1 RETURNING updated_at >= ?2")?
                .query_row(params![id.as_str(), Self::cutoff(exp)], |r| r.get::<_, bool>(0))
                .optional()?;
            tx.prepare_cached(
                "INSERT INTO session_locks (id, owner, expires_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT(id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at",
            )?
            .execute(params![id.as_str(), REVOKED, unix_now() + REVOKED_FOR])?;
            tx.commit()?;
            Ok(live == Some(true))
        })();
        self.guard(r)
    }

    /// From the `gc_bucket` index: the sessions of the minutes after the cutoff's without reading
    /// them; those of its minute, and of a database's rows gc has not given a bucket yet, read.
    fn count_active(&mut self, within: Duration) -> Result<Count> {
        let cutoff = unix_now() - within.as_secs_f64();
        let r = self
            .conn
            .prepare_cached(
                "SELECT (SELECT count(*) FROM sessions WHERE gc_bucket > ?2)
                      + (SELECT count(*) FROM sessions WHERE gc_bucket = ?2 AND updated_at >= ?1)
                      + (SELECT count(*) FROM sessions WHERE gc_bucket IS NULL AND updated_at >= ?1)",
            )
            .and_then(|mut st| st.query_row(params![cutoff, super::gc_bucket(cutoff)], |r| r.get::<_, i64>(0)))
            .map(|n| Count::Sessions(n.max(0) as u64))
            .map_err(Fail::Sql);
        self.guard(r)
    }

    fn secret(&mut self) -> Result<[u8; 32]> {
        let r = (|| -> Res<[u8; 32]> {
            self.ensure()?;
            let mut fresh = [0u8; 32];
            getrandom::fill(&mut fresh).map_err(|e| Fail::Io("cannot draw the handles' secret", std::io::Error::other(e.to_string())))?;
            self.conn
                .prepare_cached("INSERT INTO session_proxy_meta (name, value) VALUES ('handle_secret', ?1) ON CONFLICT(name) DO NOTHING")?
                .execute(params![&fresh[..]])?;
            let v: Vec<u8> = self
                .conn
                .prepare_cached("SELECT value FROM session_proxy_meta WHERE name = 'handle_secret'")?
                .query_row([], |r| r.get(0))?;
            v.try_into().map_err(|_| Fail::Sql(rusqlite::Error::InvalidQuery))
        })();
        self.guard(r)
    }
}
