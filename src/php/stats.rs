//! `SessionProxy\stats()`, `SessionProxy\stats_prometheus()` and the counters' table in `php --ri`:
//! the skin over `crate::metrics` (which keeps and renders the counters).

use ext_php_rs::boxed::ZBox;
use ext_php_rs::prelude::*;
use ext_php_rs::types::ZendHashTable;
use ext_php_rs::{info_table_end, info_table_header, info_table_row, info_table_start};

use super::hooks::guard;
use crate::metrics::{self, Counter, EngineStats, Histogram, Refusal, Snapshot};

fn long(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn engine_array(e: &EngineStats) -> ext_php_rs::error::Result<ZBox<ZendHashTable>> {
    let mut a = ZendHashTable::new();
    for c in Counter::ALL {
        a.insert(c.name(), long(e.get(c)))?;
    }
    let mut buckets = ZendHashTable::new();
    for (bound, n) in Histogram::bounds_ms().zip(e.lock_wait.buckets) {
        match bound {
            Some(ms) => buckets.insert_at_index(long(ms), long(n))?,
            None => buckets.insert("+Inf", long(n))?,
        }
    }
    let mut wait = ZendHashTable::new();
    wait.insert("buckets", buckets)?;
    wait.insert("sum_ms", e.lock_wait.sum.as_secs_f64() * 1000.0)?;
    wait.insert("count", long(e.lock_wait.count()))?;
    a.insert("lock_wait_ms", wait)?;
    let mut refused = ZendHashTable::new();
    for why in Refusal::ALL {
        refused.insert(why.name(), long(e.refused(why)))?;
    }
    a.insert("writes_refused", refused)?;
    let mut errors = ZendHashTable::new();
    for x in &e.errors {
        let mut row = ZendHashTable::new();
        row.insert("kind", x.kind.as_str())?;
        row.insert("at", x.at.as_str())?;
        row.insert("count", long(x.count))?;
        errors.push(row)?;
    }
    a.insert("storage_errors", errors)?;
    Ok(a)
}

fn stats_array(s: &Snapshot) -> ext_php_rs::error::Result<ZBox<ZendHashTable>> {
    let mut out = ZendHashTable::new();
    for e in &s.engines {
        out.insert(e.engine.name(), engine_array(e)?)?;
    }
    Ok(out)
}

/// The counters of every engine, summed over all processes that share them (see the README, "Metrics").
#[php_function]
#[php(name = "SessionProxy\\stats")]
pub fn stats() -> PhpResult<ZBox<ZendHashTable>> {
    guard(Err("session_proxy: internal error while reading the counters".into()), || {
        stats_array(&metrics::global().snapshot()).map_err(|e| format!("session_proxy: cannot build the counters' array: {e}").into())
    })
}

/// The same counters in Prometheus' text exposition format 0.0.4.
#[php_function]
#[php(name = "SessionProxy\\stats_prometheus")]
pub fn stats_prometheus() -> String {
    guard(String::new(), || metrics::render_prometheus(&metrics::global().snapshot()))
}

/// Adds the two functions to the module.
pub fn functions(m: ModuleBuilder) -> ModuleBuilder {
    m.function(wrap_function!(stats)).function(wrap_function!(stats_prometheus))
}

/// How the counters are kept, for the first table of `php --ri`.
pub fn sharing() -> String {
    let r = metrics::global();
    match r.local_because() {
        _ if r.is_shared() => {
            "shared by this process and every process forked after startup (all php-fpm workers of a pool)".into()
        }
        Some(why) => format!("this process only ({why})"),
        None => "this process only".into(),
    }
}

/// The second table of `php --ri`: one row per counter, one column per engine.
pub fn info_table() {
    let s = metrics::global().snapshot();
    let row = |label: &str, f: &dyn Fn(&EngineStats) -> String| {
        let cells: Vec<String> = s.engines.iter().map(f).collect();
        info_table_row!(label, cells[0].as_str(), cells[1].as_str(), cells[2].as_str(), cells[3].as_str(), cells[4].as_str(), cells[5].as_str());
    };
    info_table_start!();
    let names: Vec<&str> = s.engines.iter().map(|e| e.engine.name()).collect();
    info_table_header!("Counter", names[0], names[1], names[2], names[3], names[4], names[5]);
    for c in Counter::ALL {
        row(c.name(), &|e| e.get(c).to_string());
    }
    let bounds: Vec<String> = Histogram::bounds_ms().map(|b| b.map_or("+Inf".into(), |ms| ms.to_string())).collect();
    row(&format!("lock_wait_ms le {}", bounds.join("/")), &|e| {
        e.lock_wait.buckets.iter().map(u64::to_string).collect::<Vec<_>>().join("/")
    });
    row("lock_wait_ms sum", &|e| format!("{:.3}", e.lock_wait.sum.as_secs_f64() * 1000.0));
    for why in Refusal::ALL {
        row(&format!("writes_refused {}", why.name()), &|e| e.refused(why).to_string());
    }
    row("storage_errors", &|e| e.errors.iter().map(|x| x.count).sum::<u64>().to_string());
    info_table_end!();
}
