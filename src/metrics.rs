//! Counters per engine, kept in one block of memory shared by every process forked after it was set up.
//!
//! The PHP skin creates the block at MINIT (`global()`), before php-fpm forks its workers: an anonymous
//! `MAP_SHARED` mapping, so every worker of a pool counts into the same block and any of them can report
//! the pool's totals. Counting is a relaxed atomic add in that block: no round trip, no lock, no system
//! call. Under the CLI the block belongs to the process (and to children it forks afterwards). If the
//! mapping cannot be made, the counters are process-local and `Registry::is_shared` says so.
//!
//! Storage errors are counted by engine, kind and place (`StoreError::at()`, a host or a path that is
//! already masked) in a fixed table of label slots, claimed with a compare-and-swap on the slot's head.
//! When the table is full, further places count into one "other" row per engine.
//!
//! Plain Rust: the skin turns a `Snapshot` into PHP arrays; `render_prometheus` gives the text format.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::OnceLock;
use std::time::Duration;

/// The engines counted, in the order of every table here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Sqlite,
    Files,
    Redis,
    Memcached,
    Pgsql,
    Mysql,
}

impl EngineKind {
    pub const ALL: [EngineKind; 6] = [EngineKind::Sqlite, EngineKind::Files, EngineKind::Redis, EngineKind::Memcached, EngineKind::Pgsql, EngineKind::Mysql];

    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Sqlite => "sqlite",
            EngineKind::Files => "files",
            EngineKind::Redis => "redis",
            EngineKind::Memcached => "memcached",
            EngineKind::Pgsql => "pgsql",
            EngineKind::Mysql => "mysql",
        }
    }
}

/// Plain counters, one of each per engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    Requests,
    Reads,
    Writes,
    Touches,
    Destroys,
    LockAcquisitions,
    LockTimeouts,
    RoundTrips,
    BytesRead,
    BytesWritten,
    Merges,
    MergeConflicts,
    OldStoreReads,
    Migrated,
}

const COUNTERS: usize = 14;

impl Counter {
    pub const ALL: [Counter; COUNTERS] = [
        Counter::Requests,
        Counter::Reads,
        Counter::Writes,
        Counter::Touches,
        Counter::Destroys,
        Counter::LockAcquisitions,
        Counter::LockTimeouts,
        Counter::RoundTrips,
        Counter::BytesRead,
        Counter::BytesWritten,
        Counter::Merges,
        Counter::MergeConflicts,
        Counter::OldStoreReads,
        Counter::Migrated,
    ];

    /// The key in `SessionProxy\stats()` and the stem of the Prometheus name.
    pub fn name(self) -> &'static str {
        match self {
            Counter::Requests => "requests",
            Counter::Reads => "reads",
            Counter::Writes => "writes",
            Counter::Touches => "touches",
            Counter::Destroys => "destroys",
            Counter::LockAcquisitions => "lock_acquisitions",
            Counter::LockTimeouts => "lock_timeouts",
            Counter::RoundTrips => "round_trips",
            Counter::BytesRead => "read_bytes",
            Counter::BytesWritten => "written_bytes",
            Counter::Merges => "merges",
            Counter::MergeConflicts => "merge_conflicts",
            Counter::OldStoreReads => "old_store_reads",
            Counter::Migrated => "migrated",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Counter::Requests => "Session requests opened.",
            Counter::Reads => "Session reads (with or without the lock).",
            Counter::Writes => "Session writes that were stored.",
            Counter::Touches => "Expiry refreshes of unchanged data (session.lazy_write).",
            Counter::Destroys => "Sessions destroyed.",
            Counter::LockAcquisitions => "Session locks taken.",
            Counter::LockTimeouts => "Lock waits that ran out of session_proxy.lock_wait_timeout.",
            Counter::RoundTrips => "Round trips to the storage.",
            Counter::BytesRead => "Bytes of session data read.",
            Counter::BytesWritten => "Bytes of session data written.",
            Counter::Merges => "Optimistic writes merged onto another request's newer write.",
            Counter::MergeConflicts => "Keys changed by both requests of a merge (settled by session_proxy.merge_conflict).",
            Counter::OldStoreReads => "Sessions read from the old store (session_proxy.migrate_from) because this one lacked them.",
            Counter::Migrated => "Sessions moved from the old store (session_proxy.migrate_from) into this one.",
        }
    }
}

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Our lock expired and another request took it over.
    LockLost,
    /// The stored version is not the one expected.
    Conflict,
    /// The data is larger than the storage accepts.
    TooLarge,
    /// Any other storage error.
    StorageError,
}

const REFUSALS: usize = 4;

impl Refusal {
    pub const ALL: [Refusal; REFUSALS] = [Refusal::LockLost, Refusal::Conflict, Refusal::TooLarge, Refusal::StorageError];

