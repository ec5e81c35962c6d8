//! `session-proxy copy FROM TO`: every live session of FROM into TO with its remaining lifetime.
//!
//! - Streams: the source's `Scan` pages (SQLite keyset pages, a files directory walk, Redis SCAN on
//!   every server or Cluster master, Memcached's LRU crawler per server); one page in memory.
//! - Never overwrites: each session is created in TO with `Expect::Absent`, so one TO already has
//!   (copied before, or written since by a request under read-through migration: newer) stays.
//! - Resumable by that rule: run again after an interruption, it copies only what is missing (the
//!   sessions already copied are read again from FROM and skipped, no write). No checkpoint file.
//! - Lifetimes: a TTL engine's remaining TTL, or (SQLite, files) --lifetime minus the idle time, is the
//!   TTL written into a TTL engine; an age engine as TTO gets the session's idle time back (`set_idle`).

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use session_proxy::id::SessionId;
use session_proxy::store::sqlopts::Schema;
use session_proxy::store::{Engine, Expect, Expiry, Loaded, Store, StoreError, Written};

use super::{open, parse, remaining, Failure};

/// The progress display on a terminal: with an estimate, a bar with the ETA; without, a spinner with
/// the count and rate.
fn progress_bar(quiet: bool, total: Option<u64>) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    let template = match total {
        Some(_) => "{bar:30} {human_pos}/~{human_len} sessions listed, {msg} [{elapsed_precise}, {per_sec}, ETA {eta}]",
        None => "{spinner} {human_pos} sessions listed, {msg} [{elapsed_precise}, {per_sec}]",
    };
    bar.set_style(ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()));
    bar
}

/// `--progress`: plain lines on stderr for logs (where no terminal shows the bar): after the first
/// page, then at most one a second.
struct Lines {
    total: Option<u64>,
    last: Option<Instant>,
}

impl Lines {
    fn new(src_at: &str, total: Option<u64>) -> Self {
        match total {
            Some(n) => eprintln!("listing {src_at}: about {n} sessions"),
            None => eprintln!("listing {src_at}: size unknown"),
        }
        Lines { total, last: None }
    }

    fn page_done(&mut self, c: &Counts, started: Instant) {
        if self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        self.last = Some(Instant::now());
        let secs = started.elapsed().as_secs_f64();
        let rate = if secs > 0.0 { c.listed as f64 / secs } else { 0.0 };
        let done = format!("{} listed, {} copied, {} already there, {rate:.0}/s", c.listed, c.copied, c.present);
        match self.total {
            Some(n) => {
                let left = n.saturating_sub(c.listed) as f64;
                let eta = if rate > 0.0 { format!("{:.0} s", left / rate) } else { "unknown".into() };
                eprintln!("{done}, of about {n}: ETA {eta}");
            }
            None => eprintln!("{done}"),
        }
    }
}

pub struct Args {
    pub from: String,
    pub to: String,
    pub delete_source: bool,
    pub dry_run: bool,
    pub quiet: bool,
    pub progress: bool,
    pub json: bool,
    pub lifetime: Duration,
    pub page: usize,
}

/// Consecutive failed sessions after which the copy stops (a store that went down).
const MAX_FAILURES_IN_A_ROW: u32 = 20;

/// Sessions read and created per batch: one pipeline per server where the engine has them (`Bulk`).
/// Enough to spread a round trip over many sessions, few enough that a batch's data stays small in
/// memory (a page may hold a whole Memcached server's ids).
const BATCH: usize = 200;

/// Copies one batch of live sessions (id, time left): reads them from `src` and creates them in
/// `dst` with `Expect::Absent` (never over a session `dst` has), batched where each store can;
/// counts into `c` and answers each session's outcome (an error: that session failed).
fn copy_batch(src: &mut dyn Store, dst: &mut dyn Store, live: &[(&SessionId, Duration)], listed_at: std::time::Instant, a: &Args, age_target: bool, c: &mut Counts) -> Vec<Result<(), StoreError>> {
    let read_life = Expiry::new(a.lifetime);
    let ids: Vec<SessionId> = live.iter().map(|(id, _)| (*id).clone()).collect();
    let loaded: Vec<Result<Option<Loaded>, StoreError>> = match src.bulk() {
        Some(b) => match b.load_many(&ids, read_life) {
            Ok(v) => v.into_iter().map(Ok).collect(),
            Err(e) => ids.iter().map(|_| Err(e.clone())).collect(),
        },
        None => ids.iter().map(|id| src.load(id, read_life)).collect(),
    };
    let mut out: Vec<Result<(), StoreError>> = Vec::with_capacity(live.len());
    // The sessions read: their index in `live`, data and the lifetime to write them with (an age
    // engine judges "absent" by the site's lifetime; a TTL engine gets the time left).
    // The time left was listed at `listed_at`: a TTL target gets what is left now, not what was
    // left when the page was listed (a page's later batches are written seconds later under load).
    let since = listed_at.elapsed();
    let left_now = |left: Duration| left.saturating_sub(since).max(Duration::from_secs(1));
    let mut todo: Vec<(usize, Vec<u8>, Expiry)> = Vec::new();
    for (k, r) in loaded.into_iter().enumerate() {
        match r {
            Ok(Some(d)) => todo.push((k, d.data, if age_target { read_life } else { Expiry::new(left_now(live[k].1)) })),
            Ok(None) => c.vanished += 1,
            Err(e) => {
                out.push(Err(e));
                continue;
            }
        }
        out.push(Ok(()));
    }
    if a.dry_run {
        c.copied += todo.len() as u64;
        return out;
    }
    let items: Vec<(&SessionId, &[u8], Expiry)> = todo.iter().map(|(k, data, e)| (&ids[*k], &data[..], *e)).collect();
    let created: Vec<Result<bool, StoreError>> = match dst.bulk() {
        Some(b) => b.create_many(&items),
        None => items.iter().map(|(id, d, e)| dst.save(id, d, Expect::Absent, None, *e).map(|w| matches!(w, Written::Done(_)))).collect(),
    };
    for ((k, _, _), r) in todo.iter().zip(created) {
        let (id, left) = live[*k];
        let r = r.and_then(|fresh| {
            if fresh {
                if age_target {
                    if let Some(s) = dst.scanner() {
                        s.set_idle(id, a.lifetime.saturating_sub(left))?;
                    }
                }
                c.copied += 1;
            } else {
                c.present += 1;
            }
            if a.delete_source {
                src.destroy(id, None)?;
                c.deleted += 1;
            }
            Ok(())
        });
        out[*k] = r;
    }
    out
}

