//! Lock owner tokens.

use std::fmt;
use std::sync::OnceLock;

/// A token that names one request's ownership of a session lock. Only the holder of the token can
/// write under the lock or release it; a request whose lock expired and was taken over finds its token
/// gone and writes nothing.
///
/// `<32 hex: random 128 bits>-<16 hex: host>-<pid>-<process start time>`: besides being unique, it says
/// which process holds the lock, so a waiter on the same host (same boot, same pid namespace) can tell
/// that the holder is gone (`holder_is_dead`) and take the lock at once instead of after lock_expire.
/// Only `[0-9a-f-]`: safe as a Redis or Memcached value (no space) and as SQLite text.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

/// FNV-1a, 64 bits: a short, stable digest (not a security boundary).
pub(crate) fn fnv64(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &c| (h ^ c as u64).wrapping_mul(0x0100_0000_01b3))
}

/// This process's id without a system call per use (glibc's getpid() is one: it was 3 of ~10 system
/// calls of a Redis cycle): cached, and forgotten in a forked child by a `pthread_atfork` handler
/// (php-fpm forks its workers from the master, pcntl_fork forks a request).
pub(crate) fn pid() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Once;
    static PID: AtomicU32 = AtomicU32::new(0);
    static AT_FORK: Once = Once::new();
    extern "C" fn forget() {
        PID.store(0, Ordering::Relaxed);
    }
    AT_FORK.call_once(|| {
        // SAFETY: registers a handler that only stores to an atomic (async-signal-safe).
        unsafe { libc::pthread_atfork(None, None, Some(forget)) };
    });
    match PID.load(Ordering::Relaxed) {
        0 => {
            let p = std::process::id();
            PID.store(p, Ordering::Relaxed);
            p
        }
        p => p,
    }
}

/// 64 fresh bits without a system call per draw (a nonce, a version): a process-wide seed from the OS
/// (once), mixed with a counter and the clock in ns (processes forked with the same seed and counter
/// still differ by the clock). Unpredictability is not needed by its users, only uniqueness.
pub(crate) fn fresh_u64() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: OnceLock<u64> = OnceLock::new();
    static DRAWS: AtomicU64 = AtomicU64::new(0);
    let seed = *SEED.get_or_init(|| {
        let mut b = [0u8; 8];
        if getrandom::fill(&mut b).is_err() {
            b = (u64::from(std::process::id()) << 40).to_le_bytes();
        }
        u64::from_le_bytes(b)
    });
    let ns = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    // splitmix64's finaliser over the seed, the draw and the clock.
    let mut z = seed ^ ns.rotate_left(32) ^ DRAWS.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// This host's identity for lock holders: the boot (`/proc/sys/kernel/random/boot_id`) and the pid
/// namespace (a pid means the same process only inside one). None when /proc does not tell.
fn host() -> Option<u64> {
    static HOST: OnceLock<Option<u64>> = OnceLock::new();
    *HOST.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        let boot = std::fs::read("/proc/sys/kernel/random/boot_id").ok()?;
        let ns = std::fs::metadata("/proc/self/ns/pid").ok()?;
        let mut b = boot.trim_ascii().to_vec();
        b.extend_from_slice(format!(":{}:{}", ns.dev(), ns.ino()).as_bytes());
        Some(fnv64(&b))
    })
}

/// (state, start time in clock ticks since boot) of process `pid`, from /proc/<pid>/stat.
fn proc_stat(pid: u32) -> Option<(u8, u64)> {
    let s = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses; the fields follow the last ')'.
    let rest = &s[s.iter().rposition(|&c| c == b')')? + 1..];
    let mut f = std::str::from_utf8(rest).ok()?.split_ascii_whitespace();
    let state = f.next()?.bytes().next()?;
    // Field 22 (starttime) is the 20th after comm.
    Some((state, f.nth(18)?.parse().ok()?))
}

/// "-<host>-<pid>-<start>" for this process: read from /proc once per process (kept with the pid it
/// was made for, so a forked child — php-fpm forks its workers — makes its own), not once per request.
fn holder_tag() -> String {
    static TAG: std::sync::Mutex<Option<(u32, String)>> = std::sync::Mutex::new(None);
    let pid = pid();
    let mut tag = TAG.lock().unwrap_or_else(|e| e.into_inner());
    match &*tag {
        Some((p, t)) if *p == pid => t.clone(),
        _ => {
            let t = match (host(), proc_stat(pid)) {
                (Some(h), Some((_, start))) => format!("-{h:016x}-{pid}-{start}"),
                _ => String::new(),
            };
            *tag = Some((pid, t.clone()));
            t
        }
    }
}