    pub fn name(self) -> &'static str {
        match self {
            Refusal::LockLost => "lock_lost",
            Refusal::Conflict => "conflict",
            Refusal::TooLarge => "too_large",
            Refusal::StorageError => "storage_error",
        }
    }
}

/// Upper bounds of the lock-wait histogram's buckets, in milliseconds; a last bucket takes the rest (+Inf).
pub const LOCK_WAIT_BUCKETS_MS: [u64; 8] = [1, 5, 10, 50, 100, 500, 1000, 5000];
const BUCKETS: usize = LOCK_WAIT_BUCKETS_MS.len() + 1;

/// Label slots for storage errors, shared by all engines.
pub const ERROR_SLOTS: usize = 64;
/// Longest kind and place kept in a slot (bytes; cut at a character boundary).
pub const KIND_MAX: usize = 24;
pub const AT_MAX: usize = 160;
const TEXT_WORDS: usize = (KIND_MAX + AT_MAX).div_ceil(8);
/// The label of the row that counts errors once every slot is taken.
pub const OTHER: &str = "other";

#[repr(C)]
struct EngineBlock {
    counters: [AtomicU64; COUNTERS],
    refused: [AtomicU64; REFUSALS],
    /// Not cumulative: each wait counts in the first bucket whose bound it does not exceed.
    wait_buckets: [AtomicU64; BUCKETS],
    wait_sum_us: AtomicU64,
    errors_other: AtomicU64,
}

/// A slot's head: FREE, WRITING while its claimer fills the text, then READY | engine | lengths.
const FREE: u64 = 0;
const WRITING: u64 = 1;
const READY: u64 = 2;
/// How long a reader waits for a claimer to publish its slot (spins; a claimer writes ~200 bytes).
/// A claimer killed mid-write leaves its slot unreadable, never a wrong count.
const PUBLISH_SPINS: u32 = 100_000;

#[repr(C)]
struct LabelSlot {
    head: AtomicU64,
    /// kind then place, packed little-endian into words.
    text: [AtomicU64; TEXT_WORDS],
    count: AtomicU64,
}

/// The whole shared table. All-zero bytes are a valid, empty block (what mmap and `new_zeroed` give).
#[repr(C)]
struct Block {
    engines: [EngineBlock; EngineKind::ALL.len()],
    slots: [LabelSlot; ERROR_SLOTS],
}

fn head(engine: EngineKind, kind_len: usize, at_len: usize) -> u64 {
    READY | (engine as u64) << 8 | (kind_len as u64) << 16 | (at_len as u64) << 32
}

