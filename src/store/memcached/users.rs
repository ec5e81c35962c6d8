//! The Memcached engine's per-user index (issue 13), in items beside php-memcached's (whose items
//! stay as it reads them):
//! - `<prefix>user.<id>` on the session's first data server: the session's user (hex) and, with
//!   track_client, its client. No TTL of its own: memcached's LRU evicts it once unused, a destroy or
//!   an end deletes it, and `bound` trusts it only while the session item is there (read in the same
//!   round trip).
//! - `<prefix>users.<SHA-256 of the user>` on the server ketama picks for that name: the user's index,
//!   one `<id> <bound at>` line per session, updated by compare-and-swap (`mg … c`, then `ms … C<cas>`,
//!   or an add `ME` when there is none; retried on a race). Bounded: at most `MAX_ENTRIES` lines, the
//!   oldest bindings dropped first (well under the 1 MiB item limit).
//! - `<prefix>sp_secret`: the handles' secret, added once (`ME`), then read.
//!
//! Consistency rule: a binding adds the index line before it writes `user.`; `list` trusts a line only
//! while its session item is there and its `user.` item names this user, and prunes the others (one
//! CAS).
//!
//! Rebuilt on loss, by every live session. An index item is made with a random nonzero *epoch* in
//! its client flags, kept by every CAS update; a session's `user.` item carries, in its own client
//! flags, the epoch of the index item its line was added to. Every read of a session fetches its
//! `user.` item in the same round trip (`saw_user`), and every write or touch of a bound session asks
//! for the index item's flags (`mg … f`, no value) in the same batch as the write (`index_probe`):
//! the epoch it finds is the one recorded, so the line is there. An index item evicted, flushed or
//! lost with a restarted server answers a miss, and one made again since (by another session's
//! repair or binding) another epoch: then, and only then, the session adds its line back by CAS and
//! records the new epoch (`repair_if_lost`, two round trips more). So the item is whole again once
//! each of its live sessions has had a request; a session with no request since the loss is not
//! listed until its next one (README, Memcached).

use std::time::Duration;

use super::proto::Reply;
use super::{too_old, MemcachedStore};
use crate::id::SessionId;
use crate::store::users::{decode_record as decode, encode_record as encode, hex, unhex, Client, Count, Listed, User, Users};
use crate::store::{unix_now, ErrorKind, Expiry, Result, Store, StoreError};

/// The most lines an index item keeps (~280 bytes each at most).
const MAX_ENTRIES: usize = 2000;
/// CAS retries of an index update racing other updates of the same user.
const CAS_TRIES: usize = 50;

/// A session's `user.` item as read: its value (`encode_record`) and the epoch of the index item its
/// line was added to (its client flags; 0: none recorded, from before epochs).
pub(super) type Record = (Vec<u8>, u32);

/// A probe of an index item: its server, the command, and the epoch the session recorded.
pub(super) type Probe = (usize, String, (User, Record));

/// A fresh epoch for a new index item: random, never 0.
fn fresh_epoch() -> u32 {
    (crate::lock::fresh_u64() as u32).max(1)
}


impl MemcachedStore {
    pub(super) fn user_key(&self, id: &SessionId) -> String {
        format!("{}user.{}", self.o.prefix, self.name(id))
    }

    /// The read of the session's `user.` item (value and client flags), sent with every read.
    pub(super) fn user_read(&self, id: &SessionId) -> String {
        format!("mg {} v f", self.user_key(id))
    }

    /// Keeps what a read found in the session's `user.` item (for `bound` and `index_probe`): the
    /// record only while the session item `data` (read in the same batch) is live.
    pub(super) fn saw_user(&mut self, id: &SessionId, user: Result<Reply>, data: &Result<Reply>, max_lifetime: Duration) {
        let live = matches!(data, Ok(Reply::Done(f) | Reply::Value(_, f)) if !too_old(f, max_lifetime));
        let rec = match user {
            Ok(Reply::Value(v, f)) if live => Some((v, f.client_flags.unwrap_or(0))),
            _ => None,
        };
        self.last_user = Some((id.clone(), rec));
    }

    /// For a write or touch of `id`: when the last read found it bound, the probe of its user's index
    /// item to send in the write's batch.
    pub(super) fn index_probe(&self, id: &SessionId) -> Option<Probe> {
        let (seen, Some(rec)) = self.last_user.as_ref()? else { return None };
        if seen != id {
            return None;
        }
        let (user, _) = decode(&rec.0)?;
        let (key, s) = self.index_of(&user).ok()?;
        Some((s, format!("mg {key} f"), (user, rec.clone())))
    }

