//! Telling a new user from a lost index item without a crawl (issue 13): a per-server *marker*.
//!
//! `list` (users.rs) trusts a user's index item to name every bound session once it carries
//! `complete`; an item missing, or made by a binding or a repair (an add where there was none), is
//! either a new user's or one that was lost, and a lost one may leave idle sessions unlisted. Before
//! crawling every server for them (rebuild.rs), `list` asks each server that can hold a copy of the
//! item (`all_copies`: ketama's server and the next `replicas` ones, live or not) whether it can have
//! lost an item lately, in one round trip: `mg <prefix>sp_mark v` + `stats`, pipelined on every such
//! server. The marker (no TTL) records what that server's `stats` said when it was written:
//! `sp1 <ring> <pid> <start> <t0> <counter>=<n>…` — the ring (a hash of the DSN's server list,
//! weights and replicas: another list can put the item elsewhere), the process (`pid`, and its start
//! `time - uptime`), the server time `t0`, and every counter that counts items lost before their
//! TTL (`LOSSES`: evictions of any kind, `flush_all`, items a slab move had to drop, extstore
//! misses). The server is *clean* when the marker is there, names this ring and this process, and
//! every counter is what it was: then no item of that server was lost since `t0`. A marker missing
//! (flushed, evicted, restarted: it goes with the items) or not clean is written again from this
//! `stats` answer (read before the write, so a loss in between shows as a changed counter); one too
//! young is left as it is.
//!
//! The rule: when every copy's server answered and is clean since a `t0` at least the sessions'
//! lifetime (`gc_maxlifetime`, the list's `Expiry`) plus `MARGIN_SECS` ago, the item as read is
//! whole, missing or not — no crawl; `list` then writes `complete` into it by CAS on the copy it read
//! (changed since: not written, the next list checks again). Else it crawls as before. Why it is
//! sound: a session that is live now was written or touched within its lifetime, so after `t0`
//! (`MARGIN_SECS` covers memcached's whole-second clock and skew between the data's and the index's
//! servers). Every write or touch of a bound session checks its index item in the same batch (the
//! epoch probe, users.rs) and puts its line back when the item was missing or made again; a binding
//! adds its line before it records the user. So after that write the item held the session's line on
//! the copies that were live then; it can leave them only by a loss (no clean copy server lost
//! anything since `t0`), by our own edits (an unbinding, an end, a prune of a dead session, the
//! 2000-line bound), or by a hand-made `delete`. Expiry cannot take it: the index item, like the
//! marker, has no TTL. A copy server that was down during an update misses it, but then the copy that
//! took it is the one that must have lost it. Other prefixes on the same servers have markers of
//! their own; their evictions count against ours (counters are the server's), which only makes
//! crawls more frequent.
//!
//! What it cannot see: an index item deleted by hand (`delete`, a `T-1` touch: memcached counts
//! deletes, but this engine deletes session items all the time, so no counter can tell); a
//! session whose request found its index item lost before `t0` and then failed to put its line back
//! (the index server failing between the probe and the repair in that one request) and idle since;
//! two server lists used at once with one prefix (a rolling DSN change: the bindings made under the
//! other list are in items placed by the other ring, as without the marker). Cost: on a server that
//! keeps evicting (memcached full) no marker is ever clean, and after a restart, flush or eviction a
//! new user's first list crawls until the new marker is `gc_maxlifetime` + `MARGIN_SECS` old.

use std::time::Duration;

use super::proto::Reply;
use super::{io_kind, MemcachedStore, Req};
use crate::store::users::hex;

/// Seconds a marker must be older than the lifetime: memcached's clock counts whole seconds, and
/// the session's server and the index's may disagree by a little.
pub(super) const MARGIN_SECS: i64 = 60;
/// Stats lines read from one server at most.
const MAX_STATS_LINES: usize = 1000;
const TAG: &str = "sp1";

/// Whether a `stats` counter counts items lost before their TTL.
fn is_loss(name: &str) -> bool {
    name.contains("evict") || matches!(name, "cmd_flush" | "slab_reassign_busy_deletes" | "miss_from_extstore" | "badcrc_from_extstore")
}

/// What a server's `stats` says of its process and its losses.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ServerState {
    pid: u64,
    start: i64,
    time: i64,
    losses: Vec<(String, u64)>,
}