fn cut(s: &str, max: usize) -> &str {
    let mut n = s.len().min(max);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

fn pack(kind: &str, at: &str) -> [u64; TEXT_WORDS] {
    let mut bytes = [0u8; TEXT_WORDS * 8];
    bytes[..kind.len()].copy_from_slice(kind.as_bytes());
    bytes[kind.len()..kind.len() + at.len()].copy_from_slice(at.as_bytes());
    std::array::from_fn(|i| u64::from_le_bytes(bytes[i * 8..i * 8 + 8].try_into().expect("8 bytes")))
}

/// The counters of one process group. `global()` is the extension's; tests make their own.
pub struct Registry {
    block: &'static Block,
    shared: bool,
    /// Why the block is process-local, when the shared mapping failed.
    local_because: Option<String>,
    /// The file the block is mapped from (another process can read it: `session-proxy stats`), and
    /// the pid that made it (the only one that removes it).
    file: Option<(std::path::PathBuf, u32)>,
}

/// Where the counters of the process group set up by `pid` can be read by another process:
/// `/dev/shm/session_proxy-<uid>-<pid>.stats` (0600, the user's own), made at startup by php-fpm's
/// master (or a CLI run) and removed by it at shutdown.
pub fn shared_path(pid: u32) -> std::path::PathBuf {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    std::path::PathBuf::from(format!("{SHM_DIR}/{SHM_STEM}{uid}-{pid}.stats"))
}

/// The directory and name stem of the counters' files.
pub const SHM_DIR: &str = "/dev/shm";
pub const SHM_STEM: &str = "session_proxy-";

/// The pids whose counters' files this user has in `SHM_DIR` (alive or not: the caller checks).
pub fn shared_pids() -> Vec<u32> {
    // SAFETY: getuid cannot fail.
    let stem = format!("{SHM_STEM}{}-", unsafe { libc::getuid() });
    let mut pids: Vec<u32> = std::fs::read_dir(SHM_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.strip_prefix(&stem)?.strip_suffix(".stats")?.parse().ok())
        .collect();
    pids.sort_unstable();
    pids
}

impl Registry {
    /// A block shared with the children this process forks from now on; process-local when the
    /// mapping fails.
    pub fn new() -> Self {
        let pid = std::process::id();
        Self::named(&shared_path(pid))
            .or_else(|_| Self::shared())
            .unwrap_or_else(|e| Registry { local_because: Some(format!("mmap failed: {e}")), ..Self::local() })
    }

    /// A block shared with the children this process forks, mapped from a new file at `path` (0600)
    /// that other processes of this user can map too (`open_file`). `remove_file` removes it.
    pub fn named(path: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        use std::os::unix::io::AsRawFd;
        let size = std::mem::size_of::<Block>();
        // A file left by a process of the same pid that died without removing it.
        let _ = std::fs::remove_file(path);
        let f = std::fs::OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)?;
        let mapped = f.set_len(size as u64).and_then(|()| {
            // SAFETY: a fresh shared mapping of a file of `size` bytes; no existing memory is touched.
            let p = unsafe { libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, f.as_raw_fd(), 0) };
            if p == libc::MAP_FAILED { Err(std::io::Error::last_os_error()) } else { Ok(p) }
        });
        let p = match mapped {
            Ok(p) => p,
            Err(e) => {
                let _ = std::fs::remove_file(path);
                return Err(e);
            }
        };
        // SAFETY: page-aligned, zero-filled (a new file), `size` bytes, never unmapped.
        let block = unsafe { &*p.cast::<Block>() };
        Ok(Registry { block, shared: true, local_because: None, file: Some((path.to_path_buf(), std::process::id())) })
    }

    /// The counters another process group keeps in the file at `path` (`named`), read-only.
    pub fn open_file(path: &std::path::Path) -> std::io::Result<Self> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        use std::os::unix::io::AsRawFd;
        let size = std::mem::size_of::<Block>();
        let f = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(path)?;
        let md = f.metadata()?;
        // SAFETY: getuid cannot fail.
        if md.uid() != unsafe { libc::getuid() } {
            return Err(std::io::Error::new(std::io::ErrorKind::PermissionDenied, "the counters' file belongs to another user"));
        }
        if md.len() != size as u64 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the counters' file has {} bytes, this build's counters {size}: another version of session_proxy made it", md.len()),
            ));
        }
        // SAFETY: a read-only shared mapping of the whole file, never unmapped; only atomic loads read it.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ, libc::MAP_SHARED, f.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: as above.
        let block = unsafe { &*p.cast::<Block>() };
        Ok(Registry { block, shared: true, local_because: None, file: None })
    }

    /// The file other processes read the counters from, if any.
    pub fn file(&self) -> Option<&std::path::Path> {
        self.file.as_ref().map(|(p, _)| p.as_path())
    }

    /// Removes the counters' file, when this process made it (php-fpm's workers, forked from the
    /// master, share the registry but leave the file to it); the mapping stays valid.
    pub fn remove_file(&self) {
        if let Some((path, pid)) = &self.file {
            if *pid == std::process::id() {
                let _ = std::fs::remove_file(path);
            }
        }
    }

    /// An anonymous shared mapping for the table (never unmapped: it lives as long as the process).
    pub fn shared() -> std::io::Result<Self> {
        let size = std::mem::size_of::<Block>();
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), size, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | libc::MAP_ANONYMOUS, -1, 0)
        };
        if p == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: page-aligned, zero-filled, `size` bytes, never unmapped; zeroed atomics are valid.
        let block = unsafe { &*p.cast::<Block>() };
        Ok(Registry { block, shared: true, local_because: None, file: None })
    }

    /// Counters of this process only.
    pub fn local() -> Self {
        // SAFETY: all-zero bytes are valid AtomicU64s.
        let block = unsafe { Box::<Block>::new_zeroed().assume_init() };
        Registry { block: Box::leak(block), shared: false, local_because: None, file: None }
    }

    /// Whether the counters are shared with forked children (all php-fpm workers of a pool).
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Why the counters are process-local (None when shared, or local by choice).
    pub fn local_because(&self) -> Option<&str> {
        self.local_because.as_deref()
    }

    fn engine(&self, e: EngineKind) -> &EngineBlock {
        &self.block.engines[e as usize]
    }

    pub fn add(&self, e: EngineKind, c: Counter, n: u64) {
        self.engine(e).counters[c as usize].fetch_add(n, Relaxed);
    }

    pub fn refused(&self, e: EngineKind, why: Refusal) {
        self.engine(e).refused[why as usize].fetch_add(1, Relaxed);
    }

    /// A lock taken after waiting `waited` (zero when it was free at once).
    pub fn lock_acquired(&self, e: EngineKind, waited: Duration) {
        let b = self.engine(e);
        b.counters[Counter::LockAcquisitions as usize].fetch_add(1, Relaxed);
        let us = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX);
        let i = LOCK_WAIT_BUCKETS_MS.iter().position(|&ms| us <= ms * 1000).unwrap_or(BUCKETS - 1);
        b.wait_buckets[i].fetch_add(1, Relaxed);
        b.wait_sum_us.fetch_add(us, Relaxed);
    }

    /// A storage error of `kind` at `at` (a host or path, masked: it is shown as is).
    pub fn storage_error(&self, e: EngineKind, kind: &str, at: &str) {
        let (kind, at) = (cut(kind, KIND_MAX), cut(at, AT_MAX));
        let want = head(e, kind.len(), at.len());
        let text = pack(kind, at);
        for slot in &self.block.slots {
            let mut h = slot.head.load(Acquire);
            if h == FREE {
                match slot.head.compare_exchange(FREE, WRITING, Acquire, Acquire) {
                    Ok(_) => {
                        for (w, v) in slot.text.iter().zip(text) {
                            w.store(v, Relaxed);
                        }
                        slot.count.fetch_add(1, Relaxed);
                        slot.head.store(want, Release);
                        return;
                    }
                    Err(now) => h = now,
                }
            }
            let mut spins = 0;
            while h == WRITING && spins < PUBLISH_SPINS {
                std::hint::spin_loop();
                h = slot.head.load(Acquire);
                spins += 1;
            }
            if h == want && slot.text.iter().zip(text).all(|(w, v)| w.load(Relaxed) == v) {
                slot.count.fetch_add(1, Relaxed);
                return;
            }
        }
        self.engine(e).errors_other.fetch_add(1, Relaxed);
    }

    /// The counters now (each read on its own: a snapshot taken while others count is not one instant).
    pub fn snapshot(&self) -> Snapshot {
        let mut engines: Vec<EngineStats> = EngineKind::ALL
            .iter()
            .map(|&engine| {
                let b = self.engine(engine);
                let mut cumulative = 0;
                let buckets = std::array::from_fn(|i| {
                    cumulative += b.wait_buckets[i].load(Relaxed);
                    cumulative
                });
                EngineStats {
                    engine,
                    counters: std::array::from_fn(|i| b.counters[i].load(Relaxed)),
                    refused: std::array::from_fn(|i| b.refused[i].load(Relaxed)),
                    lock_wait: Histogram { buckets, sum: Duration::from_micros(b.wait_sum_us.load(Relaxed)) },
                    errors: Vec::new(),
                }
            })
            .collect();
        for slot in &self.block.slots {
            let h = slot.head.load(Acquire);
            if h & 0xff != READY {
                continue;
            }
            let (engine, kind_len, at_len) = ((h >> 8 & 0xff) as usize, (h >> 16 & 0xffff) as usize, (h >> 32) as usize);
            let bytes: Vec<u8> = slot.text.iter().flat_map(|w| w.load(Relaxed).to_le_bytes()).collect();
            let text = |r: std::ops::Range<usize>| String::from_utf8_lossy(&bytes[r]).into_owned();
            if let Some(s) = engines.get_mut(engine) {
                s.errors.push(ErrorCount {
                    kind: text(0..kind_len),
                    at: text(kind_len..kind_len + at_len),
                    count: slot.count.load(Relaxed),
                });
            }
        }
        for s in &mut engines {
            let other = self.engine(s.engine).errors_other.load(Relaxed);
            if other > 0 {
                s.errors.push(ErrorCount { kind: OTHER.into(), at: OTHER.into(), count: other });
            }
        }
        Snapshot { shared: self.shared, engines }
    }
}

