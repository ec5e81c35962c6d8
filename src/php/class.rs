//! `SessionProxy\Handler`: the same core as the native save handler, as a PHP class for frameworks
//! (`session_set_save_handler(new SessionProxy\Handler($dsn), true)`, Symfony, Laravel) and for
//! subclassing. A bad DSN or option throws `SessionProxy\Exception`; storage failures during a request
//! are a warning and `false`, as with PHP's own SessionHandler.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::time::Duration;

use ext_php_rs::builders::ClassBuilder;
use ext_php_rs::zend::ClassEntry;

use ext_php_rs::binary_slice::BinarySlice;
use ext_php_rs::error::php_error;
use ext_php_rs::exception::{PhpException, PhpResult};
use ext_php_rs::flags::ErrorType;
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, ZendStr, Zval};

use super::ffi;
use super::hooks::{create_id, guard, ini_max_lifetime, raise, test_panic};
use crate::dsn::{self, Engine};
use crate::session::Request;
use crate::settings::{self, Directive, RawSettings, Settings, DIRECTIVES};

/// `SessionProxy\Exception`, thrown for a bad DSN or option. A plain PHP subclass of
/// \InvalidArgumentException (no Rust object behind it), so PHP code can construct and rethrow it.
static EXCEPTION: AtomicPtr<ClassEntry> = AtomicPtr::new(std::ptr::null_mut());

/// Registers `SessionProxy\Exception`; MINIT only.
pub fn register_exception() -> ext_php_rs::error::Result<()> {
    ClassBuilder::new("SessionProxy\\Exception")
        .extends((ffi::invalid_argument_exception, "\\InvalidArgumentException"))
        .registration(|ce, _| EXCEPTION.store(ce, Ordering::Release))
        .register()
}

fn invalid(msg: String) -> PhpException {
    let msg = format!("session_proxy: {msg}");
    // SAFETY: set once in MINIT to a class entry PHP keeps for the process.
    match unsafe { EXCEPTION.load(Ordering::Acquire).as_ref() } {
        Some(ce) => PhpException::new(msg, 0, ce),
        None => PhpException::new(msg, 0, ffi::invalid_argument_exception()),
    }
}

fn false_zval() -> Zval {
    let mut z = Zval::new();
    z.set_bool(false);
    z
}

#[php_class]
#[php(name = "SessionProxy\\Handler")]
pub struct Handler {
    engine: Engine,
    /// Directive values from the constructor's options, by full directive name; the others follow
    /// the INI at open time.
    overrides: BTreeMap<&'static str, String>,
    request: Option<Request>,
}

fn directive_name(d: &Directive) -> &'static str {
    d.name.to_str().unwrap_or_default()
}

/// Option names: the directives without their `session_proxy.` prefix.
fn option_name(d: &Directive) -> &'static str {
    let full = directive_name(d);
    full.strip_prefix("session_proxy.").unwrap_or(full)
}

fn option_value(v: &Zval) -> Option<String> {
    if let Some(b) = v.bool() {
        return Some(if b { "1" } else { "0" }.into());
    }
    if let Some(l) = v.long() {
        return Some(l.to_string());
    }
    v.string()
}

impl Handler {
    fn settings(&self) -> Settings {
        let value = |name: &'static str| self.overrides.get(name).cloned().unwrap_or_else(|| ffi::ini_string(name));
        Settings::from_raw(&RawSettings::read(value, ffi::ini_long("max_execution_time")))
            .with_serializer(&ffi::ini_string("session.serialize_handler"))
    }

    /// The open request, opening one if the caller did not (Laravel calls read/write without open).
    fn request(&mut self) -> Option<&mut Request> {
        if self.request.is_none() {
            let settings = self.settings();
            let track_client = settings.track_client;
            let stack = match super::hooks::stack_for(self.engine.clone(), &settings) {
                Ok(s) => s,
                Err(msg) => {
                    php_error(&ErrorType::Warning, &msg);
                    return None;
                }
            };
            match Request::open(stack, settings, ini_max_lifetime()) {
                Ok(mut r) => {
                    super::users::opened(&mut r, track_client);
                    self.request = Some(r)
                }
                Err(problem) => {
                    php_error(&ErrorType::Warning, &problem.to_string());
                    return None;
                }
            }
        }
        self.request.as_mut()
    }

    /// Runs `f` on the request, raising its diagnostics; `fail` if no request could be opened.
    fn with<T: Copy>(&mut self, fail: T, f: impl FnOnce(&mut Request) -> T) -> T {
        guard(fail, || {
            let Some(r) = self.request() else { return fail };
            let out = f(r);
            raise(r.take_diags());
            out
        })
    }
}

#[php_impl]
impl Handler {
    /// `$dsn` is a session.save_path DSN; `$options` are session_proxy.* directives without the prefix
    /// (unset ones follow the INI at open time).
    pub fn __construct(dsn: BinarySlice<u8>, options: Option<&ZendHashTable>) -> PhpResult<Self> {
        let dsn = std::str::from_utf8(&dsn).map_err(|_| invalid("the DSN is not valid UTF-8".into()))?;
        let engine = dsn::parse(dsn, &ffi::temp_dir()).map_err(|e| invalid(e.to_string()))?;
        let mut overrides = BTreeMap::new();
        if let Some(options) = options {
            for (key, value) in options {
                let key = key.to_string();
                let Some(d) = DIRECTIVES.iter().find(|d| option_name(d) == key) else {
                    let known: Vec<&str> = DIRECTIVES.iter().map(option_name).collect();
                    return Err(invalid(format!("unknown option \"{key}\" (known: {})", known.join(", "))));
                };
                let name = directive_name(d);
                let Some(v) = option_value(value) else {
                    return Err(invalid(format!("option \"{key}\" must be a string, an int or a bool")));
                };
                settings::check(name, &v).map_err(|e| invalid(e.for_option(&key)))?;
                overrides.insert(name, v);
            }
        }
        Ok(Handler { engine, overrides, request: None })
    }

