//! The Memcached engine's per-user index (issue 13), in items beside php-memcached's (whose items
//! stay as it reads them):
//! - `<prefix>user.<id>` on each of the session's data servers (its replicas too): the session's user
//!   (hex) and, with track_client, its client. No TTL of its own: memcached's LRU evicts it once
//!   unused, a destroy or an end deletes it, and `bound` trusts it only while the session item is
//!   there (read in the same round trip). Evicted while its (idle) session item lives, the session
//!   would be unknown to its user's list, and nothing else names its user; so a bound session's item
//!   carries the `BOUND` mark in its client flags (mod.rs), and a read that finds the mark without
//!   the `user.` item ends the session (`read_from`). A binding sets the mark after it wrote the
//!   `user.` item (`mark`), a write of a session read bound keeps it (`bound_here`), an unbinding
//!   clears it before it deletes the `user.` item, a touch adds it where it is missing (`unmarked`).
//! - `<prefix>users.<SHA-256 of the user>`, the user's index, on the server ketama picks for that name
//!   and, with `replicas`, on the next ones as the sessions' copies are placed: one `<id> <bound at>`
//!   line per session, and the line `complete` once a crawl made it whole (below). Every update reads
//!   every live copy in one batch, applies its change to their union and writes each copy back by
//!   compare-and-swap (`mg … c`, then `ms … C<cas>`, or an add `ME` where it is missing; retried on a
//!   race), so a copy that was lost is written again by the next update. Bounded: at most
//!   `MAX_ENTRIES` lines, the oldest bindings dropped first (well under the 1 MiB item limit).
//! - `<prefix>sp_secret`: the handles' secret, added once (`ME`), then read.
//!
//! Consistency rule: a binding adds the index line before it writes `user.`; `list` trusts a line only
//! while its session item is there and its `user.` item names this user, and prunes the others (one
//! CAS).
//!
//! Rebuilt on loss, twice over:
//! - By `list` (so `user_sessions`, `destroy_user_sessions`, `destroy_session_handle`), for idle
//!   sessions too. An index item is trusted to name every bound session only when it carries the line
//!   `complete`, which a crawl writes, or a check of the servers' markers (mark.rs): an item missing
//!   on every copy, or made again by a binding or a session's repair (an add where there was none: a
//!   new user's, or a lost item's), is whole as read when no server of its copies can have lost an
//!   item within the sessions' lifetime (then sealed `complete` by CAS, no crawl); else it is
//!   rebuilt first (`rebuild`): `lru_crawler metadump hash` on every server lists the
//!   `user.` keys under this prefix, their values are read (pipelined, `READ_BATCH` a round trip), the
//!   ids of those naming this user are added by CAS with `complete`, and the found `user.` items get
//!   the index's epoch (below) by CAS, so their next requests need no repair. One metadump per server
//!   plus the reads, once per index item's life; with more servers down than `replicas` the crawl is
//!   not whole and the item stays without `complete` (the next list crawls again).
//! - By every live session's next request. An index item is made with a random nonzero *epoch* in
//!   its client flags, kept by every CAS update; a session's `user.` item carries, in its own client
//!   flags, the epoch of the index item its line was added to. Every read of a session fetches its
//!   `user.` item in the same round trip (`saw_user`), and every write or touch of a bound session asks
//!   for the index item's flags (`mg … f`, no value) in the same batch as the write (`index_probe`):
//!   the epoch it finds is the one recorded, so the line is there. An index item evicted, flushed or
//!   lost with a restarted server answers a miss, and one made again since another epoch: then, and
//!   only then, the session adds its line back by CAS and records the new epoch (`repair_if_lost`,
//!   three round trips more).

use std::time::Duration;

use super::proto::Reply;
use super::{exptime, joined, marked, too_old, written_ttl, MemcachedStore, Req};
use crate::id::SessionId;
use crate::store::users::{decode_record as decode, encode_record as encode, hex, unhex, Client, Count, Listed, User, Users};
use crate::store::{unix_now, ErrorKind, Expiry, Result, Store, StoreError};

/// The most lines an index item keeps (~280 bytes each at most).
const MAX_ENTRIES: usize = 2000;
/// CAS retries of an index update racing other updates of the same user.
const CAS_TRIES: usize = 50;
/// The line of an index item made whole by a crawl (no space: a reader that predates it skips it).
const COMPLETE: &str = "complete";

