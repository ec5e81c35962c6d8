//! session_proxy: one PHP session layer over many storage engines.
//!
//! Everything but `php` is plain Rust that knows nothing of Zend and is tested with `cargo test`;
//! `php` is the thin FFI skin (module entry, save-handler hooks, INI, phpinfo).

pub mod dsn;
pub mod grammar;
pub mod id;
pub mod kwait;
pub mod lock;
pub mod metrics;
pub mod net;
pub mod pool;
pub mod private;
pub mod serial;
pub mod session;
pub mod settings;
pub mod store;
pub mod users;

#[cfg(all(feature = "php", not(test)))]
mod php;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");