pub(super) fn parse_stats(lines: &[String]) -> Option<ServerState> {
    let mut pid = None;
    let (mut uptime, mut time) = (None, None);
    let mut losses = Vec::new();
    for l in lines {
        let Some((name, v)) = l.strip_prefix("STAT ").and_then(|r| r.split_once(' ')) else { continue };
        match name {
            "pid" => pid = v.trim().parse().ok(),
            "uptime" => uptime = v.trim().parse::<i64>().ok(),
            "time" => time = v.trim().parse::<i64>().ok(),
            n if is_loss(n) => losses.push((n.to_string(), v.trim().parse().ok()?)),
            _ => {}
        }
    }
    losses.sort();
    let (time, uptime) = (time?, uptime?);
    Some(ServerState { pid: pid?, start: time - uptime, time, losses })
}

impl ServerState {
    fn marker(&self, ring: &str) -> String {
        let mut v = format!("{TAG} {ring} {} {} {}", self.pid, self.start, self.time);
        for (n, c) in &self.losses {
            v.push_str(&format!(" {n}={c}"));
        }
        v
    }
}

/// A marker read back: the ring, and the state it recorded (its `time` is `t0`).
fn parse_marker(v: &[u8]) -> Option<(String, ServerState)> {
    let s = std::str::from_utf8(v).ok()?;
    let mut t = s.split(' ');
    (t.next()? == TAG).then_some(())?;
    let ring = t.next()?.to_string();
    let pid = t.next()?.parse().ok()?;
    let start = t.next()?.parse().ok()?;
    let time = t.next()?.parse().ok()?;
    let mut losses: Vec<(String, u64)> = t.map(|e| e.split_once('=').and_then(|(n, c)| Some((n.to_string(), c.parse().ok()?)))).collect::<Option<_>>()?;
    losses.sort();
    Some((ring, ServerState { pid, start, time, losses }))
}

/// What one server's marker says now.
#[derive(Debug, PartialEq)]
pub(super) enum Verdict {
    /// No item lost since a `t0` old enough.
    Clean,
    /// No item lost since `t0`, but `t0` is too recent.
    Young,
    /// Missing, or another ring, process or loss count: written again.
    Stale,
}

pub(super) fn judge(ring: &str, marker: Option<&[u8]>, now: &ServerState, window: Duration) -> Verdict {
    let Some((r, then)) = marker.and_then(parse_marker) else { return Verdict::Stale };
    if r != ring || then.pid != now.pid || then.start != now.start || then.losses != now.losses || then.time > now.time {
        return Verdict::Stale;
    }
    if now.time - then.time >= window.as_secs() as i64 + MARGIN_SECS {
        Verdict::Clean
    } else {
        Verdict::Young
    }
}

impl MemcachedStore {
    pub(super) fn mark_key(&self) -> String {
        format!("{}sp_mark", self.o.prefix)
    }

    /// The ring's identity in a marker: what decides where an index item lives.
    fn ring_id(&self) -> String {
        use sha2::{Digest, Sha256};
        let names: Vec<String> = self.o.servers.iter().map(super::ServerAddr::ketama_name).collect();
        let desc = format!("{names:?} {:?} {} {}", self.o.weights, self.o.weighted, self.o.replicas);
        hex(&Sha256::digest(desc.as_bytes())[..8])
    }

    /// Every server that can hold a copy of `hash_key` (ketama's and the next `replicas` ones),
    /// whether live or not.
    pub(super) fn all_copies(&self, hash_key: &str) -> Vec<usize> {
        let n = self.servers.len();
        let first = self.ring.pick(hash_key.as_bytes());
        (0..=self.o.replicas as usize).map(|i| (first + i) % n).collect()
    }

