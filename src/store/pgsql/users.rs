//! The PostgreSQL engine's per-user index (issue 13), native schema only: the table's `user_id`
//! column (with its index `{t}_user_id`), plus `client_ip` / `user_agent` for
//! `session_proxy.track_client` and the handles' secret in `{t}_meta`. The columns and the table are
//! added at the first use of the index by a connection (`ensure`; `create=never`: only checked, and
//! what is missing is named), so that a table that never binds a user keeps its schema.
//!
//! - A binding is one UPDATE of the session's row (one round trip): the index can never be out of
//!   step with the session, and a destroyed, expired or collected row leaves its user's list with it.
//!   An expired row that a write replaces is a new session, bound to nobody (the write functions).
//! - `bound` answers from the last read: every read (the lock function, the load) returns the row's
//!   `user_id` with the data, so a request whose binding does not change makes no extra round trip.
//! - `end` deletes the row (and, with lock rows, its lock row) in one statement. An advisory lock is
//!   the holder's connection's and cannot be taken from it; the holder's late write under it
//!   (`Expect::Held(Some(_))`) is an UPDATE of the row it read, refused when the row is gone, so an
//!   ended session stays ended. A lock row is deleted, so its holder finds the lock lost.
//! - `count_active` counts from the `{t}_updated` index.
//! - `user_id` is text: a user name that is UTF-8 without NUL is stored as itself (readable by SQL
//!   tools), any other (binary, or starting with `\x`) as `\x` and its hex, so names never collide.

use std::time::Duration;

use super::PgsqlStore;
use crate::id::SessionId;
use crate::store::users::{hex, unhex, Client, Count, Listed, User, Users};
use crate::store::{ErrorKind, Expiry, Result, StoreError};

/// The prefix of a user name stored as hex.
const HEX_MARK: &str = "\\x";

/// How `user` is stored in the text column `user_id`.
pub fn encode_user(user: &User) -> String {
    match std::str::from_utf8(user.as_bytes()) {
        Ok(s) if !s.contains('\0') && !s.starts_with(HEX_MARK) => s.to_string(),
        _ => format!("{HEX_MARK}{}", hex(user.as_bytes())),
    }
}

/// `encode_user` read back; None for a value no binding of ours wrote (empty, bad hex).
pub fn decode_user(v: &str) -> Option<User> {
    match v.strip_prefix(HEX_MARK) {
        Some(h) => User::new(&unhex(h.as_bytes())?).ok(),
        None => User::new(v.as_bytes()).ok(),
    }
}

/// The server's clock in SQL (as the engine's other statements read it).
const NOW: &str = "extract(epoch FROM clock_timestamp())::float8";

impl PgsqlStore {
    /// The client columns and the meta table, checked once per connection (one round trip), made
    /// when missing (`create=auto`, under the DDL lock the table's creation takes).
    fn ensure(&mut self) -> Result<()> {
        if self.users_ready {
            return Ok(());
        }
        let (t, at) = (self.table.clone(), self.at.clone());
        let meta = format!("{t}_meta");
        let check = "SELECT ARRAY(SELECT c FROM unnest(ARRAY['client_ip', 'user_agent']) AS c WHERE NOT EXISTS
                        (SELECT 1 FROM pg_attribute a WHERE a.attrelid = to_regclass($1) AND a.attname = c AND NOT a.attisdropped)),
                     to_regclass($2) IS NOT NULL";
        self.trips += 1;
        let row = self.client.query_one(check, &[&t, &meta]).map_err(|e| super::pg_error(&at, &e))?;
        let mut missing: Vec<String> = row.get::<_, Vec<String>>(0).into_iter().map(|c| format!("column {t}.{c}")).collect();
        if !row.get::<_, bool>(1) {
            missing.push(format!("table {meta}"));
        }
        if !missing.is_empty() {
            if !self.create {
                return Err(StoreError::new(
                    ErrorKind::Unavailable,
                    &at,
                    format!("create=never and the database lacks {} for the per-user session index (create them with the DDL in the README, or use create=auto)", missing.join(", ")),
                ));
            }
            let ddl = format!(
                "SELECT pg_advisory_xact_lock(hashtext('session_proxy ddl'));
                 ALTER TABLE {t} ADD COLUMN IF NOT EXISTS client_ip text, ADD COLUMN IF NOT EXISTS user_agent text;
                 CREATE TABLE IF NOT EXISTS {meta} (name text PRIMARY KEY, value bytea NOT NULL);"
            );
            self.trips += 1;
            let r = self.client.transaction().and_then(|mut tx| {
                tx.batch_execute(&ddl)?;
                tx.commit()
            });
            r.map_err(|e| super::pg_error(&at, &e))?;
        }
        self.users_ready = true;
        Ok(())
    }
}