#[derive(Default)]
struct Counts {
    listed: u64,
    copied: u64,
    present: u64,
    expired: u64,
    vanished: u64,
    deleted: u64,
    failed: u64,
}

pub fn run(a: Args) -> Result<(), Failure> {
    let (from, to) = (parse("FROM", &a.from)?, parse("TO", &a.to)?);
    let mut src = open(&from)?;
    let mut dst = open(&to)?;
    let (src_at, dst_at) = (src.describe(), dst.describe());
    // SQLite, files and the SQL engines' native tables keep only the time of the last write: a
    // session's age is set after its write (Symfony's table keeps the writer's expiry, as a TTL).
    let age_target = matches!(to.scheme(), "sqlite" | "files") || matches!(&to, Engine::Pgsql(o) | Engine::Mysql(o) if o.schema == Schema::Native);
    if src.scanner().is_none() {
        return Err(Failure::store(format!("{src_at} cannot list its sessions")));
    }
    // The source's size, when it can tell cheaply (an upper bound on Redis and Memcached, which count
    // every key): the bar then shows an ETA; a failed estimate only costs the ETA.
    let total = src.scanner().expect("checked above").estimate().ok().flatten();
    let bar = progress_bar(a.quiet, total);
    let mut lines = a.progress.then(|| Lines::new(&src_at, total));
    let started = Instant::now();
    let mut c = Counts::default();
    let (mut cursor, mut in_a_row, mut first_error) = (String::new(), 0u32, None::<String>);
    loop {
        let page = src
            .scanner()
            .expect("checked above")
            .scan(&cursor, a.page)
            .map_err(|e| Failure::store(format!("cannot list {src_at}: {e}")))?;
        let listed_at = std::time::Instant::now();
        for batch in page.sessions.chunks(BATCH) {
            // The live sessions of the batch (expired ones are counted and skipped) and what became
            // of each, in listing order.
            let mut live: Vec<(&SessionId, Duration)> = Vec::with_capacity(batch.len());
            for l in batch {
                c.listed += 1;
                bar.inc(1);
                if bar.length().is_some_and(|n| c.listed > n) {
                    // More than estimated (written meanwhile): the bar's end moves.
                    bar.set_length(c.listed);
                }
                match remaining(l.left, a.lifetime) {
                    Some(left) => live.push((&l.id, left)),
                    None => c.expired += 1,
                }
            }
            let outcomes = copy_batch(&mut *src, &mut *dst, &live, listed_at, &a, age_target, &mut c);
            for ((id, _), r) in live.iter().zip(outcomes) {
                match r {
                    Ok(()) => in_a_row = 0,
                    Err(e) => {
                        c.failed += 1;
                        in_a_row += 1;
                        first_error.get_or_insert_with(|| format!("session {}: {e}", id.short()));
                        if in_a_row >= MAX_FAILURES_IN_A_ROW {
                            bar.finish_and_clear();
                            return Err(Failure::store(format!(
                                "stopped after {in_a_row} failed sessions in a row ({} copied so far; run again to go on): {}",
                                c.copied,
                                first_error.unwrap_or_default()
                            )));
                        }
                    }
                }
            }
            bar.set_message(format!("{} copied, {} already there", c.copied, c.present));
        }
        if let Some(l) = lines.as_mut() {
            l.page_done(&c, started);
        }
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { c.listed as f64 / secs } else { 0.0 };
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "from": src_at, "to": dst_at, "dry_run": a.dry_run,
                "listed": c.listed, "copied": c.copied, "already_present": c.present, "expired": c.expired,
                "vanished": c.vanished, "deleted": c.deleted, "failed": c.failed,
                "seconds": (secs * 1000.0).round() / 1000.0, "sessions_per_second": rate.round(),
                "estimated_total": total,
            })
        );
    } else if !a.quiet {
        eprintln!(
            "{} sessions listed in {src_at}: {} {}copied to {dst_at}, {} already there, {} expired, {} gone meanwhile, {} failed{} ({secs:.1} s, {rate:.0}/s)",
            c.listed,
            c.copied,
            if a.dry_run { "would be " } else { "" },
            c.present,
            c.expired,
            c.vanished,
            c.failed,
            if a.delete_source { format!(", {} deleted from the source", c.deleted) } else { String::new() },
        );
    }
    match first_error {
        Some(e) => Err(Failure::store(format!("{} sessions failed; the first: {e}", c.failed))),
        None => Ok(()),
    }
}
