//! Batched reads and creates for the tool's copy (`Bulk`), without replicas (a replicated create
//! is conditional on the first copy and undoes the others when refused: one session at a time, as
//! `save` does it). A batch is one `exec`: every server's requests written before any answer is
//! read. A read is `load`'s `mg` of the first copy, with its `user.` item (a miss or a failure
//! goes on to the next copy as `read_from` does), a create `save`'s `ms … ME` (an add: memcached
//! refuses it where the item exists, so a session the target has is never overwritten).

use super::proto::Reply;
use super::{exptime, MemcachedStore, Req};
use crate::id::SessionId;
use crate::store::{Bulk, Expiry, Loaded, Result, Store};

impl MemcachedStore {
    /// Whether batches are offered here (see the module documentation).
    pub(super) fn batches(&self) -> bool {
        self.o.replicas == 0
    }
}

impl Bulk for MemcachedStore {
    fn load_many(&mut self, ids: &[SessionId], exp: Expiry) -> Result<Vec<Option<Loaded>>> {
        let mut keys = Vec::with_capacity(ids.len());
        for id in ids {
            keys.push((self.key(id)?, self.data_targets(id)));
        }
        // Each with its `user.` item, as `load` reads it (a session whose binding was lost is absent).
        let mut reqs: Vec<Req> = Vec::with_capacity(2 * ids.len());
        for (id, (k, t)) in ids.iter().zip(&keys) {
            reqs.push((t[0], self.user_read(id), None));
            reqs.push((t[0], format!("mg {k} v t f c"), None));
        }
        let mut replies = self.exec(&reqs).into_iter();
        let mut out = Vec::with_capacity(ids.len());
        for (id, (key, targets)) in ids.iter().zip(&keys) {
            let user = replies.next().expect("a reply each");
            let data = replies.next().expect("a reply each");
            out.push(self.read_from(id, key, targets, Some((user, data)), exp.lifetime, true)?);
        }
        Ok(out)
    }

    fn create_many(&mut self, items: &[(&SessionId, &[u8], Expiry)]) -> Vec<Result<bool>> {
        let mut out: Vec<Option<Result<bool>>> = (0..items.len()).map(|_| None).collect();
        let mut lines: Vec<(usize, usize, String)> = Vec::with_capacity(items.len());
        for (i, (id, data, exp)) in items.iter().enumerate() {
            let checked = self.key(id).and_then(|key| {
                let s = self.data_targets(id)[0];
                self.check_size(&key, data.len(), &[s])?;
                Ok((s, key))
            });
            match checked {
                Ok((s, key)) => {
                    let (ttl, flags) = exptime(exp.lifetime, false);
                    lines.push((i, s, format!("ms {key} {} T{ttl} F{flags} c ME", data.len())));
                }
                Err(e) => out[i] = Some(Err(e)),
            }
        }
        let reqs: Vec<Req> = lines.iter().map(|(i, s, l)| (*s, l.clone(), Some(items[*i].1))).collect();
        let replies = self.exec(&reqs);
        for ((i, s, _), r) in lines.iter().zip(replies) {
            out[*i] = Some(match r {
                Ok(Reply::Done(_)) => Ok(true),
                Ok(Reply::NotStored | Reply::Exists) => Ok(false),
                Ok(other) => Err(self.unexpected(*s, "", &other)),
                Err(e) => Err(e),
            });
        }
        let at = self.describe();
        out.into_iter()
            .map(|o| o.unwrap_or_else(|| Err(crate::store::StoreError::new(crate::store::ErrorKind::Corrupt, at.clone(), "a batched create got no answer"))))
            .collect()
    }
}
