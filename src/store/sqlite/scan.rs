//! Listing of the SQLite engine's sessions (`Scan`): keyset pages in id order, so a cursor (the last
//! id listed) resumes exactly, and each page is one indexed range read.

use std::time::Duration;

use rusqlite::params;

use super::{Fail, SqliteStore};
use crate::id::SessionId;
use crate::store::{unix_now, Left, Listed, Page, Result, Scan};

impl Scan for SqliteStore {
    fn scan(&mut self, cursor: &str, count: usize) -> Result<Page> {
        let now = unix_now();
        let r = self
            .conn
            .prepare_cached("SELECT id, updated_at FROM sessions WHERE id > ?1 ORDER BY id LIMIT ?2")
            .and_then(|mut st| {
                st.query_map(params![cursor, count.max(1) as i64], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()
            })
            .map_err(Fail::Sql);
        let rows = self.guard(r)?;
        let next = (rows.len() >= count.max(1)).then(|| rows.last().map(|(id, _)| id.clone())).flatten();
        let sessions = rows
            .into_iter()
            .filter_map(|(id, updated)| {
                let id = SessionId::parse(id.as_bytes()).ok()?;
                Some(Listed { id, left: Left::Idle(Duration::from_secs_f64((now - updated).max(0.0))) })
            })
            .collect();
        Ok(Page { sessions, next })
    }

    fn set_idle(&mut self, id: &SessionId, idle: Duration) -> Result<()> {
        self.writable()?;
        self.saw_bucket(id, None);
        let r = self
            .conn
            .prepare_cached("UPDATE sessions SET updated_at = ?2, gc_bucket = CAST(?2 / 60 AS INTEGER) WHERE id = ?1")
            .and_then(|mut st| st.execute(params![id.as_str(), unix_now() - idle.as_secs_f64()]))
            .map(|_| ())
            .map_err(Fail::Sql);
        self.guard(r)
    }

    /// Every row, expired or not (a scan lists them all): the listing's exact size when nothing
    /// writes meanwhile. One pass over the primary key's index.
    fn estimate(&mut self) -> Result<Option<u64>> {
        let r = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM sessions")
            .and_then(|mut st| st.query_row([], |r| r.get::<_, i64>(0)))
            .map_err(Fail::Sql);
        Ok(Some(self.guard(r)?.max(0) as u64))
    }
}
