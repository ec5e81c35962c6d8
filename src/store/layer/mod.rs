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

pub mod compress;
pub mod encrypt;
pub mod envelope;
pub mod hashid;
pub mod keys;
pub mod metrics;
pub mod migrate;
pub mod transform;

#[cfg(test)]
mod atrest_tests;

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
        Engine::Mysql(_) => EngineKind::Mysql,
    }
}

/// Which layers wrap the engine, in stacking order (outermost first): metrics (so it counts the
/// bytes PHP reads and writes), hashed ids, compression, encryption, then the engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Layers {
    /// Count into the process group's shared counters (`crate::metrics::global()`).
    pub metrics: bool,
    /// Read-through migration from this old store (`session_proxy.migrate_from`), outermost.
    pub migrate_from: Option<Box<Engine>>,
    /// Store and lock under HMAC-SHA256(key, id) (`session_proxy.hash_ids`).
    pub hash_ids: Option<keys::Secret>,
    /// `session_proxy.compression` and its threshold.
    pub compression: compress::Compress,
    /// Read envelopes even with every at-rest directive off: the compression layer stands in the
    /// stack with no codec, so a sealed session (encryption turned off while encrypted sessions are
    /// stored) is a warning and an empty session, never bytes handed to PHP's decoder, and a
    /// compressed one still reads. Plaintext passes as it is, without a copy.
    pub envelopes: bool,
    /// Seal every write (`session_proxy.encryption_key`, `session_proxy.encryption_keys_old`).
    pub encryption: Option<encrypt::KeyRing>,
}

impl Default for Layers {
    /// The layers a request gets without at-rest directives: metrics, and the reader of envelopes.
    fn default() -> Self {
        Layers { metrics: true, envelopes: true, ..Layers::NONE }
    }
}

pub use crate::settings::AtRest;

use crate::settings::{ENCRYPTION_KEY, ENCRYPTION_KEYS_OLD, HASH_KEY};

impl Layers {
    /// No layer at all.
    pub const NONE: Layers =
        Layers {
        metrics: false,
        migrate_from: None,
        hash_ids: None,
        compression: compress::Compress { codec: None, threshold: 0 },
        envelopes: false,
        encryption: None,
    };

    /// The default layers with the at-rest ones configured: reads the keys (a missing, unreadable
    /// or wrong-size key is an error naming its directive; never a silent fallback to plaintext).
    pub fn at_rest(a: &AtRest) -> Result<Layers, keys::KeyError> {
        let load_all = |directive, v: &str| -> Result<Vec<keys::Secret>, keys::KeyError> {
            keys::sources(directive, v)?.iter().map(|s| keys::load(directive, s)).collect()
        };
        let encryption = match load_all(ENCRYPTION_KEY, &a.encryption_key)?.as_slice() {
            [] if !a.encryption_keys_old.trim().is_empty() => {
                return Err(keys::KeyError::Missing { directive: ENCRYPTION_KEY, needed_by: ENCRYPTION_KEYS_OLD })
            }
            [] => None,
            [k] => Some(encrypt::KeyRing { current: k.clone(), old: load_all(ENCRYPTION_KEYS_OLD, &a.encryption_keys_old)? }),
            _ => return Err(keys::KeyError::BadSource { directive: ENCRYPTION_KEY, value: a.encryption_key.clone() }),
        };
        let hash_ids = match (a.hash_ids, load_all(HASH_KEY, &a.hash_key)?.pop(), &encryption) {
            (false, ..) => None,
            (true, Some(k), _) => Some(k),
            (true, None, Some(ring)) => Some(ring.current.derive_hash_key()),
            (true, None, None) => return Err(keys::KeyError::Missing { directive: HASH_KEY, needed_by: "session_proxy.hash_ids" }),
        };
        Ok(Layers {
            hash_ids,
            compression: compress::Compress { codec: a.compression, threshold: a.compression_threshold },
            encryption,
            ..Layers::default()
        })
    }

    /// The session as messages name it: a short prefix of the id (`SessionId::short`), or with
    /// hash_ids on, of its hash (`#` and 8 hex digits), so that the id never reaches a log.
    pub fn shown(&self, id: &crate::id::SessionId) -> String {
        match &self.hash_ids {
            Some(k) => format!("#{}…", &hashid::hashed(k, id).as_str()[..8]),
            None => id.short(),
        }
    }

    /// Whether any layer changes what is stored (then data cannot be read by other handlers).
    pub fn any_at_rest(&self) -> bool {
        self.hash_ids.is_some() || self.compression.codec.is_some() || self.encryption.is_some()
    }

    /// Wraps an engine's store in the configured layers.
    pub fn wrap(&self, engine: &Engine, mut store: Box<dyn Store>) -> Box<dyn Store> {
        if let Some(keys) = &self.encryption {
            store = Box::new(encrypt::EncryptLayer::new(store, encrypt::Encrypt { keys: keys.clone() }));
        }
        if self.envelopes || self.any_at_rest() {
            store = Box::new(compress::CompressLayer::new(store, self.compression));
        }
        if let Some(key) = &self.hash_ids {
            store = Box::new(hashid::HashIds::new(store, key.clone()));
        }
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

    /// An engine with these layers.
    pub fn with(engine: Engine, layers: Layers) -> Self {
        Stack { engine, layers }
    }

    /// An engine without layers.
    pub fn bare(engine: Engine) -> Self {
        Stack { engine, layers: Layers::NONE }
    }
}