impl Default for Registry {
    fn default() -> Self {
        Self::new()
    }
}

/// The extension's counters; the skin calls this at MINIT so that the block exists before fpm forks.
pub fn global() -> &'static Registry {
    static GLOBAL: OnceLock<Registry> = OnceLock::new();
    GLOBAL.get_or_init(Registry::new)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub shared: bool,
    /// One per engine, in `EngineKind::ALL` order.
    pub engines: Vec<EngineStats>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineStats {
    pub engine: EngineKind,
    counters: [u64; COUNTERS],
    refused: [u64; REFUSALS],
    pub lock_wait: Histogram,
    /// By kind and place, in the order the places were first seen; "other" last.
    pub errors: Vec<ErrorCount>,
}

impl EngineStats {
    pub fn get(&self, c: Counter) -> u64 {
        self.counters[c as usize]
    }

    pub fn refused(&self, why: Refusal) -> u64 {
        self.refused[why as usize]
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Histogram {
    /// Cumulative counts: waits up to `LOCK_WAIT_BUCKETS_MS[i]`, the last one all of them (+Inf).
    pub buckets: [u64; BUCKETS],
    pub sum: Duration,
}

impl Histogram {
    pub fn count(&self) -> u64 {
        self.buckets[BUCKETS - 1]
    }

    /// The buckets' labels as milliseconds ("+Inf" last).
    pub fn bounds_ms() -> impl Iterator<Item = Option<u64>> {
        LOCK_WAIT_BUCKETS_MS.iter().map(|&b| Some(b)).chain([None])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorCount {
    pub kind: String,
    pub at: String,
    pub count: u64,
}

/// A label value in the text format: backslash, double quote and line feed escaped.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

const PREFIX: &str = "session_proxy_";

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {PREFIX}{name} {help}\n# TYPE {PREFIX}{name} {kind}");
}

/// The counters in Prometheus' text exposition format 0.0.4 (`Content-Type: text/plain; version=0.0.4`).
pub fn render_prometheus(s: &Snapshot) -> String {
    let mut out = String::new();
    let engine = |e: &EngineStats| format!("engine=\"{}\"", e.engine.name());
    for c in Counter::ALL {
        let name = format!("{}_total", c.name());
        family(&mut out, &name, "counter", c.help());
        for e in &s.engines {
            let _ = writeln!(out, "{PREFIX}{name}{{{}}} {}", engine(e), e.get(c));
        }
    }
    family(&mut out, "writes_refused_total", "counter", "Session writes refused, by cause.");
    for e in &s.engines {
        for why in Refusal::ALL {
            let _ = writeln!(out, "{PREFIX}writes_refused_total{{{},cause=\"{}\"}} {}", engine(e), why.name(), e.refused(why));
        }
    }
    family(&mut out, "storage_errors_total", "counter", "Storage errors, by kind and host or path.");
    for e in &s.engines {
        for x in &e.errors {
            let _ = writeln!(
                out,
                "{PREFIX}storage_errors_total{{{},kind=\"{}\",at=\"{}\"}} {}",
                engine(e),
                escape_label(&x.kind),
                escape_label(&x.at),
                x.count
            );
        }
    }
    family(&mut out, "lock_wait_seconds", "histogram", "Time waited for a session lock before taking it.");
    for e in &s.engines {
        for (bound, n) in Histogram::bounds_ms().zip(e.lock_wait.buckets) {
            let le = bound.map_or("+Inf".to_string(), |ms| (ms as f64 / 1000.0).to_string());
            let _ = writeln!(out, "{PREFIX}lock_wait_seconds_bucket{{{},le=\"{le}\"}} {n}", engine(e));
        }
        let _ = writeln!(out, "{PREFIX}lock_wait_seconds_sum{{{}}} {}", engine(e), e.lock_wait.sum.as_secs_f64());
        let _ = writeln!(out, "{PREFIX}lock_wait_seconds_count{{{}}} {}", engine(e), e.lock_wait.count());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn counts_from_many_threads() {
        let r: &'static Registry = Box::leak(Box::new(Registry::local()));
        let threads: Vec<_> = (0..8)
            .map(|t| {
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        r.add(EngineKind::Redis, Counter::Requests, 1);
                        r.add(EngineKind::Files, Counter::BytesWritten, 3);
                        r.lock_acquired(EngineKind::Sqlite, Duration::from_millis(t));
                        r.refused(EngineKind::Memcached, Refusal::TooLarge);
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let s = r.snapshot();
        assert!(!s.shared);
        let [sqlite, files, redis, memcached, _pgsql, _mysql] = &s.engines[..] else { panic!() };
        assert_eq!(redis.get(Counter::Requests), 80_000);
        assert_eq!(files.get(Counter::BytesWritten), 240_000);
        assert_eq!(sqlite.get(Counter::LockAcquisitions), 80_000);
        assert_eq!(sqlite.lock_wait.count(), 80_000);
        // waits of 0..7 ms: 0 and 1 ms in the first bucket, 2..5 in the second, 6 and 7 in the third.
        assert_eq!(sqlite.lock_wait.buckets[..3], [20_000, 60_000, 80_000]);
        assert_eq!(sqlite.lock_wait.sum, Duration::from_millis(10_000 * (0..8).sum::<u64>()));
        assert_eq!(memcached.refused(Refusal::TooLarge), 80_000);
        assert_eq!(memcached.refused(Refusal::LockLost), 0);
        assert_eq!(redis.get(Counter::Reads), 0);
        assert_eq!(files.get(Counter::Requests), 0);
    }

    fn wait_child(pid: libc::pid_t) {
        let mut status = 0;
        // SAFETY: our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status}");
    }

    /// What php-fpm does: the block is made first, then workers are forked; each worker's counts are
    /// seen by the parent and by the others.
    #[test]
    fn forked_children_count_into_the_parents_block() {
        let r = Registry::shared().expect("an anonymous shared mapping");
        assert!(r.is_shared());
        r.add(EngineKind::Redis, Counter::Requests, 1);
        let children: Vec<libc::pid_t> = (0..4)
            .map(|i| {
                // SAFETY: the child only does atomic adds in memory mapped before the fork, then _exit.
                match unsafe { libc::fork() } {
                    0 => {
                        for _ in 0..1000 {
                            r.add(EngineKind::Redis, Counter::Requests, 1);
                        }
                        r.lock_acquired(EngineKind::Redis, Duration::from_millis(200));
                        r.storage_error(EngineKind::Redis, "timeout", "redis://127.0.0.1:6379");
                        r.storage_error(EngineKind::Redis, "unavailable", &format!("redis://h{i}:6379"));
                        unsafe { libc::_exit(0) }
                    }
                    -1 => panic!("fork: {}", std::io::Error::last_os_error()),
                    pid => pid,
                }
            })
            .collect();
        children.into_iter().for_each(wait_child);
        let s = r.snapshot();
        let redis = &s.engines[EngineKind::Redis as usize];
        assert_eq!(redis.get(Counter::Requests), 4001);
        assert_eq!(redis.lock_wait.count(), 4);
        assert_eq!(redis.lock_wait.buckets[4], 0, "200 ms is above the 100 ms bucket");
        assert_eq!(redis.lock_wait.buckets[5], 4, "and within the 500 ms one");
        let errors: BTreeMap<(&str, &str), u64> = redis.errors.iter().map(|e| ((&*e.kind, &*e.at), e.count)).collect();
        let mut want = BTreeMap::from([(("timeout", "redis://127.0.0.1:6379"), 4)]);
        for i in 0..4 {
            want.insert(("unavailable", ["redis://h0:6379", "redis://h1:6379", "redis://h2:6379", "redis://h3:6379"][i]), 1);
        }
        assert_eq!(errors, want);
        // A process-local registry is not seen across a fork.
        let l = Registry::local();
        // SAFETY: as above.
        match unsafe { libc::fork() } {
            0 => {
                l.add(EngineKind::Files, Counter::Reads, 1);
                unsafe { libc::_exit(0) }
            }
            pid => wait_child(pid),
        }
        assert_eq!(l.snapshot().engines[EngineKind::Files as usize].get(Counter::Reads), 0);
    }

    #[test]
    fn histogram_buckets_hold_their_upper_bound() {
        let r = Registry::local();
        let e = EngineKind::Files;
        let waits_us = [0, 1000, 1001, 5000, 5001, 10_000, 50_000, 100_000, 100_001, 500_000, 1_000_000, 5_000_000, 5_000_001, 3_600_000_000];
        for us in waits_us {
            r.lock_acquired(e, Duration::from_micros(us));
        }
        let h = &r.snapshot().engines[e as usize].lock_wait;
        // le=1ms: 0, 1000; le=5: +1001, 5000; le=10: +5001, 10000; le=50: +50000; le=100: +100000;
        // le=500: +100001, 500000; le=1000: +1000000; le=5000: +5000000; +Inf: +5000001, 1 h.
        assert_eq!(h.buckets, [2, 4, 6, 7, 8, 10, 11, 12, 14]);
        assert_eq!(h.count(), waits_us.len() as u64);
        assert_eq!(h.sum, Duration::from_micros(waits_us.iter().sum()));
    }

    #[test]
    fn error_labels_fill_the_table_then_count_as_other() {
        let r: &'static Registry = Box::leak(Box::new(Registry::local()));
        // Many threads report the same few places at once: each place gets exactly one slot.
        let threads: Vec<_> = (0..8)
            .map(|_| {
                std::thread::spawn(move || {
                    for i in 0..400 {
                        r.storage_error(EngineKind::Memcached, "timeout", &format!("memcached://m{}:11211", i % 4));
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let s = r.snapshot();
        let m = &s.engines[EngineKind::Memcached as usize].errors;
        assert_eq!(m.len(), 4, "{m:?}");
        assert!(m.iter().all(|e| e.count == 800 && e.kind == "timeout"), "{m:?}");
        // The same place under another engine or kind is a row of its own.
        r.storage_error(EngineKind::Redis, "timeout", "memcached://m0:11211");
        r.storage_error(EngineKind::Memcached, "unavailable", "memcached://m0:11211");
        // Fill the table: 64 slots, 6 taken.
        for i in 0..ERROR_SLOTS - 6 {
            r.storage_error(EngineKind::Sqlite, "backend", &format!("/var/db/{i}.sqlite"));
        }
        // Full: new places count as "other", per engine; known places still count in their own row.
        r.storage_error(EngineKind::Sqlite, "backend", "/var/db/new.sqlite");
        r.storage_error(EngineKind::Sqlite, "corrupt", "/var/db/other.sqlite");
        r.storage_error(EngineKind::Files, "unavailable", "/sessions");
        r.storage_error(EngineKind::Sqlite, "backend", "/var/db/0.sqlite");
        let s = r.snapshot();
        let sqlite = &s.engines[EngineKind::Sqlite as usize].errors;
        assert_eq!(sqlite.len(), ERROR_SLOTS - 6 + 1);
        assert_eq!(sqlite.iter().find(|e| e.at == "/var/db/0.sqlite").unwrap().count, 2);
        assert_eq!(sqlite.last().unwrap(), &ErrorCount { kind: OTHER.into(), at: OTHER.into(), count: 2 });
        let files = &s.engines[EngineKind::Files as usize].errors;
        assert_eq!(files, &[ErrorCount { kind: OTHER.into(), at: OTHER.into(), count: 1 }]);
        let redis = &s.engines[EngineKind::Redis as usize].errors;
        assert_eq!(redis, &[ErrorCount { kind: "timeout".into(), at: "memcached://m0:11211".into(), count: 1 }]);
        let total: u64 = s.engines.iter().flat_map(|e| &e.errors).map(|e| e.count).sum();
        assert_eq!(total, 8 * 400 + 2 + (ERROR_SLOTS as u64 - 6) + 4);
    }

    #[test]
    fn long_labels_are_cut_at_a_character_boundary() {
        let r = Registry::local();
        let at = format!("/{}", "é".repeat(AT_MAX));
        r.storage_error(EngineKind::Files, "ünavailable-and-then-some-more", &at);
        r.storage_error(EngineKind::Files, "ünavailable-and-then-some-more", &at);
        let s = r.snapshot();
        let e = &s.engines[EngineKind::Files as usize].errors;
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].count, 2);
        assert_eq!(e[0].kind, cut("ünavailable-and-then-some-more", KIND_MAX));
        assert!(e[0].kind.len() <= KIND_MAX && e[0].at.len() <= AT_MAX && at.starts_with(&e[0].at), "{e:?}");
        assert_eq!(e[0].at.len(), AT_MAX - 1, "a 2-byte character does not fit the last byte");
    }

    /// One sample of the text format, parsed back: name, labels (unescaped), value.
    fn parse_sample(line: &str) -> (String, BTreeMap<String, String>, f64) {
        let (name, rest) = line.split_at(line.find(['{', ' ']).expect("a name"));
        let mut labels = BTreeMap::new();
        let mut rest = rest;
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices();
            loop {
                let (start, _) = chars.next().expect("a label or }");
                if r[start..].starts_with('}') {
                    rest = &r[start + 1..];
                    break;
                }
                let eq = r[start..].find("=\"").expect("name=\"") + start;
                let key = r[start..eq].trim_start_matches(',').to_string();
                assert!(key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "label name {key:?}");
                for _ in start..eq + 1 {
                    chars.next();
                }
                let mut value = String::new();
                loop {
                    match chars.next().expect("an unterminated label value").1 {
                        '"' => break,
                        '\\' => match chars.next().unwrap().1 {
                            '\\' => value.push('\\'),
                            '"' => value.push('"'),
                            'n' => value.push('\n'),
                            c => panic!("bad escape \\{c}"),
                        },
                        '\n' => panic!("raw newline in a label value"),
                        c => value.push(c),
                    }
                }
                assert!(labels.insert(key, value).is_none(), "duplicate label in {line}");
            }
        }
        let value = rest.strip_prefix(' ').expect("one space before the value");
        let value = if value == "+Inf" { f64::INFINITY } else { value.parse().expect("a number") };
        (name.to_string(), labels, value)
    }

    #[test]
    fn prometheus_text_parses_back_to_the_counters() {
        let r = Registry::local();
        r.add(EngineKind::Redis, Counter::Requests, 12);
        r.add(EngineKind::Memcached, Counter::BytesRead, 4096);
        r.refused(EngineKind::Redis, Refusal::LockLost);
        r.refused(EngineKind::Memcached, Refusal::TooLarge);
        r.refused(EngineKind::Memcached, Refusal::TooLarge);
        r.lock_acquired(EngineKind::Redis, Duration::from_millis(0));
        r.lock_acquired(EngineKind::Redis, Duration::from_millis(200));
        r.lock_acquired(EngineKind::Redis, Duration::from_secs(9));
        let nasty = "C:\\dir\\\"quoted\"\nnext line";
        r.storage_error(EngineKind::Files, "unavailable", nasty);
        r.storage_error(EngineKind::Files, "unavailable", nasty);
        r.storage_error(EngineKind::Redis, "time\"out", "redis://127.0.0.1:6379");
        let snap = r.snapshot();
        let text = render_prometheus(&snap);
        assert!(text.ends_with('\n'));

        // Every sample line belongs to the family announced by the last # TYPE, which has a # HELP.
        let mut samples: BTreeMap<(String, BTreeMap<String, String>), f64> = BTreeMap::new();
        let (mut help, mut family, mut kind) = (None::<String>, None::<String>, None::<String>);
        for line in text.lines() {
            if let Some(h) = line.strip_prefix("# HELP ") {
                help = Some(h.split(' ').next().unwrap().to_string());
            } else if let Some(t) = line.strip_prefix("# TYPE ") {
                let (n, k) = t.split_once(' ').unwrap();
                assert_eq!(help.as_deref(), Some(n), "# TYPE {n} without its # HELP");
                assert!(["counter", "histogram"].contains(&k));
                (family, kind) = (Some(n.to_string()), Some(k.to_string()));
            } else {
                let (name, labels, value) = parse_sample(line);
                let fam = family.as_deref().expect("a sample before any # TYPE");
                let ok = match kind.as_deref() {
                    Some("histogram") => ["_bucket", "_sum", "_count"].iter().any(|s| name == format!("{fam}{s}")),
                    _ => name == fam && name.ends_with("_total"),
                };
                assert!(ok, "{name} under family {fam}");
                assert!(samples.insert((name, labels), value).is_none(), "duplicate sample: {line}");
            }
        }

        let get = |name: &str, labels: &[(&str, &str)]| -> f64 {
            let l = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            *samples.get(&(format!("session_proxy_{name}"), l)).unwrap_or_else(|| panic!("no sample {name} {labels:?}"))
        };
        // Every counter of every engine, against the snapshot.
        let mut expected = 0;
        for e in &snap.engines {
            let en = e.engine.name();
            for c in Counter::ALL {
                assert_eq!(get(&format!("{}_total", c.name()), &[("engine", en)]), e.get(c) as f64);
                expected += 1;
            }
            for why in Refusal::ALL {
                assert_eq!(get("writes_refused_total", &[("engine", en), ("cause", why.name())]), e.refused(why) as f64);
                expected += 1;
            }
            for x in &e.errors {
                assert_eq!(get("storage_errors_total", &[("engine", en), ("kind", &x.kind), ("at", &x.at)]), x.count as f64);
                expected += 1;
            }
            for (bound, n) in Histogram::bounds_ms().zip(e.lock_wait.buckets) {
                let le = bound.map_or("+Inf".to_string(), |ms| (ms as f64 / 1000.0).to_string());
                assert_eq!(get("lock_wait_seconds_bucket", &[("engine", en), ("le", &le)]), n as f64);
                expected += 1;
            }
            assert_eq!(get("lock_wait_seconds_sum", &[("engine", en)]), e.lock_wait.sum.as_secs_f64());
            assert_eq!(get("lock_wait_seconds_count", &[("engine", en)]), e.lock_wait.count() as f64);
            expected += 2;
        }
        assert_eq!(samples.len(), expected, "samples that are not in the snapshot");

        // And the values themselves, written out.
        assert_eq!(get("requests_total", &[("engine", "redis")]), 12.0);
        assert_eq!(get("read_bytes_total", &[("engine", "memcached")]), 4096.0);
        assert_eq!(get("writes_refused_total", &[("engine", "memcached"), ("cause", "too_large")]), 2.0);
        assert_eq!(get("storage_errors_total", &[("engine", "files"), ("kind", "unavailable"), ("at", nasty)]), 2.0);
        assert_eq!(get("storage_errors_total", &[("engine", "redis"), ("kind", "time\"out"), ("at", "redis://127.0.0.1:6379")]), 1.0);
        let le = |s: &str| get("lock_wait_seconds_bucket", &[("engine", "redis"), ("le", s)]);
        assert_eq!([le("0.001"), le("0.1"), le("0.5"), le("5"), le("+Inf")], [1.0, 1.0, 2.0, 2.0, 3.0]);
        assert_eq!(get("lock_wait_seconds_sum", &[("engine", "redis")]), 9.2);
        assert_eq!(get("lock_wait_seconds_count", &[("engine", "redis")]), 3.0);
        assert!(text.contains(r#"at="C:\\dir\\\"quoted\"\nnext line""#), "{text}");
        assert!(text.contains("session_proxy_requests_total{engine=\"redis\"} 12\n"));
    }

    #[test]
    fn escaping() {
        assert_eq!(escape_label("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
        assert_eq!(escape_label("plain:/x?y=1"), "plain:/x?y=1");
    }
}

#[cfg(test)]
mod file_tests {
    use super::*;

    #[test]
    fn a_named_block_is_read_by_another_mapping_and_removed_by_its_maker() {
        let path = std::env::temp_dir().join(format!("sp-test-metrics-{}-{}.stats", std::process::id(), crate::lock::Token::new().as_str()));
        let r = Registry::named(&path).unwrap();
        assert!(r.is_shared() && r.file() == Some(path.as_path()));
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        let reader = Registry::open_file(&path).unwrap();
        r.add(EngineKind::Redis, Counter::Migrated, 3);
        r.storage_error(EngineKind::Files, "unavailable", "/srv/sessions");
        let s = reader.snapshot();
        assert_eq!(s.engines[EngineKind::Redis as usize].get(Counter::Migrated), 3);
        assert_eq!(s.engines[EngineKind::Files as usize].errors[0].at, "/srv/sessions");
        // A file of another size (another build) is refused, not misread.
        let other = path.with_extension("short");
        std::fs::write(&other, b"x").unwrap();
        assert_eq!(Registry::open_file(&other).err().map(|e| e.kind()), Some(std::io::ErrorKind::InvalidData));
        let _ = std::fs::remove_file(&other);
        r.remove_file();
        assert!(!path.exists());
        // The mapping outlives the file.
        r.add(EngineKind::Redis, Counter::Migrated, 1);
        assert_eq!(reader.snapshot().engines[EngineKind::Redis as usize].get(Counter::Migrated), 4);
    }
}
