//! The files engine's per-user index (issue 13), in a directory beside the sessions,
//! `<dir>/.sp-users/` (0700; PHP's handler and gc only look at `sess_*`, so it never meets it):
//! - `u-<SHA-256 of the user>`: the user's index, one session id per line, edited under a flock of
//!   the file (read, change, rewrite in place);
//! - `s-<id>`: the session's binding: its id, the user (hex), when it was bound, and with
//!   track_client the client (hex), one per line; written to a temporary name and renamed in place;
//! - `secret`: the handles' 32 random bytes, made once (linked into place, so one process wins).
//!
//! The session files are never touched by a binding: PHP's handler still reads them. Consistency:
//! the user's file is written before the binding file, so a bound session is always in its user's
//! index; an entry whose session is gone (expired, collected, destroyed by PHP's handler) or bound to
//! someone else since is pruned by the next `list`. gc removes the binding files of the sessions it
//! collects (`sweep`). Ending a session deletes its file whoever holds its flock: the holder's late
//! write then finds its file gone and is refused (`save`: our flocked file removed under a lock that
//! read a session).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{io_error, journal_path, FilesStore};
use crate::id::SessionId;
use crate::lock::Token;
use crate::private;
use crate::store::users::{hex, unhex, Client, Count, Listed, User, Users};
use crate::store::{unix_now, Expiry, Result};

/// A session's binding as its `s-` file holds it.
struct Binding {
    user: User,
    created: f64,
    client: Option<Client>,
}

fn lines_of(text: &str) -> Vec<&str> {
    text.split('\n').collect()
}

impl FilesStore {
    fn index_dir(&self) -> PathBuf {
        self.opts.dir.join(".sp-users")
    }