    /// After a write or touch whose probe found the index item missing (lost) or of another epoch
    /// (made again since): adds the session's line back and records the item's epoch in its `user.`
    /// item. Nothing when the probe found the epoch recorded, or could not tell (a server error: the
    /// next request probes again). A failure leaves the session's write done; its next request
    /// tries again.
    pub(super) fn repair_if_lost(&mut self, id: &SessionId, probe: Probe, reply: Result<Reply>) {
        let (_, _, (user, (value, epoch))) = probe;
        match reply {
            Ok(Reply::Done(f)) if epoch != 0 && f.client_flags == Some(epoch) => return,
            Ok(Reply::Done(_) | Reply::Value(..) | Reply::Miss) => {}
            _ => return,
        }
        let sid = id.as_str().to_string();
        let now = unix_now();
        let Ok(epoch) = self.edit_index(&user, |lines| {
            if lines.iter().any(|(i, _)| i == &sid) {
                return false;
            }
            lines.push((sid.clone(), now));
            true
        }) else {
            return;
        };
        let s = self.data_targets(id)[0];
        let line = format!("ms {} {} T0 F{epoch}", self.user_key(id), value.len());
        if let Ok(Reply::Done(_)) = self.one(s, line, Some(&value)) {
            self.last_user = Some((id.clone(), Some((value, epoch))));
        }
    }

    /// The index item of `user` and its server.
    pub(super) fn index_of(&self, user: &User) -> Result<(String, usize)> {
        let key = format!("{}users.{}", self.o.prefix, user.digest());
        if key.len() > 250 {
            return Err(StoreError::new(ErrorKind::Backend, self.describe(), "the prefix is too long for the per-user index's keys"));
        }
        let s = self.targets(&key)[0];
        Ok((key, s))
    }

    /// Changes `user`'s index item by compare-and-swap: `f` gets its lines and answers whether it
    /// changed them. Returns the item's epoch (its client flags, kept by every update; a new item,
    /// or one from before epochs, gets a fresh one); 0 when there is no item and nothing to add.
    fn edit_index(&mut self, user: &User, mut f: impl FnMut(&mut Vec<(String, f64)>) -> bool) -> Result<u32> {
        let (key, s) = self.index_of(user)?;
        for _ in 0..CAS_TRIES {
            let (mut lines, cas, epoch) = match self.one(s, format!("mg {key} v c f"), None)? {
                Reply::Value(v, fl) => (parse_index(&v), fl.cas, fl.client_flags.unwrap_or(0)),
                Reply::Miss => (Vec::new(), None, 0),
                other => return Err(self.unexpected(s, "the user index: ", &other)),
            };
            let changed = f(&mut lines);
            if !changed && (epoch != 0 || cas.is_none()) {
                return Ok(epoch);
            }
            let epoch = if epoch == 0 { fresh_epoch() } else { epoch };
            if lines.len() > MAX_ENTRIES {
                lines.sort_by(|a, b| a.1.total_cmp(&b.1));
                lines.drain(..lines.len() - MAX_ENTRIES);
            }
            let body: String = lines.iter().map(|(id, t)| format!("{id} {t:.3}\n")).collect();
            let mode = cas.map_or_else(|| "ME".to_string(), |c| format!("C{c}"));
            match self.one(s, format!("ms {key} {} {mode} T0 F{epoch}", body.len()), Some(body.as_bytes()))? {
                Reply::Done(_) => return Ok(epoch),
                Reply::Exists | Reply::NotStored | Reply::NotFound => continue,
                other => return Err(self.unexpected(s, "the user index: ", &other)),
            }
        }
        Err(StoreError::new(ErrorKind::Conflict, self.label(s).to_string(), format!("the user index kept changing ({CAS_TRIES} tries)")))
    }