/// A session's `user.` item as read: its value (`encode_record`) and the epoch of the index item its
/// line was added to (its client flags; 0: none recorded, from before epochs).
pub(super) type Record = (Vec<u8>, u32);

/// A probe of an index item: its server, the command, and the epoch the session recorded.
pub(super) type Probe = (usize, String, (User, Record));

/// A fresh epoch for a new index item: random, never 0.
fn fresh_epoch() -> u32 {
    (crate::lock::fresh_u64() as u32).max(1)
}

/// One copy of an index item as read: its index, CAS and epoch.
type IndexCopy = (Index, u64, u32);

/// A user's index as stored: `<id> <bound at>` lines, and whether a crawl made it whole.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Index {
    pub(super) lines: Vec<(String, f64)>,
    pub(super) complete: bool,
}

impl Index {
    pub(super) fn has(&self, id: &str) -> bool {
        self.lines.iter().any(|(i, _)| i == id)
    }

    /// The union of several copies: every line of any (the first copy's order, then the others'
    /// new ones), whole when any copy is (each binding reaches every live copy, so a copy that was
    /// whole lacks at most what another copy has).
    fn union<'a>(copies: impl IntoIterator<Item = &'a Index>) -> Index {
        let mut out = Index::default();
        for c in copies {
            out.complete |= c.complete;
            for (id, t) in &c.lines {
                if !out.has(id) {
                    out.lines.push((id.clone(), *t));
                }
            }
        }
        out
    }

    fn render(&self) -> String {
        let mut body = if self.complete { format!("{COMPLETE}\n") } else { String::new() };
        for (id, t) in &self.lines {
            body.push_str(&format!("{id} {t:.3}\n"));
        }
        body
    }
}