    fn ensure_index(&self) -> Result<PathBuf> {
        let d = self.index_dir();
        match fs::DirBuilder::new().mode(0o700).create(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_error("cannot create the user index directory", &d, &e)),
        }
        match fs::symlink_metadata(&d) {
            Ok(md) if md.is_dir() => Ok(d),
            _ => Err(io_error("the user index is not a directory:", &d, &std::io::Error::from(ErrorKind::InvalidInput))),
        }
    }

    fn binding_path(&self, id: &SessionId) -> PathBuf {
        self.index_dir().join(format!("s-{}", id.name_within(250)))
    }

    fn user_path(&self, user: &User) -> PathBuf {
        self.index_dir().join(format!("u-{}", user.digest()))
    }

    fn live(&self, id: &SessionId, exp: Expiry) -> Option<fs::Metadata> {
        fs::symlink_metadata(self.path_for(id)).ok().filter(|md| md.is_file() && Self::is_live(md, exp.lifetime))
    }

    fn read_binding(&self, id: &SessionId) -> Result<Option<Binding>> {
        let p = self.binding_path(id);
        let mut text = String::new();
        match private::open(&p, OpenOptions::new().read(true), 0o600) {
            Ok(mut f) => f.read_to_string(&mut text).map_err(|e| io_error("cannot read", &p, &e))?,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("cannot open", &p, &e)),
        };
        let l = lines_of(&text);
        let user = l.get(1).and_then(|h| unhex(h.as_bytes())).and_then(|u| User::new(&u).ok());
        let (Some(&stored_id), Some(user)) = (l.first(), user) else { return Ok(None) };
        if stored_id != id.as_str() {
            return Ok(None);
        }
        let created = l.get(2).and_then(|c| c.parse().ok()).unwrap_or(0.0);
        let text_of = |i: usize| l.get(i).and_then(|h| unhex(h.as_bytes())).map(|b| String::from_utf8_lossy(&b).into_owned());
        let client = match (text_of(3), text_of(4)) {
            (None, None) => None,
            (ip, agent) => Some(Client { ip: ip.unwrap_or_default(), agent: agent.unwrap_or_default() }),
        };
        Ok(Some(Binding { user, created, client }))
    }

    /// Writes a file of the index under a temporary name, then renames it into place.
    fn replace(dir: &Path, p: &Path, bytes: &[u8]) -> Result<()> {
        let tmp = dir.join(format!(".new-{}", Token::new().as_str()));
        let r = private::open(&tmp, OpenOptions::new().write(true).create_new(true).mode(0o600), 0o600)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| fs::rename(&tmp, p));
        if let Err(e) = r {
            let _ = fs::remove_file(&tmp);
            return Err(io_error("cannot write", p, &e));
        }
        Ok(())
    }

    fn write_binding(&self, dir: &Path, id: &SessionId, b: &Binding) -> Result<()> {
        let mut text = format!("{}\n{}\n{}", id.as_str(), hex(b.user.as_bytes()), b.created);
        if let Some(c) = &b.client {
            text.push_str(&format!("\n{}\n{}", hex(c.ip.as_bytes()), hex(c.agent.as_bytes())));
        }
        Self::replace(dir, &self.binding_path(id), text.as_bytes())
    }

    fn remove(p: &Path) -> Result<()> {
        match fs::remove_file(p) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(io_error("cannot delete", p, &e)),
            _ => Ok(()),
        }
    }

    /// Changes `user`'s index under its flock: `f` gets the ids and answers whether it changed them.
    fn edit_user<T>(&self, dir: &Path, user: &User, f: impl FnOnce(&mut Vec<String>) -> (bool, T)) -> Result<T> {
        let _ = dir;
        let p = self.user_path(user);
        let file = private::open(&p, OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600), 0o600)
            .map_err(|e| io_error("cannot open", &p, &e))?;
        // SAFETY: a valid descriptor; the lock ends when `file` is closed.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(io_error("cannot lock", &p, &std::io::Error::last_os_error()));
        }
        let mut text = String::new();
        (&file).read_to_string(&mut text).map_err(|e| io_error("cannot read", &p, &e))?;
        let mut ids: Vec<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
        let (changed, out) = f(&mut ids);
        if changed {
            let mut bytes = ids.join("\n").into_bytes();
            bytes.push(b'\n');
            file.set_len(0).and_then(|()| file.write_all_at(&bytes, 0)).map_err(|e| io_error("cannot write", &p, &e))?;
        }
        Ok(out)
    }

    fn unindex(&self, dir: &Path, user: &User, id: &SessionId) -> Result<()> {
        self.edit_user(dir, user, |ids| {
            let n = ids.len();
            ids.retain(|i| i != id.as_str());
            (ids.len() != n, ())
        })
    }

    /// The binding file of a destroyed session (its user's entry is pruned by the next list).
    pub(super) fn forget_binding(&self, id: &SessionId) {
        let _ = fs::remove_file(self.binding_path(id));
    }

    /// gc: binding files whose session is gone.
    pub(super) fn sweep(&self, exp: Expiry) {
        let Ok(entries) = fs::read_dir(self.index_dir()) else { return };
        for e in entries.flatten() {
            let name = e.file_name();
            let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("s-")) else { continue };
            // The id is the file's first line (a hashed name cannot be turned back).
            let first = fs::read_to_string(e.path()).ok().and_then(|t| t.split('\n').next().map(str::to_string));
            let Some(Ok(id)) = first.map(|f| SessionId::parse(f.as_bytes())) else { continue };
            if id.name_within(250) == rest && self.live(&id, exp).is_none() {
                let _ = fs::remove_file(e.path());
            }
        }
    }
}

impl Users for FilesStore {
    /// The binding file (one open; no file at all for an unbound session).
    fn bound(&mut self, id: &SessionId, exp: Expiry) -> Result<Option<User>> {
        if self.live(id, exp).is_none() {
            return Ok(None);
        }
        Ok(self.read_binding(id)?.map(|b| b.user))
    }

