//! Listing of the MySQL engine's sessions (`Scan`): keyset pages in id order, so a cursor (the last id
//! listed) resumes exactly, and each page is one range read of the primary key.

use std::time::Duration;

use mysql::Value;

use super::sql::{NOW, SYMFONY_UNTIL};
use super::{MysqlStore, Schema};
use crate::id::SessionId;
use crate::store::{Left, Listed, Page, Result, Scan};

impl Scan for MysqlStore {
    /// Native: idle for how long (age judged at read). Symfony's table: the time left until its
    /// `sess_lifetime` (a TTL set by the writer).
    fn scan(&mut self, cursor: &str, count: usize) -> Result<Page> {
        let t = self.table.clone();
        let symfony = self.schema == Schema::Symfony;
        let sql = if symfony {
            format!("SELECT s.sess_id, {SYMFONY_UNTIL} - {NOW} FROM {t} AS s WHERE s.sess_id > ? ORDER BY s.sess_id LIMIT ?")
        } else {
            format!("SELECT id, {NOW} - updated FROM {t} WHERE id > ? ORDER BY id LIMIT ?")
        };
        let n = count.max(1);
        let rows = self.query(&sql, vec![Value::from(cursor), Value::from(n as u64)])?;
        let rows: Vec<(Vec<u8>, f64)> = rows.into_iter().filter_map(|mut r| Some((r.take::<Vec<u8>, _>(0)?, r.take::<f64, _>(1)?))).collect();
        let next = (rows.len() >= n).then(|| rows.last().map(|(id, _)| String::from_utf8_lossy(id).into_owned())).flatten();
        let sessions = rows
            .into_iter()
            .filter_map(|(id, secs)| {
                let id = SessionId::parse(&id).ok()?;
                let d = Duration::from_secs_f64(secs.max(0.0));
                Some(Listed { id, left: if symfony { Left::Ttl(d) } else { Left::Idle(d) } })
            })
            .collect();
        Ok(Page { sessions, next })
    }

    /// Every row, expired or not (a scan lists them all): exact when nothing writes meanwhile.
    fn estimate(&mut self) -> Result<Option<u64>> {
        let t = self.table.clone();
        let rows = self.query(&format!("SELECT COUNT(*) FROM {t}"), vec![])?;
        Ok(rows.into_iter().next().and_then(|mut r| r.take::<u64, _>(0)))
    }

    /// Native: sets `updated` back by `idle`. Symfony's table keeps the expiry its writer set.
    fn set_idle(&mut self, id: &SessionId, idle: Duration) -> Result<()> {
        if self.schema == Schema::Symfony {
            return Ok(());
        }
        let t = self.table.clone();
        self.query(&format!("UPDATE {t} SET updated = {NOW} - ? WHERE id = ?"), vec![idle.as_secs_f64().into(), id.as_str().into()])?;
        Ok(())
    }
}
