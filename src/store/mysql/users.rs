//! The MySQL engine's per-user index (issue 13), on the native table: its `user_id` column (the
//! user's bytes, indexed) and `client_ip` / `user_agent` for `session_proxy.track_client`, as
//! SQLite's. A binding is one UPDATE of the session's row, so the index is never out of step with the
//! session: a destroyed, expired or collected row leaves its user's list with it. The handles' secret
//! is a row of `<table>_meta`. Symfony's table has no such column: no index there.

use std::time::Duration;

use mysql::prelude::Queryable;
use mysql::{Row, TxOpts, Value};

use super::sql::NOW;
use super::{LockMode, MysqlStore};
use crate::id::SessionId;
use crate::store::users::{Client, Count, Listed, User, Users};
use crate::store::{ErrorKind, Expiry, Result, StoreError};

fn text(r: &mut Row, i: usize) -> Option<String> {
    r.take::<Option<Vec<u8>>, _>(i).flatten().map(|b| String::from_utf8_lossy(&b).into_owned())
}

impl Users for MysqlStore {
    fn bound(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<User>> {
        if let Some((seen, u)) = &self.read_user {
            if seen == id {
                return Ok(u.as_deref().and_then(|b| User::new(b).ok()));
            }
        }
        let t = self.table.clone();
        let rows = self.query(&format!("SELECT user_id FROM {t} WHERE id = ? AND updated >= {NOW} - ?"), vec![id.as_str().into(), exp.lifetime.as_secs_f64().into()])?;
        let u = rows.into_iter().next().and_then(|mut r| r.take::<Option<Vec<u8>>, _>(0).flatten());
        self.read_user = Some((id.clone(), u.clone()));
        Ok(u.and_then(|b| User::new(&b).ok()))
    }

    fn bind(&mut self, id: &SessionId, user: Option<&User>, client: Option<&Client>, _exp: Expiry) -> Result<()> {
        let t = self.table.clone();
        let (ip, agent) = match (user, client) {
            (Some(_), Some(c)) => (Value::from(c.ip.as_str()), Value::from(c.agent.as_str())),
            _ => (Value::NULL, Value::NULL),
        };
        let u = user.map_or(Value::NULL, |u| Value::from(u.as_bytes()));
        self.query(&format!("UPDATE {t} SET user_id = ?, client_ip = ?, user_agent = ? WHERE id = ?"), vec![u, ip, agent, id.as_str().into()])?;
        self.read_user = Some((id.clone(), user.map(|u| u.as_bytes().to_vec())));
        Ok(())
    }

    fn list(&mut self, user: &User, exp: Expiry) -> Result<Vec<Listed>> {
        let t = self.table.clone();
        let rows = self.query(
            &format!("SELECT id, created, updated, client_ip, user_agent FROM {t} WHERE user_id = ? AND updated >= {NOW} - ? ORDER BY created"),
            vec![user.as_bytes().into(), exp.lifetime.as_secs_f64().into()],
        )?;
        Ok(rows
            .into_iter()
            .filter_map(|mut r| {
                // Only ids of ours are in the table; anything else is skipped, never handed on.
                let id = SessionId::parse(&r.take::<Vec<u8>, _>(0)?).ok()?;
                let (created, last_active) = (r.take::<f64, _>(1)?, r.take::<f64, _>(2)?);
                let (ip, agent) = (text(&mut r, 3), text(&mut r, 4));
                let client = (ip.is_some() || agent.is_some()).then(|| Client { ip: ip.unwrap_or_default(), agent: agent.unwrap_or_default() });
                Some(Listed { id, created, last_active, client })
            })
            .collect())
    }

    /// The session row (and with lock rows its lock row) in one transaction. With advisory locks the
    /// holder's lock stays on its connection, but its late write finds no row and is refused
    /// (`Op::Update`).
    fn end(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        let (t, row) = (self.table.clone(), self.lock == LockMode::Row);
        self.trips += 3 + u64::from(row);
        self.read_user = None;
        let r = (|| -> std::result::Result<bool, mysql::Error> {
            let mut tx = self.conn.start_transaction(TxOpts::default())?;
            let live: Option<i64> = tx.exec_first(format!("SELECT updated >= {NOW} - ? FROM {t} WHERE id = ? FOR UPDATE"), (exp.lifetime.as_secs_f64(), id.as_str()))?;
            tx.exec_drop(format!("DELETE FROM {t} WHERE id = ?"), (id.as_str(),))?;
            if row {
                tx.exec_drop(format!("DELETE FROM {t}_locks WHERE id = ?"), (id.as_str(),))?;
            }
            tx.commit()?;
            Ok(live == Some(1))
        })();
        r.map_err(|e| self.failed(&e))
    }

    /// From the `updated` index, without reading the sessions.
    fn count_active(&mut self, within: Duration) -> Result<Count> {
        let t = self.table.clone();
        let rows = self.query(&format!("SELECT COUNT(*) FROM {t} WHERE updated >= {NOW} - ?"), vec![within.as_secs_f64().into()])?;
        let n = rows.into_iter().next().and_then(|mut r| r.take::<i64, _>(0)).unwrap_or(0);
        Ok(Count::Sessions(n.max(0) as u64))
    }

    fn secret(&mut self) -> Result<[u8; 32]> {
        let t = self.table.clone();
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| StoreError::new(ErrorKind::Backend, &self.at, format!("cannot draw the handles' secret: {e}")))?;
        self.query(&format!("INSERT IGNORE INTO {t}_meta (name, value) VALUES ('handle_secret', ?)"), vec![fresh[..].into()])?;
        let rows = self.query(&format!("SELECT value FROM {t}_meta WHERE name = 'handle_secret'"), vec![])?;
        let v = rows.into_iter().next().and_then(|mut r| r.take::<Vec<u8>, _>(0)).unwrap_or_default();
        v.try_into().map_err(|_| StoreError::new(ErrorKind::Corrupt, &self.at, format!("{t}_meta's handle_secret is not 32 bytes")))
    }
}
