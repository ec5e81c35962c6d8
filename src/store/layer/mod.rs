//! Layers: cross-cutting behaviour that wraps the `Store` contract (metrics first; compression,
//! encryption and hashed ids later), one file per layer.
//!
//! A layer holds the store it wraps and forwards EVERY method of `Store`, `Pooled` and `Collect`,
//! changing only what it is about. Each layer file starts with `#![deny(clippy::missing_trait_methods)]`
//! (as object_store does for its wrapper stores), and the suite runs clippy: a layer that forgot a
//! method with a default (`wait_for_release`, `lock_holder`, `collector`…) would silently fall back to
//! the default — turning an engine's wake-up on release into polling, or hiding its gc.
//!
//! The configuration of the layers is read once per request (`Layers`), and the connection pool
//! keys on the engine and the layers together (`Stack`), so a pooled handle never serves a request
//! configured with other layers.

pub mod metrics;
pub mod migrate;

use super::{Engine, Store, StoreError};
use crate::metrics::EngineKind;

/// The engine's row in the counters (`crate::metrics` is a leaf: it knows no engine type).
fn kind_of(engine: &Engine) -> EngineKind {
    match engine {
        Engine::Sqlite(_) => EngineKind::Sqlite,
        Engine::Files(_) => EngineKind::Files,
        Engine::Redis(_) => EngineKind::Redis,
        Engine::Memcached(_) => EngineKind::Memcached,
        Engine::Pgsql(_) => EngineKind::Pgsql,
    }
}

/// Which layers wrap the engine, in stacking order (outermost first).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layers {
    /// Count into the process group's shared counters (`crate::metrics::global()`).
    pub metrics: bool,
    /// Read-through migration from this old store (`session_proxy.migrate_from`), outermost.
    pub migrate_from: Option<Box<Engine>>,
}

impl Default for Layers {
    /// The layers a request gets: metrics on.
    fn default() -> Self {
        Layers { metrics: true, migrate_from: None }
    }
}

impl Layers {
    /// No layer at all.
    pub const NONE: Layers = Layers { metrics: false, migrate_from: None };

    /// Wraps an engine's store in the configured layers.
    pub fn wrap(&self, engine: &Engine, store: Box<dyn Store>) -> Box<dyn Store> {
        let store: Box<dyn Store> = if self.metrics {
            Box::new(metrics::Metrics::new(store, kind_of(engine), crate::metrics::global()))
        } else {
            store
        };
        match &self.migrate_from {
            Some(old) => {
                let counters = self.metrics.then(|| (crate::metrics::global(), kind_of(engine)));
                Box::new(migrate::Migrate::new(store, (**old).clone(), counters))
            }
            None => store,
        }
    }

    /// An engine that could not be opened (no layer wraps it yet): the metrics layer counts the error.
    pub fn open_failed(&self, engine: &Engine, e: &StoreError) {
        if self.metrics {
            metrics::count_error(crate::metrics::global(), kind_of(engine), e);
        }
    }
}

/// An engine and the layers over it: what a request opens, and what the pool keys on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stack {
    pub engine: Engine,
    pub layers: Layers,
}

impl Stack {
    /// An engine with the default layers (what a PHP request opens).
    pub fn new(engine: Engine) -> Self {
        Stack { engine, layers: Layers::default() }
    }

    /// An engine without layers.
    pub fn bare(engine: Engine) -> Self {
        Stack { engine, layers: Layers::NONE }
    }
}