    /// Whether none of `servers` can have lost an item in the last `window` (+ `MARGIN_SECS`)
    /// (module documentation). One round trip; false when any of them fails to answer, and for a
    /// zero window (no lifetime bounds a session). Stale markers are written again (one round trip
    /// more, its answer not needed).
    pub(super) fn no_loss_within(&mut self, servers: &[usize], window: Duration) -> bool {
        if window.is_zero() || servers.is_empty() {
            return false;
        }
        let key = self.mark_key();
        let mut sent = Vec::new();
        for &s in servers {
            // A server that cannot be asked leaves the answer "unsure"; the others' replies are
            // still read below, so their connections stay in step.
            let Ok(c) = self.conn(s) else { continue };
            c.queue(&format!("mg {key} v"), None);
            c.queue("stats", None);
            match c.flush() {
                Ok(()) => sent.push(s),
                Err(e) => {
                    self.io_failed(s, "write failed", &e);
                }
            }
        }
        self.round_trips += 1;
        let ring = self.ring_id();
        let mut all_clean = sent.len() == servers.len();
        let mut rewrite: Vec<(usize, String)> = Vec::new();
        for s in sent {
            let Some(c) = self.servers[s].conn.as_mut() else {
                all_clean = false;
                continue;
            };
            let got = c.reply().and_then(|r| Ok((r, c.read_lines_until_end("stats", MAX_STATS_LINES)?)));
            let (marker, lines) = match got {
                Ok(g) => g,
                Err(e) => {
                    let cause = format!("stats failed: {e}");
                    self.fail(s, io_kind(&e), &e, cause);
                    all_clean = false;
                    continue;
                }
            };
            let marker = match &marker {
                Reply::Value(v, _) => Some(v.as_slice()),
                _ => None,
            };
            let Some(now) = parse_stats(&lines) else {
                all_clean = false;
                continue;
            };
            match judge(&ring, marker, &now, window) {
                Verdict::Clean => {}
                Verdict::Young => all_clean = false,
                Verdict::Stale => {
                    all_clean = false;
                    rewrite.push((s, now.marker(&ring)));
                }
            }
        }
        if !rewrite.is_empty() {
            let reqs: Vec<Req> = rewrite.iter().map(|(s, v)| (*s, format!("ms {key} {} T0", v.len()), Some(v.as_bytes()))).collect();
            // Not written: the next check writes it.
            let _ = self.exec(&reqs);
        }
        all_clean
    }

    /// For tests: moves `s`'s marker's `t0` back by `secs` (as if written that long ago), where
    /// there is one.
    #[cfg(test)]
    pub(super) fn age_marker(&mut self, s: usize, secs: i64) {
        let key = self.mark_key();
        let Ok(Reply::Value(v, _)) = self.one(s, format!("mg {key} v"), None) else { return };
        let (ring, mut st) = parse_marker(&v).expect("a marker");
        st.time -= secs;
        let v = st.marker(&ring);
        assert!(matches!(self.one(s, format!("ms {key} {} T0", v.len()), Some(v.as_bytes())), Ok(Reply::Done(_))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(pid: u64, uptime: i64, time: i64, evictions: u64, flush: u64) -> ServerState {
        let lines: Vec<String> = [
            format!("STAT pid {pid}"),
            format!("STAT uptime {uptime}"),
            format!("STAT time {time}"),
            "STAT curr_items 12".into(),
            format!("STAT cmd_flush {flush}"),
            "STAT slab_reassign_evictions_nomem 0".into(),
            format!("STAT evictions {evictions}"),
            "STAT delete_hits 99".into(),
        ]
        .into();
        parse_stats(&lines).unwrap()
    }

    #[test]
    fn a_marker_is_clean_only_for_the_same_process_ring_and_losses_once_old_enough() {
        let w = Duration::from_secs(1440);
        let then = stats(7, 100, 1_000_000, 3, 0);
        assert_eq!(then.losses.len(), 3, "{then:?}: evictions, cmd_flush, slab_reassign_evictions_nomem; not delete_hits");
        let m = then.marker("ring1");
        let later = |dt: i64| 1_000_000 + dt;
        let old = 1440 + MARGIN_SECS;
        assert_eq!(judge("ring1", Some(m.as_bytes()), &stats(7, 100 + old, later(old), 3, 0), w), Verdict::Clean);
        assert_eq!(judge("ring1", Some(m.as_bytes()), &stats(7, 100 + old - 1, later(old - 1), 3, 0), w), Verdict::Young);
        assert_eq!(judge("ring1", Some(m.as_bytes()), &stats(7, 100 + old, later(old), 4, 0), w), Verdict::Stale, "an eviction");
        assert_eq!(judge("ring1", Some(m.as_bytes()), &stats(7, 100 + old, later(old), 3, 1), w), Verdict::Stale, "a flush_all");
        assert_eq!(judge("ring1", Some(m.as_bytes()), &stats(8, 100 + old, later(old), 3, 0), w), Verdict::Stale, "another pid");
        assert_eq!(judge("ring1", Some(m.as_bytes()), &stats(7, 5, later(old), 3, 0), w), Verdict::Stale, "restarted (start moved)");
        assert_eq!(judge("ring2", Some(m.as_bytes()), &stats(7, 100 + old, later(old), 3, 0), w), Verdict::Stale, "another server list");
        assert_eq!(judge("ring1", None, &stats(7, 100 + old, later(old), 3, 0), w), Verdict::Stale, "no marker");
        assert_eq!(judge("ring1", Some(b"garbage"), &stats(7, 100 + old, later(old), 3, 0), w), Verdict::Stale);
    }
}
