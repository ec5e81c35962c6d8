//! Batched reads and creates for the tool's copy (`Bulk`), standalone and Sentinel only (a Cluster
//! routes each key by its slot: one command at a time, as today). Each batch is one pipeline per
//! server: a read is `read_cmds` per session (the commands `load` sends, without the user key's
//! GETEX: a copy binds no user), a create `save`'s scratch SET and COMMIT per session with
//! `Expect::Absent` and no owner, so a session the target has is never overwritten, exactly as
//! `save` would refuse it.

use std::collections::BTreeMap;
use std::time::Duration;

use redis::Value;

use super::{ms, new_nonce, read_cmds, scripts, Keys, Mode, RedisStore, Retry, MAX_VALUE, SCRATCH_LIFE_MS, WAKE_LIFE_MS};
use crate::id::SessionId;
use crate::store::{Bulk, Expiry, Loaded, Result, Store, StoreError, Written};

impl RedisStore {
    /// Whether batches are pipelines here (see the module documentation).
    pub(super) fn batches(&self) -> bool {
        self.opts.mode != Mode::Cluster
    }

    /// The indexes of `ids` grouped by the server each lives on.
    fn by_server<'a>(&self, ids: impl Iterator<Item = (usize, &'a SessionId)>) -> BTreeMap<usize, Vec<usize>> {
        let mut m: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (i, id) in ids {
            m.entry(self.node_for(id)).or_default().push(i);
        }
        m
    }
}

/// One create of a batch, as `save` builds it.
struct Create {
    keys: Keys,
    scratch: Vec<u8>,
    ttl: Vec<u8>,
    nonce: u64,
    new: String,
}

impl Bulk for RedisStore {
    fn load_many(&mut self, ids: &[SessionId], _exp: Expiry) -> Result<Vec<Option<Loaded>>> {
        let mut out: Vec<Option<Loaded>> = vec![None; ids.len()];
        for (idx, members) in self.by_server(ids.iter().enumerate()) {
            let keys: Vec<Keys> = members.iter().map(|&i| self.keys(idx, &ids[i])).collect();
            let cmds: Vec<[[&[u8]; 2]; 3]> = keys.iter().map(read_cmds).collect();
            let refs: Vec<&[&[u8]]> = cmds.iter().flat_map(|c| c.iter().map(|x| &x[..])).collect();
            let vals = self.exec_many(idx, Retry::Safe, &refs).map_err(|(e, _)| e)?;
            if vals.len() != refs.len() {
                return Err(self.unexpected(idx, &vals.len(), "a batched read"));
            }
            let mut it = vals.into_iter();
            for &i in &members {
                // read_cmds' order: expiry, nonce, data.
                let (t, n, d) = (it.next().unwrap_or(Value::Nil), it.next().unwrap_or(Value::Nil), it.next().unwrap_or(Value::Nil));
                out[i] = self.loaded(idx, d, &n, &t)?;
            }
        }
        Ok(out)
    }

    fn create_many(&mut self, items: &[(&SessionId, &[u8], Expiry)]) -> Vec<Result<bool>> {
        let mut out: Vec<Option<Result<bool>>> = (0..items.len()).map(|_| None).collect();
        let mut fits = Vec::with_capacity(items.len());
        for (i, (id, data, _)) in items.iter().enumerate() {
            if data.len() > MAX_VALUE {
                let at = self.at(self.node_for(id));
                let detail = format!("{at}: session of {} bytes is too large (Redis stores at most {MAX_VALUE} bytes)", data.len());
                out[i] = Some(Err(StoreError::TooLarge { at, size: data.len(), limit: MAX_VALUE, detail }));
            } else {
                fits.push((i, *id));
            }
        }
        let s = &scripts().commit;
        let wl = ms(Duration::from_millis(WAKE_LIFE_MS));
        for (idx, members) in self.by_server(fits.into_iter()) {
            let creates: Vec<Create> = members
                .iter()
                .map(|&i| {
                    let (id, _, exp) = items[i];
                    let nonce = new_nonce();
                    let new = nonce.to_string();
                    let keys = self.keys(idx, id);
                    let mut scratch = keys.data.clone();
                    scratch.extend_from_slice(b"_WRITE_");
                    scratch.extend_from_slice(new.as_bytes());
                    Create { keys, scratch, ttl: ms(exp.lifetime), nonce, new }
                })
                .collect();
            // SCRIPT LOAD first: the EVALSHAs after it in the same pipeline find the script cached
            // (a restarted server, SCRIPT FLUSH), without a NOSCRIPT round of its own.
            let mut cmds: Vec<Vec<&[u8]>> = vec![vec![b"SCRIPT", b"LOAD", s.code.as_bytes()]];
            for (c, &i) in creates.iter().zip(&members) {
                cmds.push(vec![b"SET", &c.scratch, items[i].1, b"PX", SCRATCH_LIFE_MS]);
                let [d, l, w, ver, wait] = c.keys.all();
                // `save`'s keys and arguments for Expect::Absent without an owner: token, ttl, wake
                // ms, kind, expected nonce and expiry (none), the new nonce.
                cmds.push(vec![b"EVALSHA", s.sha.as_bytes(), b"6", d, l, w, ver, wait, &c.scratch, b"", &c.ttl, &wl, b"absent", b"", b"", c.new.as_bytes()]);
            }
            let refs: Vec<&[&[u8]]> = cmds.iter().map(|c| &c[..]).collect();
            // Never sent twice: a create that reached the server may have been applied.
            match self.exec_many(idx, Retry::Never, &refs) {
                Err((e, _)) => members.iter().for_each(|&i| out[i] = Some(Err(e.clone()))),
                Ok(vals) => {
                    let mut it = vals.into_iter().skip(1);
                    for (c, &i) in creates.iter().zip(&members) {
                        let _set = it.next();
                        out[i] = Some(match self.written(idx, c.nonce, it.next()) {
                            Ok(Written::Done(_)) => Ok(true),
                            Ok(Written::Conflict(_) | Written::LockLost) => Ok(false),
                            Err(e) => Err(e),
                        });
                    }
                }
            }
        }
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(StoreError::new(crate::store::ErrorKind::Corrupt, self.describe(), "a batched create got no answer"))))
            .collect()
    }
}
