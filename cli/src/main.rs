//! `session-proxy`: the operator's tool over the same core as the extension (DSN parser, engines).
//! Every DSN is any `session.save_path` form; messages name hosts and paths, never a password.

mod check;
mod copy;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use session_proxy::dsn;
use session_proxy::store::{self, Engine, Expiry, Left, Store};

/// Copy, check, list and collect PHP sessions in any store session_proxy speaks; read the counters
/// of a running php-fpm pool.
#[derive(Parser)]
#[command(name = "session-proxy", version, about, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Copy every live session from FROM to TO with its remaining lifetime. Streams (bounded
    /// memory), never overwrites a session TO already has (so it never replaces a newer one, and a
    /// run again after an interruption copies only what is missing), keeps each session's lifetime.
    Copy {
        /// The old store (a session.save_path DSN).
        from: String,
        /// The new store (a session.save_path DSN).
        to: String,
        /// Delete each session from FROM once it is in TO.
        #[arg(long)]
        delete_source: bool,
        /// List and count what would be copied; write nothing.
        #[arg(long)]
        dry_run: bool,
        /// No progress display.
        #[arg(long, short)]
        quiet: bool,
        /// Progress as plain lines on stderr (for logs: the bar shows on a terminal only): the
        /// estimated total, then the count, rate and ETA after the first page and once a second.
        #[arg(long, conflicts_with = "quiet")]
        progress: bool,
        /// Print a JSON summary on stdout.
        #[arg(long)]
        json: bool,
        /// session.gc_maxlifetime of the site, in seconds: how long a session lives after its last
        /// write in SQLite and files (which keep only that time), and the lifetime of one stored
        /// without expiry.
        #[arg(long, default_value_t = 1440, value_parser = clap::value_parser!(u64).range(1..=315_360_000))]
        lifetime: u64,
        /// Sessions asked for per page of the listing.
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        page: u64,
    },
    /// Connect, write, read, lock and delete a probe session, timing each step, and say what is
    /// wrong (DNS, refused, timeout, auth, TLS, permissions, schema).
    Check {
        /// The store (a session.save_path DSN).
        dsn: String,
        /// Print the steps as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// The counters of a running php-fpm pool (or any process group using the extension), read from
    /// its shared block in /dev/shm.
    Stats {
        /// The pid of the process that loaded the extension (php-fpm's master); default: the only one.
        #[arg(long)]
        pid: Option<u32>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Delete the sessions idle for longer than --lifetime (SQLite, files, Memcached; Redis expires
    /// sessions itself).
    Gc {
        /// The store (a session.save_path DSN).
        dsn: String,
        /// Seconds of idleness after which a session is deleted (session.gc_maxlifetime).
        #[arg(long, default_value_t = 1440, value_parser = clap::value_parser!(u64).range(1..=315_360_000))]
        lifetime: u64,
    },
    /// List the stored sessions, ids masked (their first 6 characters), with what each has left.
    Ls {
        /// The store (a session.save_path DSN).
        dsn: String,
        /// Only the sessions bound to this user (SessionProxy\set_user or session_proxy.user_key), from
        /// the engine's per-user index, oldest first.
        #[arg(long)]
        user: Option<String>,
        /// At most this many sessions.
        #[arg(long)]
        limit: Option<u64>,
        /// session.gc_maxlifetime, for the time left of SQLite and files sessions.
        #[arg(long, default_value_t = 1440)]
        lifetime: u64,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
}

/// A failure of the tool, in words; the exit status says which kind.
pub struct Failure {
    pub msg: String,
    pub code: u8,
}

impl Failure {
    /// Bad input (a DSN that does not parse): exit status 2, as clap's usage errors.
    pub fn usage(msg: String) -> Self {
        Failure { msg, code: 2 }
    }
    /// The store failed: exit status 1.
    pub fn store(msg: String) -> Self {
        Failure { msg, code: 1 }
    }
}

/// A DSN given as argument `what`; its error names the argument (passwords masked).
pub fn parse(what: &str, dsn: &str) -> Result<Engine, Failure> {
    dsn::parse(dsn, &std::env::temp_dir()).map_err(|e| {
        Failure::usage(match e {
            dsn::ConfigError::BadDsn(e) => e.for_directive(what),
            e => e.to_string(),
        })
    })
}

/// Opens `engine` without layers (the tool counts nothing into a pool's counters).
pub fn open(engine: &Engine) -> Result<Box<dyn Store>, Failure> {
    store::connect(engine).map_err(|e| Failure::store(format!("cannot open the store: {e}")))
}

/// What a listed session has left, given the site's lifetime (None: expired).
pub fn remaining(left: Left, lifetime: Duration) -> Option<Duration> {
    match left {
        Left::Ttl(d) => Some(d).filter(|d| !d.is_zero()),
        Left::Idle(a) => lifetime.checked_sub(a).filter(|d| !d.is_zero()),
        Left::Unbounded => Some(lifetime),
    }
}

fn gc(dsn: &str, lifetime: u64) -> Result<(), Failure> {
    let engine = parse("DSN", dsn)?;
    let mut s = open(&engine)?;
    let at = s.describe();
    match s.collector() {
        None => println!("{at}: nothing to collect ({} expires sessions itself)", engine.scheme()),
        Some(c) => {
            let n = c.gc(Expiry::new(Duration::from_secs(lifetime))).map_err(|e| Failure::store(format!("gc in {at} failed: {e}")))?;
            println!("{at}: {n} sessions idle for more than {lifetime} s deleted");
        }
    }
    Ok(())
}

fn ls(dsn: &str, user: Option<String>, limit: Option<u64>, lifetime: u64, json: bool) -> Result<(), Failure> {
    let engine = parse("DSN", dsn)?;
    let mut s = open(&engine)?;
    let at = s.describe();
    if let Some(user) = user {
        return ls_user(&mut *s, &at, &user, limit, lifetime, json);
    }
    let Some(scan) = s.scanner() else { return Err(Failure::store(format!("{at} cannot list its sessions"))) };
    let life = Duration::from_secs(lifetime);
    let (mut cursor, mut n) = (String::new(), 0u64);
    loop {
        let page = scan.scan(&cursor, 1000).map_err(|e| Failure::store(format!("cannot list {at}: {e}")))?;
        for l in page.sessions {
            if limit.is_some_and(|max| n >= max) {
                return Ok(());
            }
            let left = remaining(l.left, life).map(|d| d.as_secs());
            if json {
                println!("{}", serde_json::json!({"id": l.id.short(), "left_s": left}));
            } else {
                println!("{:<8} {}", l.id.short(), left.map_or("expired".to_string(), |s| format!("{s} s left")));
            }
            n += 1;
        }
        match page.next {
            Some(c) => cursor = c,
            None => return Ok(()),
        }
    }
}

/// `ls --user`: the user's live sessions from the per-user index, ids masked, with their times.
fn ls_user(s: &mut dyn session_proxy::store::Store, at: &str, user: &str, limit: Option<u64>, lifetime: u64, json: bool) -> Result<(), Failure> {
    use session_proxy::store::users::User;
    let user = User::new(user.as_bytes()).map_err(|e| Failure::usage(format!("--user: {e}")))?;
    let Some(index) = s.users() else { return Err(Failure::store(format!("{at} keeps no per-user session index"))) };
    let listed = index
        .list(&user, Expiry::new(Duration::from_secs(lifetime)))
        .map_err(|e| Failure::store(format!("cannot list the user's sessions in {at}: {e}")))?;
    for l in listed.iter().take(limit.map_or(usize::MAX, |n| n as usize)) {
        if json {
            println!("{}", serde_json::json!({"id": l.id.short(), "created": l.created, "last_active": l.last_active}));
        } else {
            println!("{:<8} created {:.0}, last active {:.0}", l.id.short(), l.created, l.last_active);
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Copy { from, to, delete_source, dry_run, quiet, progress, json, lifetime, page } => copy::run(copy::Args {
            from,
            to,
            delete_source,
            dry_run,
            quiet,
            progress,
            json,
            lifetime: Duration::from_secs(lifetime),
            page: page as usize,
        }),
        Cmd::Check { dsn, json } => check::run(&dsn, json),
        Cmd::Stats { pid, json } => stats::run(pid, json),
        Cmd::Gc { dsn, lifetime } => gc(&dsn, lifetime),
        Cmd::Ls { dsn, user, limit, lifetime, json } => ls(&dsn, user, limit, lifetime, json),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("session-proxy: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}