    /// The DSN is the constructor's; `$path` (session.save_path) and `$name` are not used.
    pub fn open(&mut self, path: BinarySlice<u8>, name: BinarySlice<u8>) -> bool {
        let _ = (path, name);
        let settings = self.settings();
        match &mut self.request {
            Some(r) => r.set_settings(settings, ini_max_lifetime()),
            None => return self.request().is_some(),
        }
        true
    }

    pub fn close(&mut self) -> bool {
        if let Some(mut r) = self.request.take() {
            super::users::before_end(&mut r);
            raise(r.close());
        }
        true
    }

    /// Returns the session data ("" for a new session), or false with a warning.
    pub fn read(&mut self, id: BinarySlice<u8>) -> Zval {
        let mut out = Zval::new();
        let data = guard(None, || {
            let r = self.request()?;
            let d = if super::readclose::active() { r.read_and_close(&id) } else { r.read(&id) }.ok();
            raise(r.take_diags());
            d
        });
        match data {
            Some(d) => out.set_zend_string(ZendStr::new(&d, false)),
            None => out.set_bool(false),
        }
        out
    }

    pub fn write(&mut self, id: BinarySlice<u8>, data: BinarySlice<u8>) -> bool {
        self.with(false, |r| {
            test_panic("Handler::write");
            r.write(&id, &data).is_ok()
        })
    }

    pub fn destroy(&mut self, id: BinarySlice<u8>) -> bool {
        self.with(false, |r| {
            super::users::before_end(r);
            r.destroy(&id).is_ok()
        })
    }

    /// Binds this handler's session to `$user` with its next write (the per-user index).
    pub fn set_user(&mut self, user: BinarySlice<u8>) {
        self.with((), |r| {
            let _ = r.set_user(&user);
        })
    }

    /// `$user`'s live sessions (see SessionProxy\user_sessions), or false with a warning.
    pub fn user_sessions(&mut self, user: BinarySlice<u8>) -> Zval {
        guard(Zval::new(), || match self.request() {
            Some(r) => {
                let out = super::users::ops::user_sessions(r, &user);
                raise(r.take_diags());
                out
            }
            None => false_zval(),
        })
    }

    /// Ends `$user`'s sessions (but this handler's current one with `$keep_current`); how many.
    #[php(defaults(keep_current = false))]
    pub fn destroy_user_sessions(&mut self, user: BinarySlice<u8>, keep_current: bool) -> Zval {
        guard(Zval::new(), || match self.request() {
            Some(r) => {
                let out = super::users::ops::destroy_user_sessions(r, &user, keep_current);
                raise(r.take_diags());
                out
            }
            None => false_zval(),
        })
    }

    /// Ends the session a handle from user_sessions() names.
    pub fn destroy_session_handle(&mut self, handle: BinarySlice<u8>) -> bool {
        self.with(false, |r| r.destroy_session_handle(&handle).unwrap_or(false))
    }

    /// Sessions active in the last `$seconds` (SQLite), or false with a warning.
    pub fn count_active(&mut self, seconds: i64) -> Zval {
        guard(Zval::new(), || match self.request() {
            Some(r) => {
                let out = super::users::ops::count_active(r, seconds);
                raise(r.take_diags());
                out
            }
            None => false_zval(),
        })
    }

    /// Returns the number of deleted sessions, or false with a warning.
    pub fn gc(&mut self, max_lifetime: i64) -> Zval {
        let life = Duration::from_secs(max_lifetime.max(0) as u64);
        let n = self.with(None, |r| r.gc(life).ok());
        let mut out = Zval::new();
        match n {
            Some(n) => out.set_long(n as i64),
            None => out.set_bool(false),
        }
        out
    }

    /// A new session id from PHP's generator (session.sid_length / sid_bits_per_character), never
    /// one of a live session. Nothing is stored.
    #[php(name = "create_sid")]
    pub fn create_sid(&mut self) -> PhpResult<String> {
        guard(Err("session_proxy: internal error while creating a session id".into()), || {
            let sid = create_id(self.request(), std::ptr::null_mut())?;
            Ok(String::from_utf8_lossy(sid.as_bytes()).into_owned())
        })
    }

    /// True when a live session with this id exists (strict mode).
    pub fn validate_id(&mut self, id: BinarySlice<u8>) -> bool {
        self.with(false, |r| r.exists(&id) == Ok(true))
    }

    /// lazy_write: refreshes the expiry of unchanged data without rewriting it.
    pub fn update_timestamp(&mut self, id: BinarySlice<u8>, data: BinarySlice<u8>) -> bool {
        let _ = data;
        self.with(false, |r| r.update_timestamp(&id).is_ok())
    }
}