impl Users for PgsqlStore {
    /// From the last read of `id` (no round trip); else one indexed lookup.
    fn bound(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<User>> {
        if let Some((seen, u)) = &self.read_user {
            if seen == id {
                return Ok(u.as_deref().and_then(decode_user));
            }
        }
        let rows = self.run_sql(
            "bound",
            |t| format!("SELECT user_id FROM {t} WHERE id = $1 AND updated >= {NOW} - $2::float8"),
            &[&id.as_str(), &exp.lifetime.as_secs_f64()],
        )?;
        let u: Option<String> = rows.into_iter().next().and_then(|r| r.get(0));
        self.read_user = Some((id.clone(), u.clone()));
        Ok(u.as_deref().and_then(decode_user))
    }

    fn bind(&mut self, id: &SessionId, user: Option<&User>, client: Option<&Client>, _exp: Expiry) -> Result<()> {
        self.ensure()?;
        let (ip, agent) = match (user, client) {
            (Some(_), Some(c)) => (Some(c.ip.as_str()), Some(c.agent.as_str())),
            _ => (None, None),
        };
        let stored = user.map(encode_user);
        self.run_sql(
            "bind",
            |t| format!("UPDATE {t} SET user_id = $2, client_ip = $3, user_agent = $4 WHERE id = $1"),
            &[&id.as_str(), &stored, &ip, &agent],
        )?;
        self.read_user = Some((id.clone(), stored));
        Ok(())
    }

    fn list(&mut self, user: &User, exp: Expiry) -> Result<Vec<Listed>> {
        self.ensure()?;
        let rows = self.run_sql(
            "list",
            |t| {
                format!(
                    "SELECT id, created, updated, client_ip, user_agent FROM {t}
                     WHERE user_id = $1 AND updated >= {NOW} - $2::float8 ORDER BY created"
                )
            },
            &[&encode_user(user), &exp.lifetime.as_secs_f64()],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                // Only ids of ours are in the table; anything else is skipped, never handed on.
                let id = SessionId::parse(r.get::<_, String>(0).as_bytes()).ok()?;
                let (ip, agent): (Option<String>, Option<String>) = (r.get(3), r.get(4));
                let client = (ip.is_some() || agent.is_some()).then(|| Client { ip: ip.unwrap_or_default(), agent: agent.unwrap_or_default() });
                Some(Listed { id, created: r.get(1), last_active: r.get(2), client })
            })
            .collect())
    }

    /// The row (and with lock rows its lock row) in one statement; see the module comment for a
    /// request holding the session's advisory lock.
    fn end(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        let row_locks = self.lock == super::LockMode::Row;
        let rows = self.run_sql(
            "end",
            |t| {
                let locks = if row_locks { format!("WITH l AS (DELETE FROM {t}_locks WHERE id = $1) ") } else { String::new() };
                format!("{locks}DELETE FROM {t} WHERE id = $1 RETURNING updated >= {NOW} - $2::float8")
            },
            &[&id.as_str(), &exp.lifetime.as_secs_f64()],
        )?;
        if self.read_user.as_ref().is_some_and(|(s, _)| s == id) {
            self.read_user = None;
        }
        Ok(rows.into_iter().next().is_some_and(|r| r.get::<_, bool>(0)))
    }

    /// From the `updated` index, without reading the sessions.
    fn count_active(&mut self, within: Duration) -> Result<Count> {
        let rows = self.run_sql("count", |t| format!("SELECT count(*) FROM {t} WHERE updated >= {NOW} - $1::float8"), &[&within.as_secs_f64()])?;
        let n: i64 = rows.into_iter().next().map_or(0, |r| r.get(0));
        Ok(Count::Sessions(n.max(0) as u64))
    }

    /// One statement: the fresh secret is inserted unless one is there, and the stored one answered.
    fn secret(&mut self) -> Result<[u8; 32]> {
        self.ensure()?;
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| StoreError::new(ErrorKind::Backend, &self.at, format!("cannot draw the handles' secret: {e}")))?;
        let rows = self.run_sql(
            "secret",
            |t| {
                format!(
                    "WITH ins AS (INSERT INTO {t}_meta (name, value) VALUES ('handle_secret', $1) ON CONFLICT (name) DO NOTHING RETURNING value)
                     SELECT value FROM ins UNION ALL SELECT value FROM {t}_meta WHERE name = 'handle_secret' LIMIT 1"
                )
            },
            &[&&fresh[..]],
        )?;
        let mut v: Option<Vec<u8>> = rows.into_iter().next().map(|r| r.get(0));
        if v.is_none() {
            // Another connection inserted it while ours waited (our statement's snapshot was older).
            v = self.run_sql("secret_again", |t| format!("SELECT value FROM {t}_meta WHERE name = 'handle_secret'"), &[])?.into_iter().next().map(|r| r.get(0));
        }
        let v = v.unwrap_or_default();
        v.try_into().map_err(|_| StoreError::new(ErrorKind::Corrupt, &self.at, format!("the handles' secret in {}_meta is not 32 bytes", self.table)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_round_trip_without_collisions() {
        let names: [&[u8]; 6] = [b"alice", b"\\x616c696365", b"a\0b", b"\xff\xfe", "zoë".as_bytes(), b"\\"];
        let mut stored = std::collections::BTreeSet::new();
        for n in names {
            let u = User::new(n).unwrap();
            let e = encode_user(&u);
            assert!(!e.contains('\0'), "{e:?}");
            assert_eq!(decode_user(&e), Some(u), "{e:?}");
            assert!(stored.insert(e), "two names stored alike");
        }
        assert_eq!(encode_user(&User::new(b"alice").unwrap()), "alice", "text names readable as themselves");
    }
}
