//! The full rebuild of a user's index item (users.rs, "Rebuilt on loss"): run by `list` when the
//! item is not known whole, so that sessions idle since a loss are listed (and ended by
//! `destroy_user_sessions`) without waiting for their next request.
//!
//! The sessions' `user.` items carry their user in their value only (`u:<hex user>…`, beside
//! php-memcached's items, never inside them), and memcached's dump gives keys, not values. So: one
//! `lru_crawler metadump hash` per server (the hash table walk, which visits every item once even
//! while the LRU reorders; `BUSY` while another crawl runs is waited out), keeping the `user.` keys
//! under this store's prefix whose name is a session id, then their values read in batches of
//! `READ_BATCH` (one round trip each, every server's share pipelined), keeping those that name the
//! user. Cost: one metadump per server (~100 bytes a line for every item the server holds, whatever
//! its prefix) plus one read round trip per `READ_BATCH` bound sessions of this prefix, and only when
//! the item is missing or was made again without a crawl; then the item carries `complete` and lists
//! cost what they did. A `user.` item whose session id was too long for a key (`SessionId::name_within`
//! hashed it: over ~230 bytes with the default prefix; PHP makes ids of up to 256 characters) names
//! the id in its value (`store::users::with_id`), and is found by it.

use std::collections::HashSet;
use std::time::Duration;

use super::proto::{is_busy, Reply};
use super::users::Index;
use super::{io_kind, url_decode, MemcachedStore, Req};
use crate::id::SessionId;
use crate::store::users::{decode_record as decode, record_id, User};
use crate::store::{unix_now, ErrorKind, Result};

/// The most lines one dump may answer (a bound on the crawl, whatever the server holds).
const MAX_DUMP_LINES: usize = 5_000_000;
/// `user.` items read per round trip.
const READ_BATCH: usize = 500;
/// A crawler busy with another dump (gc, a scan, another rebuild) is asked again this many times,
/// `BUSY_WAIT` apart (2 s in all: a dump of a million items takes well under a second).
const BUSY_TRIES: usize = 100;
const BUSY_WAIT: Duration = Duration::from_millis(20);

/// A `user.` item of the user being rebuilt, as the crawl read it.
struct Found {
    id: SessionId,
    server: usize,
    key: String,
    value: Vec<u8>,
    cas: u64,
    epoch: u32,
}

impl MemcachedStore {
    /// Rebuilds `user`'s index from the sessions' `user.` items (module documentation) and answers
    /// it as written. The found ids are added by compare-and-swap to every live copy, with the line
    /// `complete` when every session had a copy on a server that answered the crawl (at most
    /// `replicas` servers failed); then each found `user.` item records the item's epoch, by CAS on
    /// its own value (a rebinding meanwhile stays), so its session's next request needs no repair.
    /// A line found here for a session ended meanwhile is pruned by the `list` that called this.
    pub(super) fn rebuild(&mut self, user: &User) -> Result<Index> {
        let (found, whole) = self.crawl_bindings(user)?;
        let now = unix_now();
        let mut out = Index::default();
        let epoch = self.edit_index_with(user, |ix| {
            let mut changed = false;
            for f in &found {
                if !ix.has(f.id.as_str()) {
                    // Its binding's time, as its record gives it (a build before records did: now).
                    ix.lines.push((f.id.as_str().to_string(), crate::store::users::record_bound_at(&f.value).unwrap_or(now)));
                    changed = true;
                }
            }
            if whole && !ix.complete {
                ix.complete = true;
                changed = true;
            }
            out = ix.clone();
            changed
        })?;
        let stale: Vec<&Found> = found.iter().filter(|f| epoch != 0 && f.epoch != epoch).collect();
        for chunk in stale.chunks(READ_BATCH) {
            let reqs: Vec<Req> = chunk
                .iter()
                .map(|f| (f.server, format!("ms {} {} T0 F{epoch} C{}", f.key, f.value.len(), f.cas), Some(f.value.as_slice())))
                .collect();
            // Refused (changed or gone since the crawl) or failed: its next request repairs it.
            let _ = self.exec(&reqs);
        }
        Ok(out)
    }