impl Token {
    pub fn new() -> Self {
        let mut b = [0u8; 16];
        // getrandom only fails when the OS has no randomness source; fall back to time and pid,
        // which still separates requests (uniqueness is what locking needs).
        if getrandom::fill(&mut b).is_err() {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            b[..8].copy_from_slice(&(t.as_nanos() as u64).to_le_bytes());
            b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        }
        // Hex by hand: a format! per byte was 16 allocations per request.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let tag = holder_tag();
        let mut s = String::with_capacity(32 + tag.len());
        for x in b {
            s.push(HEX[usize::from(x >> 4)] as char);
            s.push(HEX[usize::from(x & 15)] as char);
        }
        s.push_str(&tag);
        Token(s)
    }

    /// A token read back from a store (another request's lock).
    pub fn from_stored(s: impl Into<String>) -> Self {
        Token(s.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this token names a process of this host and pid namespace (alive or not).
    pub fn is_local(&self) -> bool {
        self.holder().is_some()
    }

    /// (pid, start time) of a holder on this host and in this pid namespace.
    fn holder(&self) -> Option<(u32, u64)> {
        let mut f = self.0.split('-').skip(1);
        let (Some(h), Some(pid), Some(start), None) = (f.next(), f.next(), f.next(), f.next()) else { return None };
        let (Ok(h), Ok(pid), Ok(start)) = (u64::from_str_radix(h, 16), pid.parse::<u32>(), start.parse::<u64>()) else {
            return None;
        };
        (host() == Some(h) && pid != 0 && pid <= i32::MAX as u32).then_some((pid, start))
    }

    /// True only when this token names a process of this host and pid namespace that no longer runs
    /// (no such pid, a zombie, or the pid now belongs to a process started at another time). A holder
    /// elsewhere, a token without a holder (another handler's lock, an older version's) or any doubt:
    /// false, and the lock frees at lock_expire as before.
    pub fn holder_is_dead(&self) -> bool {
        let Some((pid, start)) = self.holder() else { return false };
        if pid == self::pid() {
            return false;
        }
        // SAFETY: signal 0 only checks that the process exists (and whether we may signal it).
        if unsafe { libc::kill(pid as libc::pid_t, 0) } != 0 {
            return std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        }
        match proc_stat(pid) {
            Some((state, now)) => matches!(state, b'Z' | b'X') || now != start,
            // Exists, but /proc does not say more (hidepid): assume alive.
            None => false,
        }
    }
}

impl Default for Token {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}…)", self.0.get(..8).unwrap_or(&self.0))
    }
}

#[cfg(test)]
mod tests {
    /// The cached pid is the child's own after a fork (the atfork handler forgets the parent's).
    #[test]
    fn pid_is_the_childs_after_a_fork() {
        let parent = pid();
        assert_eq!(parent, std::process::id());
        // SAFETY: the child only reads the cache, makes two system calls and _exits.
        let child = unsafe { libc::fork() };
        assert!(child >= 0, "fork");
        if child == 0 {
            let ok = pid() == unsafe { libc::getpid() } as u32 && pid() != parent;
            unsafe { libc::_exit(if ok { 0 } else { 1 }) };
        }
        let mut status = 0;
        // SAFETY: waits for the child made above.
        assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
        assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "the child saw the parent's pid");
        assert_eq!(pid(), parent);
    }

    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_unique_and_safe_as_values() {
        let set: HashSet<String> = (0..1000).map(|_| Token::new().0).collect();
        assert_eq!(set.len(), 1000);
        assert!(set.iter().all(|t| t.len() > 32 && t.bytes().all(|c| c.is_ascii_hexdigit() || c == b'-')));
    }

    #[test]
    fn dead_holders_are_recognised() {
        // Ourselves (and so every thread of this process): alive.
        assert!(!Token::new().holder_is_dead());
        // A child that exited and was reaped: dead.
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let start = proc_stat(pid).unwrap().1;
        let theirs = Token::from_stored(format!("{}-{:016x}-{pid}-{start}", "ab".repeat(16), host().unwrap()));
        assert!(!theirs.holder_is_dead(), "running");
        child.kill().unwrap();
        // A zombie until reaped: already dead.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(theirs.holder_is_dead(), "zombie");
        child.wait().unwrap();
        assert!(theirs.holder_is_dead(), "reaped");
        // The same pid with another start time (pid reuse): dead. Our own pid is never judged.
        let me = std::process::id();
        let reused = Token::from_stored(format!("{}-{:016x}-1-{}", "ab".repeat(16), host().unwrap(), u64::MAX));
        assert!(reused.holder_is_dead(), "pid 1 started at another time");
        let init = Token::from_stored(format!("{}-{:016x}-1-{}", "ab".repeat(16), host().unwrap(), proc_stat(1).unwrap().1));
        assert!(!init.holder_is_dead(), "pid 1 as it is");
        assert!(!Token::from_stored(format!("x-{:016x}-{me}-0", host().unwrap())).holder_is_dead());
        // Another host, a token without a holder, a phpredis value: never judged dead.
        for other in [format!("ab-{:016x}-{pid}-{start}", host().unwrap() ^ 1), "ab".repeat(16), "web1|1234".into(), "".into()] {
            assert!(!Token::from_stored(other.clone()).holder_is_dead(), "{other}");
        }
    }
}
