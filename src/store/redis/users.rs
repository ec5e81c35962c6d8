//! The Redis engine's per-user index (issue 13), beside phpredis' keys (which stay as phpredis
//! reads them):
//! - `<key>_USER` (`{<key>}_USER` on a Cluster: the session's slot): the session's user (hex) and,
//!   with track_client, its client. Every read of the session fetches it in the same round trip
//!   (`GETEX … PX`, pipelined with the read; on a Cluster inside the locking script) and keeps it
//!   alive for the session's lifetime plus `USER_KEY_MARGIN`, so it lives as long as its session is
//!   used and `bound` answers from that read without another round trip; a destroy deletes it. A
//!   Cluster's unlocked read does not name it (a key that does not exist yet would turn the read into
//!   a TRYAGAIN while its slot migrates): there `bound` asks (`GETEX`) when the session layer needs
//!   it (a set_user, user_key, a regeneration), which also keeps it alive.
//! - `<prefix>USERS_<SHA-256 of the user>`: a sorted set of the user's session ids, scored by when
//!   they were bound. On a Cluster it lives in another slot than the sessions: it is the one place
//!   that may be stale. Rule: a binding adds the set's entry before it writes `_USER`; `list` trusts an
//!   entry only when the session is alive and its `_USER` names this user, and prunes the others;
//!   ending a session deletes its keys first, then its entry. So a stale entry is never listed nor
//!   ended twice, and a live bound session is always in its set. A set keeps at most `MAX_ENTRIES`
//!   (the oldest bindings go first).
//! - `<prefix>SP_SECRET`: the handles' secret (`SET NX`, then read: one value for every client).
//!
//! Standalone and Sentinel send each step's commands in one pipeline (a bind is one round trip; a
//! rebind two: the old user's set may be on another server of a phpredis server list); a Cluster
//! sends one command at a time.

use std::time::Duration;

use redis::Value;

use super::{dsn, ms, Mode, RedisStore, Retry, WAKE_LIFE_MS};
use crate::id::SessionId;
use crate::store::users::{decode_record as decode, encode_record as encode, hex, unhex, Client, Count, Listed, User, Users};
use crate::store::{unix_now, Caution, ErrorKind, Expiry, Result};

/// How much longer than its session the `_USER` key lives after a read: covers the request between
/// the read and the write that sets the session's own TTL.
const USER_KEY_MARGIN: Duration = Duration::from_secs(300);

/// The most entries a user's set keeps.
const MAX_ENTRIES: isize = 10_000;

/// How long a server's answer to whether it evicts keys is trusted on one connection: it changes only
/// by a `CONFIG SET` or a restart.
const EVICTION_RECHECK: Duration = Duration::from_secs(60);

/// What `INFO memory` says of eviction: the policy and the limit when the server evicts keys once it
/// is full (a `maxmemory` above 0 and a policy other than `noeviction`), else None.
pub(super) fn evicting(info: &str) -> Option<(String, u64)> {
    let field = |name: &str| info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')).map(str::trim);
    let maxmemory: u64 = field("maxmemory")?.parse().ok()?;
    let policy = field("maxmemory_policy")?;
    (maxmemory > 0 && policy != "noeviction").then(|| (policy.to_string(), maxmemory))
}

/// The `_USER` key's life after a read, in ms (as Redis takes it).
pub(super) fn user_key_ms(exp: Expiry) -> Vec<u8> {
    ms(exp.lifetime + USER_KEY_MARGIN)
}


/// A text answer (INFO's is a bulk string, or a verbatim one over RESP3).
fn text(v: Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::VerbatimString { text, .. } | Value::SimpleString(text) => Some(text),
        _ => None,
    }
}

fn bulk(v: Option<Value>) -> Option<Vec<u8>> {
    match v {
        Some(Value::BulkString(b)) => Some(b),
        _ => None,
    }
}