    fn bind(&mut self, id: &SessionId, user: Option<&User>, client: Option<&Client>, _exp: Expiry) -> Result<()> {
        let dir = self.ensure_index()?;
        let prev = self.read_binding(id)?;
        if let Some(p) = prev.as_ref().filter(|p| Some(&p.user) != user) {
            self.unindex(&dir, &p.user, id)?;
        }
        let Some(user) = user else {
            return Self::remove(&self.binding_path(id));
        };
        self.edit_user(&dir, user, |ids| {
            let has = ids.iter().any(|i| i == id.as_str());
            if !has {
                ids.push(id.as_str().to_string());
            }
            (!has, ())
        })?;
        let created = prev.filter(|p| &p.user == user).map_or_else(unix_now, |p| p.created);
        self.write_binding(&dir, id, &Binding { user: user.clone(), created, client: client.cloned() })
    }

    fn list(&mut self, user: &User, exp: Expiry) -> Result<Vec<Listed>> {
        let dir = self.ensure_index()?;
        let mut out = Vec::new();
        let mut gone = Vec::new();
        let ids = self.edit_user(&dir, user, |ids| (false, ids.clone()))?;
        for raw in ids {
            let Ok(id) = SessionId::parse(raw.as_bytes()) else {
                gone.push(raw);
                continue;
            };
            let b = self.read_binding(&id)?.filter(|b| &b.user == user);
            match (self.live(&id, exp), b) {
                (Some(md), Some(b)) => {
                    let last_active = md.modified().ok().and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0.0, |d| d.as_secs_f64());
                    out.push(Listed { id, created: b.created, last_active, client: b.client });
                }
                _ => gone.push(raw),
            }
        }
        if !gone.is_empty() {
            // Pruned under the flock again: an entry added since stays.
            self.edit_user(&dir, user, |ids| {
                let n = ids.len();
                ids.retain(|i| !gone.contains(i));
                (ids.len() != n, ())
            })?;
        }
        out.sort_by(|a, b| a.created.total_cmp(&b.created));
        Ok(out)
    }

    /// Deletes the session file whoever holds its flock (see the module comment), then the binding.
    fn end(&mut self, id: &SessionId, exp: Expiry) -> Result<bool> {
        let path = self.path_for(id);
        let live = self.live(id, exp).is_some();
        for p in [&path, &journal_path(&path)] {
            Self::remove(p)?;
        }
        if let Some(b) = self.read_binding(id)? {
            let dir = self.ensure_index()?;
            self.unindex(&dir, &b.user, id)?;
        }
        Self::remove(&self.binding_path(id))?;
        Ok(live)
    }

    fn count_active(&mut self, _within: Duration) -> Result<Count> {
        Ok(Count::NeedsScan)
    }

    fn secret(&mut self) -> Result<[u8; 32]> {
        let dir = self.ensure_index()?;
        let p = dir.join("secret");
        loop {
            match private::open(&p, OpenOptions::new().read(true), 0o600) {
                Ok(mut f) => {
                    let mut s = [0u8; 32];
                    f.read_exact(&mut s).map_err(|e| io_error("cannot read", &p, &e))?;
                    return Ok(s);
                }
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("cannot open", &p, &e)),
            }
            let mut fresh = [0u8; 32];
            getrandom::fill(&mut fresh).map_err(|e| io_error("cannot draw", &p, &std::io::Error::other(e.to_string())))?;
            let tmp = dir.join(format!(".new-{}", Token::new().as_str()));
            let made = private::open(&tmp, OpenOptions::new().write(true).create_new(true).mode(0o600), 0o600)
                .and_then(|mut f: File| f.write_all(&fresh))
                .and_then(|()| fs::hard_link(&tmp, &p));
            let _ = fs::remove_file(&tmp);
            match made {
                Ok(()) => return Ok(fresh),
                Err(e) if e.kind() == ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(io_error("cannot create", &p, &e)),
            }
        }
    }
}
