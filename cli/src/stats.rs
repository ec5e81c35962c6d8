//! `session-proxy stats`: the counters of a running process group (php-fpm's pool: its master set
//! them up) from its file in /dev/shm (`metrics::shared_path`), as a table or JSON.

use session_proxy::metrics::{self, Counter, Histogram, Refusal, Registry, Snapshot};

use super::Failure;

fn alive(pid: u32) -> bool {
    // SAFETY: signal 0 only checks that the process exists (EPERM: it exists, another user's).
    let r = unsafe { libc::kill(pid as i32, 0) };
    let exists = r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    // A zombie (ended, not yet reaped by the parent it was handed to, as a php-fpm master started in
    // the background is) runs no more.
    exists && !zombie(pid)
}

/// Whether /proc says `pid` is a zombie (its state, the field after the parenthesized name, is Z).
fn zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| rest.starts_with('Z')))
        .unwrap_or(false)
}

fn json(s: &Snapshot, pid: u32) -> serde_json::Value {
    let mut engines = serde_json::Map::new();
    for e in &s.engines {
        let mut m = serde_json::Map::new();
        for c in Counter::ALL {
            m.insert(c.name().into(), e.get(c).into());
        }
        let buckets: serde_json::Map<String, serde_json::Value> = Histogram::bounds_ms()
            .zip(e.lock_wait.buckets)
            .map(|(b, n)| (b.map_or("+Inf".to_string(), |ms| ms.to_string()), n.into()))
            .collect();
        m.insert("lock_wait_ms".into(), serde_json::json!({"buckets": buckets, "sum_ms": e.lock_wait.sum.as_secs_f64() * 1000.0, "count": e.lock_wait.count()}));
        let refused: serde_json::Map<String, serde_json::Value> = Refusal::ALL.iter().map(|&w| (w.name().to_string(), e.refused(w).into())).collect();
        m.insert("writes_refused".into(), refused.into());
        let errors: Vec<_> = e.errors.iter().map(|x| serde_json::json!({"kind": x.kind, "at": x.at, "count": x.count})).collect();
        m.insert("storage_errors".into(), errors.into());
        engines.insert(e.engine.name().into(), m.into());
    }
    serde_json::json!({"pid": pid, "engines": engines})
}

fn table(s: &Snapshot, pid: u32) {
    println!("counters of pid {pid} ({})", metrics::shared_path(pid).display());
    print!("{:<22}", "counter");
    for e in &s.engines {
        print!("{:>14}", e.engine.name());
    }
    println!();
    let row = |label: &str, f: &dyn Fn(&metrics::EngineStats) -> String| {
        print!("{label:<22}");
        for e in &s.engines {
            print!("{:>14}", f(e));
        }
        println!();
    };
    for c in Counter::ALL {
        row(c.name(), &|e| e.get(c).to_string());
    }
    row("lock_wait_ms sum", &|e| format!("{:.1}", e.lock_wait.sum.as_secs_f64() * 1000.0));
    for w in Refusal::ALL {
        row(&format!("refused {}", w.name()), &|e| e.refused(w).to_string());
    }
    row("storage_errors", &|e| e.errors.iter().map(|x| x.count).sum::<u64>().to_string());
    for e in &s.engines {
        for x in &e.errors {
            println!("  {} error {} at {}: {}", e.engine.name(), x.kind, x.at, x.count);
        }
    }
}

pub fn run(pid: Option<u32>, as_json: bool) -> Result<(), Failure> {
    let pid = match pid {
        // A pool that ended: said so, also when its file was left behind (a killed master).
        Some(p) if !alive(p) => {
            let left = metrics::shared_path(p);
            let note = if left.exists() { format!(" (its counters' file {} was left behind)", left.display()) } else { String::new() };
            return Err(Failure::store(format!("cannot read the counters of pid {p}: no process {p} is running{note}")));
        }
        Some(p) => p,
        None => {
            let live: Vec<u32> = metrics::shared_pids().into_iter().filter(|&p| alive(p)).collect();
            match live[..] {
                [p] => p,
                [] => {
                    return Err(Failure::store(format!(
                        "no running process of this user has session_proxy's counters in {} (is php-fpm running with the extension, as this user?)",
                        metrics::SHM_DIR
                    )))
                }
                _ => {
                    let list: Vec<String> = live.iter().map(u32::to_string).collect();
                    return Err(Failure::usage(format!("several processes have counters (pids {}): choose one with --pid", list.join(", "))));
                }
            }
        }
    };
    let path = metrics::shared_path(pid);
    let r = Registry::open_file(&path).map_err(|e| Failure::store(format!("cannot read the counters of pid {pid} ({}): {e}", path.display())))?;
    let s = r.snapshot();
    if as_json {
        println!("{}", json(&s, pid));
    } else {
        table(&s, pid);
    }
    Ok(())
}
