//! Listing of the Redis engine's sessions (`Scan`): `SCAN … MATCH <prefix>*` on every server of a
//! phpredis list, on the master of a Sentinel service, and on every master of a Cluster (routed to
//! each by address), then the page's `PTTL`s in one pipeline (standalone) or one command each
//! (Cluster). The cursor is `<server index>:<SCAN cursor>`, so a copy resumes where it stopped
//! (SCAN's guarantee: every key present for the whole scan is listed at least once).

use std::time::Duration;

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::Value;

use super::{as_int, Link, Mode, RedisStore, Retry};
use crate::id::SessionId;
use crate::store::{Left, Listed, Page, Result, Scan};

/// A glob that matches `prefix` literally, then anything.
fn glob(prefix: &str) -> Vec<u8> {
    let mut g = Vec::with_capacity(prefix.len() + 1);
    for b in prefix.bytes() {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            g.push(b'\\');
        }
        g.push(b);
    }
    g.push(b'*');
    g
}

/// The masters of a cluster as `CLUSTER NODES` lists them, in address order (stable across pages).
fn masters(nodes: &str) -> Vec<(String, u16)> {
    let mut out: Vec<(String, u16)> = nodes
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            if f.len() < 3 || !f[2].split(',').any(|x| x == "master") || f[2].contains("fail") {
                return None;
            }
            let addr = f[1].split('@').next()?;
            let (host, port) = addr.rsplit_once(':')?;
            Some((host.to_string(), port.parse().ok()?))
        })
        .collect();
    out.sort();
    out
}

impl RedisStore {
    /// One SCAN step on server `idx` (a Cluster: on master `idx`), and the number of servers.
    fn scan_step(&mut self, idx: usize, cursor: u64, count: usize) -> Result<(u64, Vec<Vec<u8>>, usize)> {
        let pattern = glob(&self.conns[0].node.prefix);
        let c = cursor.to_string();
        let n = count.to_string();
        let args: [&[u8]; 6] = [b"SCAN", c.as_bytes(), b"MATCH", &pattern, b"COUNT", n.as_bytes()];
        if self.opts.mode != Mode::Cluster {
            let (next, keys): (String, Vec<Vec<u8>>) = self.simple(idx, &args)?;
            let next = next.parse().map_err(|_| self.unexpected(idx, &next, "SCAN"))?;
            return Ok((next, keys, self.conns.len()));
        }
        self.run(0, Retry::Safe, |l, rt| {
            let Link::Cluster(conn) = l else { unreachable!("a cluster store holds a cluster link") };
            *rt += 1;
            let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(conn)?;
            let all = masters(&nodes);
            let Some((host, port)) = all.get(idx).cloned() else { return Ok((0, Vec::new(), all.len())) };
            let mut cmd = redis::cmd("SCAN");
            args[1..].iter().for_each(|a| {
                cmd.arg(*a);
            });
            *rt += 1;
            let v = conn.route_command(&cmd, RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port }))?;
            let (next, keys): (String, Vec<Vec<u8>>) = redis::from_redis_value(v)?;
            Ok((next.parse().unwrap_or(0), keys, all.len()))
        })
    }

    /// The remaining TTLs of `keys` (ms; -1: no expiry, -2: gone).
    fn pttls(&mut self, idx: usize, keys: &[Vec<u8>]) -> Result<Vec<i64>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        if self.opts.mode == Mode::Cluster {
            return keys.iter().map(|k| self.simple::<i64>(0, &[b"PTTL", k])).collect();
        }
        let cmds: Vec<[&[u8]; 2]> = keys.iter().map(|k| [&b"PTTL"[..], &k[..]]).collect();
        let refs: Vec<&[&[u8]]> = cmds.iter().map(|c| &c[..]).collect();
        let vals = self.exec_many(idx, Retry::Safe, &refs).map_err(|(e, _)| e)?;
        Ok(vals.iter().map(|v: &Value| as_int(v).unwrap_or(-2)).collect())
    }
}

impl Scan for RedisStore {
    fn scan(&mut self, cursor: &str, count: usize) -> Result<Page> {
        let (mut idx, mut cur) = match cursor.split_once(':') {
            Some((i, c)) => (i.parse().unwrap_or(0), c.parse().unwrap_or(0)),
            None => (0usize, 0u64),
        };
        let prefix = self.conns[0].node.prefix.clone();
        let mut page = Page::default();
        // A SCAN step may answer no key (COUNT is a hint): go on until some are found or the end.
        loop {
            let (next, keys, servers) = self.scan_step(idx, cur, count.max(1))?;
            let data: Vec<Vec<u8>> = keys
                .into_iter()
                .filter(|k| k.strip_prefix(prefix.as_bytes()).is_some_and(|id| SessionId::parse(id).is_ok()))
                .collect();
            let ttls = self.pttls(if self.opts.mode == Mode::Cluster { 0 } else { idx }, &data)?;
            for (k, ttl) in data.iter().zip(ttls) {
                let id = SessionId::parse(&k[prefix.len()..]).expect("checked above");
                let left = match ttl {
                    -2 => continue,
                    t if t < 0 => Left::Unbounded,
                    t => Left::Ttl(Duration::from_millis(t as u64)),
                };
                page.sessions.push(Listed { id, left });
            }
            (idx, cur) = if next == 0 { (idx + 1, 0) } else { (idx, next) };
            if idx >= servers {
                page.next = None;
                return Ok(page);
            }
            page.next = Some(format!("{idx}:{cur}"));
            if !page.sessions.is_empty() {
                return Ok(page);
            }
        }
    }

    fn set_idle(&mut self, _id: &SessionId, _idle: Duration) -> Result<()> {
        // The TTL, set at write, is the session's remaining lifetime.
        Ok(())
    }

    /// `DBSIZE` summed over the servers of a list, or the masters of a Cluster: every key of the
    /// database (other prefixes, and our `_VER`, `_LOCK`, `_USER` keys too), an upper bound.
    fn estimate(&mut self) -> Result<Option<u64>> {
        if self.opts.mode != Mode::Cluster {
            let mut total = 0u64;
            for idx in 0..self.conns.len() {
                total += self.simple::<u64>(idx, &[b"DBSIZE"])?;
            }
            return Ok(Some(total));
        }
        self.run(0, Retry::Safe, |l, rt| {
            let Link::Cluster(conn) = l else { unreachable!("a cluster store holds a cluster link") };
            *rt += 1;
            let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(conn)?;
            let mut total = 0u64;
            for (host, port) in masters(&nodes) {
                *rt += 1;
                let v = conn.route_command(&redis::cmd("DBSIZE"), RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host, port }))?;
                total += redis::from_redis_value::<u64>(v)?;
            }
            Ok(Some(total))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_escapes_and_masters_are_parsed() {
        assert_eq!(glob("a*b?[c]\\:"), b"a\\*b\\?\\[c\\]\\\\:*");
        let nodes = "id1 127.0.0.1:7002@17002 master - 0 0 3 connected 10923-16383\n\
                     id2 127.0.0.1:7004@17004 slave id1 0 0 3 connected\n\
                     id3 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
                     id4 127.0.0.1:7009@17009 master,fail - 0 0 1 disconnected\n";
        assert_eq!(masters(nodes), [("127.0.0.1".to_string(), 7000), ("127.0.0.1".to_string(), 7002)]);
    }
}