impl RedisStore {
    /// Whether the last read of `id`'s user key (or this store's unbinding of it) found none: a
    /// write under the lock taken with that read then has no user key to keep alive. Only the lock's
    /// holder binds the session, and a binding sets the key's life itself.
    pub(super) fn known_unbound(&self, id: &SessionId) -> bool {
        matches!(&self.last_user, Some((seen, None)) if seen == id)
    }

    /// What a read found in the session's user key (kept for `bound`).
    pub(super) fn saw_user(&mut self, id: &SessionId, v: Option<Value>) {
        self.last_user = Some((id.clone(), bulk(v)));
    }

    /// The server of a user's set (a phpredis server list spreads keys over servers).
    fn node_of_user(&self, user: &User) -> usize {
        match self.opts.mode {
            Mode::Standalone => dsn::pick_node(&self.opts.nodes, user.digest().as_bytes()),
            Mode::Cluster | Mode::Sentinel(_) => 0,
        }
    }

    fn set_key(&self, idx: usize, user: &User) -> Vec<u8> {
        format!("{}USERS_{}", self.conns[idx].node.prefix, user.digest()).into_bytes()
    }

    /// `many`, with an `INFO memory` at the end of the pipeline when server `idx` was not asked on
    /// this connection within EVICTION_RECHECK: a server that evicts keys gets a warning
    /// (`Caution::MayEvictBindings`), as a binding there can vanish while its session lives. No
    /// round trip of its own. A server that refuses INFO (an ACL) fails the pipeline, which is then
    /// sent again without it (its commands are idempotent), and is not asked again for a while. On
    /// a Cluster, whose commands go one at a time, the `INFO memory` follows them on its own: the
    /// cluster client sends it to every primary (redis-rs routes INFO to all of them) and answers
    /// each one's, so each evicting node is named; a failure of that check is no failure of the call.
    fn probing(&mut self, idx: usize, cmds: &[&[&[u8]]]) -> Result<Vec<Value>> {
        let due = self.conns[idx].evict_asked.is_none_or(|t| t.elapsed() >= EVICTION_RECHECK);
        if !due {
            return self.many(idx, Retry::Safe, cmds);
        }
        if self.opts.mode == Mode::Cluster {
            let vals = self.many(idx, Retry::Safe, cmds)?;
            self.conns[idx].evict_asked = Some(std::time::Instant::now());
            if let Ok(Some(Value::Map(nodes))) = self.exec_many(idx, Retry::Safe, &[&[b"INFO", b"memory"]]).map(|v| v.into_iter().next()) {
                for (node, info) in nodes {
                    let (Some(node), Some(info)) = (text(node), text(info)) else { continue };
                    self.caution_if_evicting(format!("{node} (a node of {})", self.opts.describe()), &info);
                }
            }
            return Ok(vals);
        }
        self.conns[idx].evict_asked = Some(std::time::Instant::now());
        let mut with: Vec<&[&[u8]]> = cmds.to_vec();
        with.push(&[b"INFO", b"memory"]);
        let mut vals = match self.many(idx, Retry::Safe, &with) {
            Ok(v) => v,
            // An error answer (INFO refused); a server that cannot be reached fails the call as is.
            Err(e) if e.kind() == ErrorKind::Backend => return self.many(idx, Retry::Safe, cmds),
            Err(e) => return Err(e),
        };
        let info = vals.pop().and_then(text).unwrap_or_default();
        self.caution_if_evicting(self.at(idx), &info);
        Ok(vals)
    }

    /// A `Caution::MayEvictBindings` for the server `at` when its `INFO memory` says it evicts keys.
    fn caution_if_evicting(&mut self, at: String, info: &str) {
        if let Some((policy, maxmemory)) = evicting(info) {
            self.cautions.push(Caution::MayEvictBindings { at, policy, maxmemory });
        }
    }