    /// Every `user.` item under this prefix that names `user`, on every server; and whether the
    /// crawl is whole (no more servers failed than `replicas`, so every session had a copy seen).
    fn crawl_bindings(&mut self, user: &User) -> Result<(Vec<Found>, bool)> {
        let prefix = format!("{}user.", self.o.prefix);
        let mut keys: Vec<(usize, String, Option<SessionId>)> = Vec::new();
        let mut failed: HashSet<usize> = HashSet::new();
        let mut errors = Vec::new();
        for s in 0..self.servers.len() {
            match self.dump_user_keys(s, &prefix) {
                Ok(k) => keys.extend(k.into_iter().map(|(key, id)| (s, key, id))),
                Err(e) => {
                    failed.insert(s);
                    errors.push(e);
                }
            }
        }
        if failed.len() == self.servers.len() {
            return Err(super::joined(errors));
        }
        let mut found = Vec::new();
        for chunk in keys.chunks(READ_BATCH) {
            let reqs: Vec<Req> = chunk.iter().map(|(s, k, _)| (*s, format!("mg {k} v f c"), None)).collect();
            for ((s, key, id), r) in chunk.iter().zip(self.exec(&reqs)) {
                // A hashed name: the id is in the value (`with_id`), and must hash to that name.
                let id = match (id, &r) {
                    (Some(id), _) => Some(id.clone()),
                    (None, Ok(Reply::Value(value, _))) => record_id(value).filter(|i| key.strip_prefix(&prefix) == Some(&*self.name(i))),
                    (None, _) => None,
                };
                match r {
                    Ok(Reply::Value(value, f)) if id.is_some() && decode(&value).is_some_and(|(u, _)| &u == user) => found.push(Found {
                        id: id.expect("checked"),
                        server: *s,
                        key: key.clone(),
                        value,
                        cas: f.cas.unwrap_or(0),
                        epoch: f.client_flags.unwrap_or(0),
                    }),
                    // Another user's, or gone since the dump.
                    Ok(_) => {}
                    Err(_) => {
                        failed.insert(*s);
                    }
                }
            }
        }
        Ok((found, failed.len() <= self.o.replicas as usize))
    }

    /// The `user.` keys under `prefix` on server `s` whose name is a session id (with it) or a
    /// hashed one (`SessionId::name_within`: the id is in the value), from its LRU crawler's dump.
    fn dump_user_keys(&mut self, s: usize, prefix: &str) -> Result<Vec<(String, Option<SessionId>)>> {
        let lines = self.metadump(s, "lru_crawler metadump hash", MAX_DUMP_LINES)?;
        let mut out = Vec::new();
        for l in lines {
            let Some(k) = l.strip_prefix("key=").and_then(|r| r.split(' ').next()) else { continue };
            let key = url_decode(k);
            let Some(name) = key.strip_prefix(prefix) else { continue };
            if let Ok(id) = SessionId::parse(name.as_bytes()) {
                out.push((key, Some(id)));
            } else if name.starts_with(crate::id::HASHED_TAG) {
                out.push((key, None));
            }
        }
        Ok(out)
    }

    /// A dump of server `s`'s LRU crawler (`cmd`: `lru_crawler metadump all|hash`), its lines (at
    /// most `max_lines`). One crawl runs at a time on a server (gc, a scan, a rebuild, from any
    /// client): one that answers `BUSY` is asked again, `BUSY_WAIT` apart, and only a failure to
    /// answer marks it down.
    pub(super) fn metadump(&mut self, s: usize, cmd: &str, max_lines: usize) -> Result<Vec<String>> {
        let mut tries = 0;
        loop {
            let c = self.conn(s)?;
            let r = c.lines_until_end(cmd, max_lines);
            self.round_trips += 1;
            #[cfg(test)]
            {
                self.dumps += 1;
            }
            match r {
                Ok(lines) => return Ok(lines),
                Err(e) if is_busy(&e) && tries < BUSY_TRIES => {
                    tries += 1;
                    std::thread::sleep(BUSY_WAIT);
                }
                Err(e) if is_busy(&e) => {
                    // Answered, just busy: the server is not down.
                    let waited = BUSY_TRIES as u128 * BUSY_WAIT.as_millis();
                    return Err(self.error(s, ErrorKind::Unavailable, &format!("{e} (still busy after {waited} ms)")));
                }
                Err(e) => return Err(self.fail(s, io_kind(&e), &e, e.to_string())),
            }
        }
    }
}
