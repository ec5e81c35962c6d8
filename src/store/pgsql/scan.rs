//! Listing of the PostgreSQL engine's sessions (`Scan`), both schemas: keyset pages in id order (the
//! primary key's order), so a cursor (the last id listed) resumes exactly and each page is one
//! indexed range read. The native table judges age at read (`updated`, as SQLite): its sessions list
//! as idle for so long, and `set_idle` moves `updated` (and `expiry` with it). Symfony's table keeps
//! the writer's expiry (`sess_lifetime`): its sessions list with the time to live left, as a TTL
//! engine's, and `set_idle` does nothing.

use std::time::Duration;

use super::{PgsqlStore, Schema};
use crate::id::SessionId;
use crate::store::{Left, Listed, Page, Result, Scan};

impl Scan for PgsqlStore {
    fn scan(&mut self, cursor: &str, count: usize) -> Result<Page> {
        let limit = count.clamp(1, i64::MAX as usize) as i64;
        let native = self.schema == Schema::Native;
        let rows = if native {
            self.run_sql(
                "scan",
                |t| format!("SELECT id, extract(epoch FROM clock_timestamp())::float8 - updated FROM {t} WHERE id > $1 ORDER BY id LIMIT $2"),
                &[&cursor, &limit],
            )?
        } else {
            // The expiry of Symfony's rule (the legacy relative form too), less the server's now.
            let expiry = SYMFONY_EXPIRY;
            self.run_sql(
                "scan",
                |t| format!("SELECT sess_id::text, ({expiry}) - extract(epoch FROM clock_timestamp())::float8 FROM {t} AS s WHERE sess_id > $1 ORDER BY sess_id LIMIT $2"),
                &[&cursor, &limit],
            )?
        };
        let full = rows.len() as i64 >= limit;
        let mut next = None;
        let mut sessions = Vec::with_capacity(rows.len());
        for r in rows {
            let id: String = r.get(0);
            let secs = Duration::from_secs_f64(r.get::<_, f64>(1).max(0.0));
            if let Ok(sid) = SessionId::parse(id.as_bytes()) {
                sessions.push(Listed { id: sid, left: if native { Left::Idle(secs) } else { Left::Ttl(secs) } });
            }
            next = Some(id);
        }
        Ok(Page { sessions, next: next.filter(|_| full) })
    }

    /// Every row, expired or not (a scan lists them all): exact when nothing writes meanwhile.
    fn estimate(&mut self) -> Result<Option<u64>> {
        let rows = self.run_sql("estimate", |t| format!("SELECT count(*) FROM {t}"), &[])?;
        Ok(rows.first().map(|r| r.get::<_, i64>(0).max(0) as u64))
    }

    fn set_idle(&mut self, id: &SessionId, idle: Duration) -> Result<()> {
        if self.schema != Schema::Native {
            return Ok(());
        }
        self.run_sql(
            "set_idle",
            |t| {
                format!(
                    "UPDATE {t} SET updated = extract(epoch FROM clock_timestamp())::float8 - $2::float8,
                         expiry = expiry + (extract(epoch FROM clock_timestamp())::float8 - $2::float8 - updated)
                     WHERE id = $1"
                )
            },
            &[&id.as_str(), &idle.as_secs_f64()],
        )?;
        Ok(())
    }
}

/// The unix time a row of Symfony's table expires, over the row alias `s` (`SYMFONY_LIVE`'s rule).
const SYMFONY_EXPIRY: &str = "CASE WHEN s.sess_lifetime <= 315576000 THEN s.sess_lifetime + s.sess_time ELSE s.sess_lifetime END";

#[cfg(test)]
mod tests {
    #[test]
    fn symfony_expiry_is_the_liveness_rule() {
        assert!(super::super::SYMFONY_LIVE.contains(super::SYMFONY_EXPIRY));
    }
}