pub(super) fn parse_index(v: &[u8]) -> Index {
    let text = String::from_utf8_lossy(v);
    Index {
        complete: text.lines().any(|l| l == COMPLETE),
        lines: text
            .lines()
            .filter_map(|l| {
                let (id, t) = l.split_once(' ')?;
                Some((id.to_string(), t.parse().ok()?))
            })
            .collect(),
    }
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
        let unmarked = rec.is_some() && matches!(data, Ok(Reply::Done(f) | Reply::Value(_, f)) if !marked(f));
        self.unmarked = unmarked.then(|| id.clone());
        self.last_user = Some((id.clone(), rec));
    }

    /// Whether the last read of `id` found it bound (or a binding since made it so): its writes
    /// carry the `BOUND` mark.
    pub(super) fn bound_here(&self, id: &SessionId) -> bool {
        matches!(&self.last_user, Some((seen, Some(_))) if seen == id)
    }

    /// Sets (`on`) or clears the `BOUND` mark of the session item's copies, keeping each value: a
    /// read of each copy's value and CAS, then a compare-and-swap of the same value with the new
    /// flags (and a fresh TTL: it was just written or touched); read and set again when a write
    /// came in between. A copy that is missing is left so. Two round trips (one when nothing needs
    /// it).
    pub(super) fn mark(&mut self, id: &SessionId, exp: Expiry, on: bool) -> Result<()> {
        self.mark_after(id, exp, on, None)
    }

    /// The read of each copy of the session item that `mark` makes: to send in a batch of one's own.
    pub(super) fn mark_reads(&self, id: &SessionId) -> Result<Vec<Req<'static>>> {
        let key = self.key(id)?;
        Ok(self.data_targets(id).into_iter().map(|s| (s, format!("mg {key} v c f"), None)).collect())
    }

    /// `mark`, its first reads (`mark_reads`) already answered in `read`.
    fn mark_after(&mut self, id: &SessionId, exp: Expiry, on: bool, read: Option<Vec<Result<Reply>>>) -> Result<()> {
        let key = self.key(id)?;
        let targets = self.data_targets(id);
        let (ttl, flags) = exptime(exp.lifetime, on);
        let mut read = read;
        for _ in 0..CAS_TRIES {
            let replies = match read.take() {
                Some(r) => r,
                None => {
                    let reads = self.mark_reads(id)?;
                    self.exec(&reads)
                }
            };
            let mut copies = Vec::new();
            for (&s, r) in targets.iter().zip(replies) {
                match r {
                    Ok(Reply::Value(v, f)) if marked(&f) != on => copies.push((s, v, f.cas.unwrap_or(0))),
                    Ok(Reply::Value(..) | Reply::Miss) => {}
                    Ok(other) => return Err(self.unexpected(s, "", &other)),
                    Err(e) => return Err(e),
                }
            }
            if copies.is_empty() {
                break;
            }
            let sets: Vec<Req> =
                copies.iter().map(|(s, v, cas)| (*s, format!("ms {key} {} T{ttl} F{flags} C{cas}", v.len()), Some(v.as_slice()))).collect();
            let mut raced = false;
            for ((s, _, _), r) in sets.iter().zip(self.exec(&sets)) {
                match r {
                    Ok(Reply::Done(_)) => {}
                    Ok(Reply::Exists | Reply::NotFound | Reply::NotStored) => raced = true,
                    Ok(other) => return Err(self.unexpected(*s, "", &other)),
                    Err(e) => return Err(e),
                }
            }
            if !raced {
                break;
            }
        }
        if self.unmarked.as_ref() == Some(id) {
            self.unmarked = None;
        }
        Ok(())
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
        let now = crate::store::users::record_bound_at(&value).unwrap_or_else(unix_now);
        let Ok(epoch) = self.edit_index(&user, |lines| {
            if lines.iter().any(|(i, _)| i == &sid) {
                return false;
            }
            lines.push((sid.clone(), now));
            true
        }) else {
            return;
        };
        let ukey = self.user_key(id);
        let line = format!("ms {ukey} {} T0 F{epoch}", value.len());
        let reqs: Vec<Req> = self.data_targets(id).into_iter().map(|s| (s, line.clone(), Some(value.as_slice()))).collect();
        if self.exec(&reqs).iter().any(|r| matches!(r, Ok(Reply::Done(_)))) {
            self.last_user = Some((id.clone(), Some((value, epoch))));
        }
    }

    /// The index item of `user` and the servers holding its copies (the first live one first, which
    /// `index_probe` asks).
    pub(super) fn index_copies(&self, user: &User) -> Result<(String, Vec<usize>)> {
        let key = format!("{}users.{}", self.o.prefix, user.digest());
        if key.len() > 250 {
            return Err(StoreError::new(ErrorKind::Backend, self.describe(), "the prefix is too long for the per-user index's keys"));
        }
        let copies = self.targets(&key);
        Ok((key, copies))
    }

    /// The index item of `user` and its first server.
    pub(super) fn index_of(&self, user: &User) -> Result<(String, usize)> {
        let (key, copies) = self.index_copies(user)?;
        Ok((key, copies[0]))
    }

    /// Changes `user`'s index lines by compare-and-swap (`edit_index_with`).
    fn edit_index(&mut self, user: &User, mut f: impl FnMut(&mut Vec<(String, f64)>) -> bool) -> Result<u32> {
        self.edit_index_with(user, |ix| f(&mut ix.lines))
    }

    /// Changes `user`'s index item on every live copy: reads them all (one batch), gives `f` their
    /// union (it answers whether it changed it), and writes each copy that differs from the result by
    /// compare-and-swap, or an add where it is missing (one batch); all over again when another update
    /// won a race. Returns the item's epoch (client flags, kept by every update: the first copy's
    /// that has one, else a fresh one); 0 when there is no item and nothing to add. An error when no
    /// copy could be read or written.
    pub(super) fn edit_index_with(&mut self, user: &User, mut f: impl FnMut(&mut Index) -> bool) -> Result<u32> {
        let (key, copies) = self.index_copies(user)?;
        for _ in 0..CAS_TRIES {
            let reads: Vec<Req> = copies.iter().map(|&s| (s, format!("mg {key} v c f"), None)).collect();
            let replies = self.exec(&reads);
            // Each readable copy: (server, Some((index, cas, epoch)) or None where it is missing).
            let mut read: Vec<(usize, Option<IndexCopy>)> = Vec::new();
            let mut errors = Vec::new();
            for (&s, r) in copies.iter().zip(replies) {
                match r {
                    Ok(Reply::Value(v, fl)) => read.push((s, Some((parse_index(&v), fl.cas.unwrap_or(0), fl.client_flags.unwrap_or(0))))),
                    Ok(Reply::Miss) => read.push((s, None)),
                    Ok(other) => errors.push(self.unexpected(s, "the user index: ", &other)),
                    Err(e) => errors.push(e),
                }
            }
            if read.is_empty() {
                return Err(joined(errors));
            }
            let mut ix = Index::union(read.iter().filter_map(|(_, c)| c.as_ref().map(|c| &c.0)));
            let changed = f(&mut ix);
            if !changed && read.iter().all(|(_, c)| c.is_none()) {
                return Ok(0);
            }
            let epoch = read.iter().find_map(|(_, c)| c.as_ref().map(|c| c.2).filter(|&e| e != 0)).unwrap_or_else(fresh_epoch);
            if ix.lines.len() > MAX_ENTRIES {
                ix.lines.sort_by(|a, b| a.1.total_cmp(&b.1));
                ix.lines.drain(..ix.lines.len() - MAX_ENTRIES);
            }
            let body = ix.render();
            let writes: Vec<Req> = read
                .iter()
                .filter(|(_, c)| !matches!(c, Some((old, _, e)) if *e == epoch && old.render() == body))
                .map(|(s, c)| {
                    let mode = c.as_ref().map_or_else(|| "ME".to_string(), |c| format!("C{}", c.1));
                    (*s, format!("ms {key} {} {mode} T0 F{epoch}", body.len()), Some(body.as_bytes()))
                })
                .collect();
            if writes.is_empty() {
                return Ok(epoch);
            }
            let replies = self.exec(&writes);
            let (mut raced, mut stored) = (false, writes.len() < read.len());
            let mut errors = Vec::new();
            for ((s, _, _), r) in writes.iter().zip(replies) {
                match r {
                    Ok(Reply::Done(_)) => stored = true,
                    Ok(Reply::Exists | Reply::NotStored | Reply::NotFound) => raced = true,
                    Ok(other) => return Err(self.unexpected(*s, "the user index: ", &other)),
                    Err(e) => errors.push(e),
                }
            }
            if raced {
                continue;
            }
            if !stored {
                return Err(joined(errors));
            }
            return Ok(epoch);
        }
        let label = self.label(copies[0]).to_string();
        Err(StoreError::new(ErrorKind::Conflict, label, format!("the user index kept changing ({CAS_TRIES} tries)")))
    }

    /// `user`'s index as its live copies hold it (their union; one round trip), and each copy found
    /// with its server, CAS and epoch. An error when no copy answered.
    fn read_index(&mut self, user: &User) -> Result<(Index, Vec<(usize, IndexCopy)>)> {
        let (key, copies) = self.index_copies(user)?;
        let reqs: Vec<Req> = copies.iter().map(|&s| (s, format!("mg {key} v c f"), None)).collect();
        let replies = self.exec(&reqs);
        let mut got = Vec::new();
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for (&s, r) in copies.iter().zip(replies) {
            match r {
                Ok(Reply::Value(v, f)) => {
                    let ix = parse_index(&v);
                    got.push(ix.clone());
                    found.push((s, (ix, f.cas.unwrap_or(0), f.client_flags.unwrap_or(0))));
                }
                Ok(Reply::Miss) => got.push(Index::default()),
                Ok(other) => errors.push(self.unexpected(s, "the user index: ", &other)),
                Err(e) => errors.push(e),
            }
        }
        if got.is_empty() {
            return Err(joined(errors));
        }
        Ok((Index::union(&got), found))
    }

    /// Writes `complete` into each copy of `user`'s index item found by `read_index`, by CAS on
    /// what was read (a copy changed since is left as it is: the next list checks again). For an
    /// item that the markers proved whole (mark.rs). One round trip, its answers not needed.
    fn seal(&mut self, user: &User, found: &[(usize, IndexCopy)]) -> Result<()> {
        let (key, _) = self.index_copies(user)?;
        let bodies: Vec<(usize, String, u64, u32)> = found
            .iter()
            .filter(|(_, (ix, _, _))| !ix.complete)
            .map(|(s, (ix, cas, epoch))| (*s, Index { complete: true, ..ix.clone() }.render(), *cas, *epoch))
            .collect();
        let reqs: Vec<Req> =
            bodies.iter().map(|(s, b, cas, epoch)| (*s, format!("ms {key} {} C{cas} T0 F{epoch}", b.len()), Some(b.as_bytes()))).collect();
        let _ = self.exec(&reqs);
        Ok(())
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

    /// Sends `reqs` (one command on each copy of an item) and answers Ok when at least one copy
    /// took it (`HD`, or `NF` for a delete of what was not there), else the errors.
    fn on_copies(&mut self, reqs: &[Req], what: &str) -> Result<()> {
        let replies = self.exec(reqs);
        self.user_written(reqs, replies, what)
    }

    /// `on_copies`, its `reqs` already answered in `replies`.
    fn user_written(&self, reqs: &[Req], replies: Vec<Result<Reply>>, what: &str) -> Result<()> {
        let mut errors = Vec::new();
        let mut done = false;
        for ((s, _, _), r) in reqs.iter().zip(replies) {
            match r {
                Ok(Reply::Done(_) | Reply::NotFound) => done = true,
                Ok(other) => errors.push(self.unexpected(*s, what, &other)),
                Err(e) => errors.push(e),
            }
        }
        if done || errors.is_empty() {
            Ok(())
        } else {
            Err(joined(errors))
        }
    }

    /// The live sessions among `ids` with their `user.` records: each session's item (its age) and
    /// record, all in one batch, from each one's first live copy; made once more when a server
    /// failed in it and replicas may answer instead.
    fn verify(&mut self, ids: &[(SessionId, f64)]) -> Result<Vec<(Result<Reply>, Result<Reply>)>> {
        let before = self.downs;
        let mut retried = false;
        loop {
            let mut reqs = Vec::with_capacity(ids.len() * 2);
            for (id, _) in ids {
                let ds = self.data_targets(id)[0];
                reqs.push((ds, format!("mg {} t f", self.key(id)?), None));
                reqs.push((ds, format!("mg {} v", self.user_key(id)), None));
            }
            let replies = self.exec(&reqs);
            if !retried && self.o.replicas > 0 && self.downs > before && replies.iter().any(Result::is_err) {
                retried = true;
                continue;
            }
            let mut it = replies.into_iter();
            return Ok(ids.iter().map(|_| (it.next().expect("a reply each"), it.next().expect("a reply each"))).collect());
        }
    }
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
        let targets = self.data_targets(id);
        let ukey = self.user_key(id);
        let Some(user) = user else {
            // The mark goes first: a session item marked without its `user.` item reads as ended.
            if prev.is_some() {
                self.mark(id, exp, false)?;
            }
            let reqs: Vec<Req> = targets.iter().map(|&s| (s, format!("md {ukey}"), None)).collect();
            self.on_copies(&reqs, "the session's user: ")?;
            self.last_user = Some((id.clone(), None));
            return Ok(());
        };
        // Marked already: bound when read, and this request's write kept the mark.
        let marked_already = prev.is_some() && self.unmarked.as_ref() != Some(id);
        let now = unix_now();
        let epoch = self.edit_index(user, |lines| {
            if lines.iter().any(|(i, _)| i == &sid) {
                return false;
            }
            lines.push((sid.clone(), now));
            true
        })?;
        // When it was bound, for a rebuilt index entry's "created" (rebuild.rs).
        let mut v = crate::store::users::with_bound_at(encode(user, client), now);
        if self.name(id) != id.as_str() {
            // Its key hashes the id: the value names it, for a crawl (rebuild.rs).
            v = crate::store::users::with_id(v, id);
        }
        let line = format!("ms {ukey} {} T0 F{epoch}", v.len());
        let reqs: Vec<Req> = targets.iter().map(|&s| (s, line.clone(), Some(v.as_slice()))).collect();
        // Then the mark, now that the `user.` item it asks for is there: its reads ride in the same
        // batch, behind the `user.` item's write on each connection.
        let mut batch = reqs.clone();
        if !marked_already {
            batch.extend(self.mark_reads(id)?);
        }
        let mut replies = self.exec(&batch);
        let read = replies.split_off(reqs.len());
        self.user_written(&reqs, replies, "the session's user: ")?;
        self.last_user = Some((id.clone(), Some((v.clone(), epoch))));
        if !marked_already {
            self.mark_after(id, exp, true, Some(read))?;
        }
        Ok(())
    }

    fn list(&mut self, user: &User, exp: Expiry) -> Result<Vec<Listed>> {
        let (mut ix, found) = self.read_index(user)?;
        if !ix.complete {
            // Missing, or made again by a binding or a repair: a new user's, or one lost with idle
            // sessions bound to this user without a line. When no server of its copies can have
            // lost an item within the sessions' lifetime, it is whole as read (mark.rs); else a
            // crawl finds them (rebuild.rs).
            let (key, _) = self.index_copies(user)?;
            let all = self.all_copies(&key);
            if self.no_loss_within(&all, exp.lifetime) {
                self.seal(user, &found)?;
                ix.complete = true;
            } else {
                ix = self.rebuild(user)?;
            }
        }
        let mut ids = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        for (raw, t) in ix.lines {
            match SessionId::parse(raw.as_bytes()) {
                Ok(id) => ids.push((id, t)),
                Err(_) => gone.push(raw),
            }
        }
        let replies = self.verify(&ids)?;
        let mut out = Vec::new();
        let now = unix_now();
        // Sessions whose binding was lost (marked, no `user.` item): removed now, as their next read
        // would (`read_from`), so that no reader which ignores the mark (php-memcached) serves them.
        let mut lost: Vec<Req> = Vec::new();
        for ((id, created), (data, rec)) in ids.into_iter().zip(replies) {
            let (data, rec) = (data?, rec?);
            if matches!((&data, &rec), (Reply::Done(f) | Reply::Value(_, f), Reply::Miss) if marked(f)) {
                let key = self.key(&id)?;
                lost.extend(self.data_targets(&id).into_iter().map(|s| (s, format!("md {key}"), None)));
            }
            let age = match &data {
                Reply::Done(f) | Reply::Value(_, f) if !too_old(f, exp.lifetime) => match (written_ttl(f), f.ttl) {
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
        let _ = self.exec(&lost);
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
        let rec = self.retrying(|s| s.record(id, exp))?;
        self.last_user = None;
        let key = self.key(id)?;
        let targets = self.data_targets(id);
        let ls = self.lock_server(id);
        let mut reqs: Vec<Req> = targets.iter().map(|&s| (s, format!("md {key}"), None)).collect();
        reqs.push((ls, format!("md {}", self.lock_key(id)), None));
        reqs.push((ls, format!("md {}", self.version_key(id)), None));
        let ukey = self.user_key(id);
        reqs.extend(targets.iter().map(|&s| (s, format!("md {ukey}"), None)));
        let replies = self.exec(&reqs);
        let live = rec.is_some() || replies.iter().take(targets.len()).any(|r| matches!(r, Ok(Reply::Done(_))));
        self.note_copies_left(id, &super::reached(&targets, &replies));
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

    /// Kept on every copy its key's replicas have (a dead server does not change the handles): read
    /// from all of them in one round trip, the first copy's value wins and is added where it is
    /// missing; when none has one, a fresh one is added (`ME`, so racing creators agree) and read.
    fn secret(&mut self) -> Result<[u8; 32]> {
        let key = format!("{}sp_secret", self.o.prefix);
        let copies = self.targets(&key);
        let mut errors = Vec::new();
        for _ in 0..2 {
            let reads: Vec<Req> = copies.iter().map(|&s| (s, format!("mg {key} v"), None)).collect();
            let replies = self.exec(&reads);
            let (mut value, mut missing) = (None, Vec::new());
            errors.clear();
            for (&s, r) in copies.iter().zip(replies) {
                match r {
                    Ok(Reply::Value(v, _)) => {
                        value.get_or_insert((s, v));
                    }
                    Ok(Reply::Miss) => missing.push(s),
                    Ok(other) => errors.push(self.unexpected(s, "the handles' secret: ", &other)),
                    Err(e) => errors.push(e),
                }
            }
            let add = |v: &[u8], missing: &[usize]| -> Vec<(usize, String, Vec<u8>)> {
                missing.iter().map(|&s| (s, format!("ms {key} {} ME T0", v.len()), v.to_vec())).collect()
            };
            match value {
                Some((s, v)) => {
                    let adds = add(&v, &missing);
                    let reqs: Vec<Req> = adds.iter().map(|(s, l, v)| (*s, l.clone(), Some(v.as_slice()))).collect();
                    // Where it was missing (a server that restarted): refused means another request added it.
                    let _ = self.exec(&reqs);
                    return unhex(&v)
                        .and_then(|v| <[u8; 32]>::try_from(v).ok())
                        .ok_or_else(|| StoreError::new(ErrorKind::Corrupt, self.label(s).to_string(), "the handles' secret is unreadable"));
                }
                None if missing.is_empty() => break,
                None => {
                    let mut fresh = [0u8; 32];
                    getrandom::fill(&mut fresh).map_err(|e| StoreError::new(ErrorKind::Backend, self.describe(), e.to_string()))?;
                    let adds = add(hex(&fresh).as_bytes(), &missing);
                    let reqs: Vec<Req> = adds.iter().map(|(s, l, v)| (*s, l.clone(), Some(v.as_slice()))).collect();
                    self.exec(&reqs);
                }
            }
        }
        if errors.is_empty() {
            errors.push(StoreError::new(ErrorKind::Backend, self.describe(), "the handles' secret could not be stored"));
        }
        Err(joined(errors))
    }
}