    /// Sends `cmds` to server `idx`: one pipeline, or one command at a time on a Cluster.
    fn many(&mut self, idx: usize, retry: Retry, cmds: &[&[&[u8]]]) -> Result<Vec<Value>> {
        if self.opts.mode != Mode::Cluster {
            return self.exec_many(idx, retry, cmds).map_err(|(e, _)| e);
        }
        let mut out = Vec::with_capacity(cmds.len());
        for c in cmds {
            out.extend(self.exec_many(idx, retry, &[c]).map_err(|(e, _)| e)?);
        }
        Ok(out)
    }

    /// The session's `_USER` value: from the last read of it, or asked.
    fn user_record(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<(User, Option<Client>)>> {
        if let Some((seen, v)) = &self.last_user {
            if seen == id {
                return Ok(v.as_deref().and_then(decode));
            }
        }
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        let life = user_key_ms(exp);
        let v: Option<Vec<u8>> = self.simple(idx, &[b"GETEX", &k.user, b"PX", &life])?;
        Ok(v.as_deref().and_then(decode))
    }
}

impl Users for RedisStore {
    fn bound(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<User>> {
        Ok(self.user_record(id, exp)?.map(|(u, _)| u))
    }

    fn bind(&mut self, id: &SessionId, user: Option<&User>, client: Option<&Client>, exp: Expiry) -> Result<()> {
        let prev = self.user_record(id, exp)?.map(|(u, _)| u);
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        let sid = id.as_str().as_bytes();
        if let Some(p) = prev.as_ref().filter(|p| Some(*p) != user) {
            let pidx = self.node_of_user(p);
            let pkey = self.set_key(pidx, p);
            self.many(pidx, Retry::Safe, &[&[b"ZREM", &pkey, sid]])?;
        }
        let Some(user) = user else {
            self.many(idx, Retry::Safe, &[&[b"DEL", &k.user]])?;
            self.last_user = Some((id.clone(), None));
            return Ok(());
        };
        let value = encode(user, client);
        let life = user_key_ms(exp);
        let uidx = self.node_of_user(user);
        let ukey = self.set_key(uidx, user);
        let now = format!("{:.3}", unix_now());
        let trim = (-MAX_ENTRIES - 1).to_string();
        let index: [&[&[u8]]; 2] = [&[b"ZADD", &ukey, b"NX", now.as_bytes(), sid], &[b"ZREMRANGEBYRANK", &ukey, b"0", trim.as_bytes()]];
        let record: &[&[u8]] = &[b"SET", &k.user, &value, b"PX", &life];
        if uidx == idx && self.opts.mode != Mode::Cluster {
            // One round trip: the set's entry first, then the session's record.
            self.probing(idx, &[index[0], index[1], record])?;
        } else {
            self.many(uidx, Retry::Safe, &index)?;
            self.probing(idx, &[record])?;
        }
        self.last_user = Some((id.clone(), Some(value)));
        Ok(())
    }

    fn list(&mut self, user: &User, exp: Expiry) -> Result<Vec<Listed>> {
        let uidx = self.node_of_user(user);
        let ukey = self.set_key(uidx, user);
        let entries: Vec<(String, f64)> = {
            let v = self.probing(uidx, &[&[b"ZRANGE", &ukey, b"0", b"-1", b"WITHSCORES"]])?;
            redis::from_redis_value(v.into_iter().next().unwrap_or(Value::Nil)).map_err(|e| self.unexpected(uidx, &e, "ZRANGE"))?
        };
        let mut ids = Vec::new();
        let mut gone: Vec<String> = Vec::new();
        for (raw, score) in entries {
            match SessionId::parse(raw.as_bytes()) {
                Ok(id) => ids.push((id, score)),
                Err(_) => gone.push(raw),
            }
        }
        // Per server: the expiry and the user record of each session, in one pipeline.
        let mut out = Vec::new();
        let lifetime_ms = exp.lifetime.as_millis() as f64;
        let servers: std::collections::BTreeSet<usize> = ids.iter().map(|(id, _)| self.node_for(id)).collect();
        for idx in servers {
            let mine: Vec<&(SessionId, f64)> = ids.iter().filter(|(id, _)| self.node_for(id) == idx).collect();
            let keys: Vec<super::Keys> = mine.iter().map(|(id, _)| self.keys(idx, id)).collect();
            let cmds: Vec<[&[u8]; 2]> = keys.iter().flat_map(|k| [[&b"PEXPIRETIME"[..], &k.data[..]], [&b"GET"[..], &k.user[..]]]).collect();
            let refs: Vec<&[&[u8]]> = cmds.iter().map(|c| &c[..]).collect();
            let vals = self.many(idx, Retry::Safe, &refs)?;
            let mut it = vals.into_iter();
            for (id, score) in mine {
                let (t, u) = (it.next(), it.next());
                let t = t.as_ref().and_then(super::as_int).unwrap_or(-2);
                match bulk(u).as_deref().and_then(decode) {
                    Some((bound, client)) if t > 0 && &bound == user => {
                        let last_active = ((t as f64 - lifetime_ms) / 1000.0).min(unix_now());
                        out.push(Listed { id: id.clone(), created: *score, last_active, client });
                    }
                    _ => gone.push(id.as_str().to_string()),
                }
            }
        }
        if !gone.is_empty() {
            let mut cmd: Vec<&[u8]> = vec![b"ZREM", &ukey];
            cmd.extend(gone.iter().map(|g| g.as_bytes()));
            self.many(uidx, Retry::Safe, &[&cmd])?;
        }
        out.sort_by(|a, b| a.created.total_cmp(&b.created));
        Ok(out)
    }

    /// Deletes the session's keys with its lock (a holder's late write then finds the lock gone and
    /// is refused), wakes a waiter if one registered (see `release_and_wake!`), then removes the set's
    /// entry.
    fn end(&mut self, id: &SessionId, _exp: Expiry) -> Result<bool> {
        let idx = self.node_for(id);
        let k = self.keys(idx, id);
        let wl = ms(Duration::from_millis(WAKE_LIFE_MS));
        let vals = self.many(
            idx,
            Retry::Safe,
            &[
                &[b"GET", &k.user],
                &[b"DEL", &k.data],
                &[b"DEL", &k.ver, &k.lock, &k.user],
                &[b"LMOVE", &k.wait, &k.wake, b"LEFT", b"RIGHT"],
                &[b"PEXPIRE", &k.wake, &wl],
            ],
        )?;
        self.last_user = None;
        let mut it = vals.into_iter();
        let record = bulk(it.next()).as_deref().and_then(decode);
        let live = it.next().as_ref().and_then(super::as_int) == Some(1);
        if let Some((u, _)) = record {
            let uidx = self.node_of_user(&u);
            let ukey = self.set_key(uidx, &u);
            self.many(uidx, Retry::Safe, &[&[b"ZREM", &ukey, id.as_str().as_bytes()]])?;
        }
        Ok(live)
    }

    /// Redis has no index of sessions by activity: counting would scan every key.
    fn count_active(&mut self, _within: Duration) -> Result<Count> {
        Ok(Count::NeedsScan)
    }

    fn secret(&mut self) -> Result<[u8; 32]> {
        let key = format!("{}SP_SECRET", self.conns[0].node.prefix).into_bytes();
        let mut fresh = [0u8; 32];
        getrandom::fill(&mut fresh).map_err(|e| crate::store::StoreError::new(crate::store::ErrorKind::Backend, self.at(0), e.to_string()))?;
        let fresh = hex(&fresh);
        let vals = self.many(0, Retry::Safe, &[&[b"SET", &key, fresh.as_bytes(), b"NX"], &[b"GET", &key]])?;
        let v = bulk(vals.into_iter().nth(1)).and_then(|v| unhex(&v)).and_then(|v| <[u8; 32]>::try_from(v).ok());
        v.ok_or_else(|| self.unexpected(0, &"SP_SECRET", "the handles' secret"))
    }
}