    /// The session's user record: as the last read of the session found it, else read with its data
    /// item's presence (one round trip).
    fn record(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<(User, Option<Client>)>> {
        if let Some((seen, rec)) = &self.last_user {
            if seen == id {
                return Ok(rec.as_ref().and_then(|(v, _)| decode(v)));
            }
        }
        let key = self.key(id)?;
        let s = self.data_targets(id)[0];
        let mut r = self.exec(&[(s, self.user_read(id), None), (s, format!("mg {key} t f"), None)]);
        let data = r.pop().expect("two replies");
        let user = r.pop().expect("two replies");
        if let Err(e) = data.as_ref().and(user.as_ref()) {
            return Err(e.clone());
        }
        self.saw_user(id, user, &data, exp.lifetime);
        self.record(id, exp)
    }
}

fn parse_index(v: &[u8]) -> Vec<(String, f64)> {
    String::from_utf8_lossy(v)
        .lines()
        .filter_map(|l| {
            let (id, t) = l.split_once(' ')?;
            Some((id.to_string(), t.parse().ok()?))
        })
        .collect()
}

impl Users for MemcachedStore {
    fn bound(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<User>> {
        Ok(self.record(id, exp)?.map(|(u, _)| u))
    }

    fn bind(&mut self, id: &SessionId, user: Option<&User>, client: Option<&Client>, exp: Expiry) -> Result<()> {
        let prev = self.record(id, exp)?.map(|(u, _)| u);
        let sid = id.as_str().to_string();
        if let Some(p) = prev.as_ref().filter(|p| Some(*p) != user) {
            self.edit_index(p, |lines| {
                let n = lines.len();
                lines.retain(|(i, _)| i != &sid);
                lines.len() != n
            })?;
        }
        let s = self.data_targets(id)[0];
        let ukey = self.user_key(id);
        let Some(user) = user else {
            self.one(s, format!("md {ukey}"), None)?;
            self.last_user = Some((id.clone(), None));
            return Ok(());
        };
        let now = unix_now();
        let epoch = self.edit_index(user, |lines| {
            if lines.iter().any(|(i, _)| i == &sid) {
                return false;
            }
            lines.push((sid.clone(), now));
            true
        })?;
        let v = encode(user, client);
        match self.one(s, format!("ms {ukey} {} T0 F{epoch}", v.len()), Some(&v))? {
            Reply::Done(_) => {
                self.last_user = Some((id.clone(), Some((v, epoch))));
                Ok(())
            }
            other => Err(self.unexpected(s, "the session's user: ", &other)),
        }
    }

    fn list(&mut self, user: &User, exp: Expiry) -> Result<Vec<Listed>> {
        let (key, s) = self.index_of(user)?;
        let lines = match self.one(s, format!("mg {key} v"), None)? {
            Reply::Value(v, _) => parse_index(&v),
            _ => Vec::new(),
        };
        let mut ids = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        for (raw, t) in lines {
            match SessionId::parse(raw.as_bytes()) {
                Ok(id) => ids.push((id, t)),
                Err(_) => gone.push(raw),
            }
        }
        // Each session's item (age) and user record, all in one batch.
        let mut reqs = Vec::with_capacity(ids.len() * 2);
        for (id, _) in &ids {
            let ds = self.data_targets(id)[0];
            reqs.push((ds, format!("mg {} t f", self.key(id)?), None));
            reqs.push((ds, format!("mg {} v", self.user_key(id)), None));
        }
        let replies = self.exec(&reqs);
        let mut it = replies.into_iter();
        let mut out = Vec::new();
        let now = unix_now();
        for (id, created) in ids {
            let (data, rec) = (it.next().expect("a reply each")?, it.next().expect("a reply each")?);
            let age = match &data {
                Reply::Done(f) | Reply::Value(_, f) if !too_old(f, exp.lifetime) => match (f.client_flags, f.ttl) {
                    (Some(w), Some(left)) if left >= 0 => Some((i64::from(w) - left).max(0)),
                    _ => Some(0),
                },
                _ => None,
            };
            match (age, rec) {
                (Some(age), Reply::Value(v, _)) if decode(&v).is_some_and(|(u, _)| &u == user) => {
                    let client = decode(&v).and_then(|(_, c)| c);
                    out.push(Listed { id, created, last_active: now - age as f64, client });
                }
                _ => gone.push(id.as_str().to_string()),
            }
        }
        if !gone.is_empty() {
            self.edit_index(user, |lines| {
                let n = lines.len();
                lines.retain(|(i, _)| !gone.contains(i));
                lines.len() != n
            })?;
        }
        out.sort_by(|a, b| a.created.total_cmp(&b.created));
        Ok(out)
    }

    /// Deletes the session's items (every copy), its lock and version items and its user record,
    /// then its index line: a holder's late write finds its lock gone and is refused.
    fn end(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        self.last_user = None;
        let rec = self.record(id, exp)?;
        self.last_user = None;
        let key = self.key(id)?;
        let targets = self.data_targets(id);
        let ls = self.lock_server(id);
        let mut reqs: Vec<(usize, String, Option<&[u8]>)> = targets.iter().map(|&s| (s, format!("md {key}"), None)).collect();
        reqs.push((ls, format!("md {}", self.lock_key(id)), None));
        reqs.push((ls, format!("md {}", self.version_key(id)), None));
        reqs.push((targets[0], format!("md {}", self.user_key(id)), None));
        let replies = self.exec(&reqs);
        let live = rec.is_some() || replies.iter().take(targets.len()).any(|r| matches!(r, Ok(Reply::Done(_))));
        if let Some((u, _)) = rec {
            let sid = id.as_str().to_string();
            self.edit_index(&u, |lines| {
                let n = lines.len();
                lines.retain(|(i, _)| i != &sid);
                lines.len() != n
            })?;
        }
        Ok(live)
    }

    /// Memcached cannot enumerate its items without a dump of every one.
    fn count_active(&mut self, _within: Duration) -> Result<Count> {
        Ok(Count::NeedsScan)
    }

    fn secret(&mut self) -> Result<[u8; 32]> {
        let key = format!("{}sp_secret", self.o.prefix);
        let s = self.targets(&key)[0];
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| StoreError::new(ErrorKind::Backend, self.describe(), e.to_string()))?;
        let fresh = hex(&fresh);
        let mut r = self.exec(&[(s, format!("ms {key} 64 ME T0"), Some(fresh.as_bytes())), (s, format!("mg {key} v"), None)]);
        match r.pop().expect("two replies")? {
            Reply::Value(v, _) => unhex(&v).and_then(|v| <[u8; 32]>::try_from(v).ok()),
            _ => None,
        }
        .ok_or_else(|| StoreError::new(ErrorKind::Corrupt, self.label(s).to_string(), "the handles' secret is unreadable"))
    }
}
