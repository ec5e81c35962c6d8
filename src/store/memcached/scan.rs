//! Listing of the Memcached engine's sessions (`Scan`) with the LRU crawler (`lru_crawler metadump
//! all`), one server per page: the cursor is the next server's index. memcached's dump is a stream
//! that cannot be resumed in the middle, so a page holds the ids of one server (names and expiry
//! only, never values: ~60 bytes per session); an interrupted copy starts that server over (its
//! rule that a session present in the target is skipped makes that cheap and exact). With replicas a
//! session is listed once per server that holds it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{io_kind, url_decode, MemcachedStore};
use crate::id::SessionId;
use crate::store::{Left, Listed, Page, Result, Scan};

/// The most lines one dump may answer (a bound on a page, whatever the server holds).
const MAX_DUMP_LINES: usize = 5_000_000;

/// A metadump line's session: `key=<url-encoded> exp=<unix time, -1: never> …`, under `prefix`.
fn listed(line: &str, prefix: &str, now: u64) -> Option<Listed> {
    let mut key = None;
    let mut exp = None;
    for f in line.split(' ') {
        if let Some(k) = f.strip_prefix("key=") {
            key = Some(url_decode(k));
        } else if let Some(e) = f.strip_prefix("exp=") {
            exp = e.parse::<i64>().ok();
        }
    }
    let key = key?;
    let id = SessionId::parse(key.strip_prefix(prefix)?.as_bytes()).ok()?;
    let left = match exp? {
        e if e < 0 => Left::Unbounded,
        e if (e as u64) <= now => return None,
        e => Left::Ttl(Duration::from_secs(e as u64 - now)),
    };
    Some(Listed { id, left })
}

impl Scan for MemcachedStore {
    fn scan(&mut self, cursor: &str, _count: usize) -> Result<Page> {
        let s: usize = cursor.parse().unwrap_or(0);
        if s >= self.servers.len() {
            return Ok(Page::default());
        }
        let prefix = self.o.prefix.clone();
        let lines = self.metadump(s, "lru_crawler metadump all", MAX_DUMP_LINES)?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let sessions = lines.iter().filter_map(|l| listed(l, &prefix, now)).collect();
        let next = (s + 1 < self.servers.len()).then(|| (s + 1).to_string());
        Ok(Page { sessions, next })
    }

    fn set_idle(&mut self, _id: &SessionId, _idle: Duration) -> Result<()> {
        // The TTL, set at write, is the session's remaining lifetime.
        Ok(())
    }

    /// `stats` `curr_items` summed over the servers: every item (other prefixes, lock and version
    /// items too), an upper bound of what the scan lists (which, with replicas, lists a session once
    /// per server holding it, as this counts it).
    fn estimate(&mut self) -> Result<Option<u64>> {
        let mut total = 0;
        for s in 0..self.servers.len() {
            let c = self.conn(s)?;
            let lines = c.lines_until_end("stats", 1000);
            self.round_trips += 1;
            let lines = lines.map_err(|e| self.fail(s, io_kind(&e), &e, format!("stats failed: {e}")))?;
            let n = lines.iter().find_map(|l| l.strip_prefix("STAT curr_items ").and_then(|v| v.trim().parse::<u64>().ok()));
            match n {
                Some(n) => total += n,
                None => return Ok(None),
            }
        }
        Ok(Some(total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_lines_are_sessions_under_the_prefix() {
        let l = |s: &str| listed(s, "memc.sess.key.", 1000);
        assert_eq!(l("key=memc.sess.key.abc exp=1600 la=1 cas=2 fetch=no cls=1 size=70").unwrap().left, Left::Ttl(Duration::from_secs(600)));
        assert_eq!(l("key=memc.sess.key.abc exp=-1 la=1").unwrap().left, Left::Unbounded);
        assert!(l("key=memc.sess.key.lock.abc exp=1600").is_none(), "a lock item");
        assert!(l("key=other.abc exp=1600").is_none(), "another prefix");
        assert!(l("key=memc.sess.key.abc exp=900").is_none(), "expired");
        assert_eq!(l("key=memc.sess.key.a%2Cb exp=1001").unwrap().id.as_str(), "a,b");
    }
}
