//! Listing of the files engine's sessions (`Scan`): pages in id order, each a walk of the directory
//! (and its `depth` levels) that keeps the `count` smallest ids after the cursor. Memory is one page
//! whatever the directory's size, the cursor (the last id listed) resumes exactly, and the price is a
//! directory walk per page (readdir only: file contents are not read).

use std::collections::BinaryHeap;
use std::fs::{self, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::{io_error, lock_only, FilesStore};
use crate::id::SessionId;
use crate::store::{Left, Listed, Page, Result, Scan};

/// Calls `f` with each `sess_<id>` entry under `dir` (and its `depth` levels of one-letter
/// subdirectories) whose id is a valid session id.
fn each_session(dir: &Path, depth: u8, f: &mut dyn FnMut(&str, &fs::DirEntry)) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if depth > 0 && name.len() == 1 {
            if entry.file_type()?.is_dir() {
                each_session(&entry.path(), depth - 1, f)?;
            }
            continue;
        }
        match name.strip_prefix("sess_") {
            Some(id) if SessionId::parse(id.as_bytes()).is_ok() => f(id, &entry),
            _ => {}
        }
    }
    Ok(())
}

fn walk(dir: &Path, depth: u8, cursor: &str, count: usize, best: &mut BinaryHeap<(String, Duration)>) -> std::io::Result<()> {
    let now = SystemTime::now();
    each_session(dir, depth, &mut |id, entry| {
        if id <= cursor {
            return;
        }
        if best.len() >= count && best.peek().is_some_and(|(top, _)| id >= top.as_str()) {
            return;
        }
        let Ok(md) = entry.metadata() else { return };
        if !md.is_file() || lock_only(&md) {
            return;
        }
        let idle = md.modified().ok().and_then(|m| now.duration_since(m).ok()).unwrap_or_default();
        best.push((id.to_string(), idle));
        if best.len() > count {
            best.pop();
        }
    })
}

/// The `sess_<id>` names under `dir` (and its `depth` levels): readdir only, no stat.
fn count(dir: &Path, depth: u8) -> std::io::Result<u64> {
    let mut n = 0;
    each_session(dir, depth, &mut |_, _| n += 1)?;
    Ok(n)
}

impl Scan for FilesStore {
    fn scan(&mut self, cursor: &str, count: usize) -> Result<Page> {
        let count = count.max(1);
        let mut best = BinaryHeap::with_capacity(count + 1);
        let dir = self.opts.dir.clone();
        walk(&dir, self.opts.depth, cursor, count, &mut best).map_err(|e| io_error("cannot list", &dir, &e))?;
        let full = best.len() >= count;
        let sessions: Vec<Listed> = best
            .into_sorted_vec()
            .into_iter()
            .filter_map(|(id, idle)| Some(Listed { id: SessionId::parse(id.as_bytes()).ok()?, left: Left::Idle(idle) }))
            .collect();
        let next = if full { sessions.last().map(|l| l.id.as_str().to_string()) } else { None };
        Ok(Page { sessions, next })
    }

    fn set_idle(&mut self, id: &SessionId, idle: Duration) -> Result<()> {
        let path = self.path_for(id);
        let f = OpenOptions::new().write(true).custom_flags(libc::O_NOFOLLOW).open(&path).map_err(|e| io_error("cannot open", &path, &e))?;
        let md = f.metadata().map_err(|e| io_error("cannot read", &path, &e))?;
        if !lock_only(&md) {
            let t = SystemTime::now().checked_sub(idle).unwrap_or(SystemTime::UNIX_EPOCH);
            f.set_modified(t).map_err(|e| io_error("cannot update the time of", &path, &e))?;
        }
        Ok(())
    }

    /// The session files' names (one directory walk, as a page costs): lock-only files of sessions
    /// never written count too.
    fn estimate(&mut self) -> Result<Option<u64>> {
        let dir = self.opts.dir.clone();
        count(&dir, self.opts.depth).map(Some).map_err(|e| io_error("cannot list", &dir, &e))
    }
}
