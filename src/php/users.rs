//! The per-user session index's PHP surface (issue 13): `SessionProxy\set_user`, `user_sessions`,
//! `destroy_user_sessions`, `destroy_session_handle`, `count_active` (the same methods are on
//! `SessionProxy\Handler`, php/class.rs), and the carrying of a binding through
//! `session_regenerate_id`.
//!
//! The functions work on the native save handler's request when a session is active (so that the
//! "current" flag and `keep_current` know this request's session), else on a store opened from
//! `session.save_path` for the call.
//!
//! session_regenerate_id closes the old session's request and opens a new one for the new id; PHP
//! does not tell the handler that this is a regeneration and not a logout followed by a new session.
//! So, as for read_and_close (php/readclose.rs), MINIT wraps the internal function: while it runs,
//! the old request's binding is taken before its destroy (or at its close), and handed to the request
//! opened for the new id.

use std::cell::{Cell, RefCell};
use std::sync::atomic::AtomicPtr;
use std::time::Duration;

use ext_php_rs::boxed::ZBox;
use ext_php_rs::ffi::{zend_execute_data, zval};
use ext_php_rs::prelude::*;
use ext_php_rs::types::{ZendHashTable, Zval};
use ext_php_rs::zend::ProcessGlobals;

use super::ffi;
use super::hooks::{current_settings, guard, ini_max_lifetime, raise};
use crate::session::{Problem, Request, UserSession};
use crate::store::layer::Stack;
use crate::store::users::{Client, User};

static ORIGINAL: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

thread_local! {
    /// The native handler's open request (set by sp_open, cleared by sp_close).
    static CURRENT: Cell<*mut Request> = const { Cell::new(std::ptr::null_mut()) };
    static REGENERATING: Cell<bool> = const { Cell::new(false) };
    static CARRY: RefCell<Option<User>> = const { RefCell::new(None) };
}

/// The native handler's request, for the functions (NULL: none open).
pub fn set_current(r: *mut Request) {
    CURRENT.with(|c| c.set(r));
}

/// Wraps `session_regenerate_id`; MINIT only.
///
/// # Safety
/// MINIT.
pub unsafe fn install() -> bool {
    // SAFETY: forwarded.
    unsafe { super::readclose::wrap(c"session_regenerate_id", session_regenerate_id, &ORIGINAL) }
}

unsafe extern "C" fn session_regenerate_id(ex: *mut zend_execute_data, rv: *mut zval) {
    let previous = REGENERATING.with(|c| c.replace(true));
    // SAFETY: forwarded as PHP gave it.
    unsafe { super::readclose::call_original(&ORIGINAL, ex, rv) };
    REGENERATING.with(|c| c.set(previous));
    CARRY.with(|c| c.borrow_mut().take());
}

/// Before a destroy or a close: during session_regenerate_id, the binding the new session keeps.
pub fn before_end(r: &mut Request) {
    if REGENERATING.with(Cell::get) && CARRY.with(|c| c.borrow().is_none()) {
        let u = r.binding_to_carry();
        CARRY.with(|c| *c.borrow_mut() = u);
    }
}

/// A request just opened: the binding it inherits (regeneration) and, with track_client, where the
/// request comes from.
pub fn opened(r: &mut Request, track_client: bool) {
    if REGENERATING.with(Cell::get) {
        r.inherit(CARRY.with(|c| c.borrow_mut().take()));
    }
    if track_client {
        r.set_client(client());
    }
}

/// REMOTE_ADDR and HTTP_USER_AGENT of $_SERVER (None on the CLI without them).
fn client() -> Option<Client> {
    let globals = ProcessGlobals::get();
    let server = globals.http_server_vars()?;
    // The raw bytes (a user agent need not be UTF-8), bounded (`Client::bounded`).
    let get = |k: &str| server.get(k).and_then(|z| z.zend_str()).map(|s| s.as_bytes().to_vec());
    let (ip, agent) = (get("REMOTE_ADDR"), get("HTTP_USER_AGENT"));
    if ip.is_none() && agent.is_none() {
        return None;
    }
    Some(Client::bounded(&ip.unwrap_or_default(), &agent.unwrap_or_default()))
}

/// Runs `f` on the native handler's request, or on one opened from session.save_path for the call;
/// raises what it reported.
fn with_request<T>(fail: T, f: impl FnOnce(&mut Request) -> T) -> T {
    let current = CURRENT.with(Cell::get);
    // SAFETY: set by sp_open to the request it leaked, cleared by sp_close before it is freed.
    if let Some(r) = unsafe { current.as_mut() } {
        let out = f(r);
        raise(r.take_diags());
        return out;
    }
    let engine = match crate::dsn::parse(&ffi::ini_string("session.save_path"), &ffi::temp_dir()) {
        Ok(e) => e,
        Err(e) => {
            ext_php_rs::error::php_error(&ext_php_rs::flags::ErrorType::Warning, &format!("session_proxy: {e}"));
            return fail;
        }
    };
    match Request::open(Stack::new(engine), current_settings(), ini_max_lifetime()) {
        Ok(mut r) => {
            let out = f(&mut r);
            raise(r.close());
            out
        }
        Err(problem) => {
            ext_php_rs::error::php_error(&ext_php_rs::flags::ErrorType::Warning, &problem.to_string());
            fail
        }
    }
}

/// A user's sessions as PHP arrays.
pub fn sessions_array(list: &[UserSession]) -> ext_php_rs::error::Result<ZBox<ZendHashTable>> {
    let mut out = ZendHashTable::new();
    for s in list {
        let mut row = ZendHashTable::new();
        row.insert("handle", s.handle.as_str())?;
        row.insert("created", s.created.floor() as i64)?;
        row.insert("last_active", s.last_active.floor() as i64)?;
        row.insert("current", s.current)?;
        if let Some(c) = &s.client {
            row.insert("ip", c.ip.as_str())?;
            row.insert("user_agent", c.agent.as_str())?;
        }
        out.push(row)?;
    }
    Ok(out)
}

/// Each operation on a request: the functions below and the Handler's methods.
pub mod ops {
    use super::*;

    pub fn user_sessions(r: &mut Request, user: &[u8]) -> Zval {
        let mut out = Zval::new();
        match r.user_sessions(user).ok().and_then(|l| sessions_array(&l).ok()) {
            Some(a) => out.set_hashtable(a),
            None => out.set_bool(false),
        }
        out
    }

    pub fn destroy_user_sessions(r: &mut Request, user: &[u8], keep_current: bool) -> Zval {
        long_or_false(r.destroy_user_sessions(user, keep_current).ok())
    }

    pub fn count_active(r: &mut Request, seconds: i64) -> Zval {
        long_or_false(r.count_active(Duration::from_secs(seconds.max(0) as u64)).ok())
    }

    fn long_or_false(n: Option<u64>) -> Zval {
        let mut out = Zval::new();
        match n {
            Some(n) => out.set_long(i64::try_from(n).unwrap_or(i64::MAX)),
            None => out.set_bool(false),
        }
        out
    }
}

/// Binds the active session to `$user`; it persists with the session's next write.
#[php_function]
#[php(name = "SessionProxy\\set_user")]
pub fn set_user(user: ext_php_rs::binary_slice::BinarySlice<u8>) {
    guard((), || {
        let current = CURRENT.with(Cell::get);
        // SAFETY: as in with_request.
        match unsafe { current.as_mut() } {
            Some(r) => {
                let _ = r.set_user(&user);
                raise(r.take_diags());
            }
            None => ext_php_rs::error::php_error(
                &ext_php_rs::flags::ErrorType::Warning,
                &Problem::NoActiveSession { what: "set_user" }.to_string(),
            ),
        }
    })
}

/// `$user`'s live sessions: handle, created, last_active, current (and ip, user_agent when tracked).
#[php_function]
#[php(name = "SessionProxy\\user_sessions")]
pub fn user_sessions(user: ext_php_rs::binary_slice::BinarySlice<u8>) -> Zval {
    guard(Zval::new(), || with_request(false_zval(), |r| ops::user_sessions(r, &user)))
}

/// Ends all of `$user`'s sessions (but the current one with `$keep_current`); how many.
#[php_function]
#[php(name = "SessionProxy\\destroy_user_sessions")]
#[php(defaults(keep_current = false))]
pub fn destroy_user_sessions(user: ext_php_rs::binary_slice::BinarySlice<u8>, keep_current: bool) -> Zval {
    guard(Zval::new(), || with_request(false_zval(), |r| ops::destroy_user_sessions(r, &user, keep_current)))
}

/// Ends the session a handle from user_sessions() names; false when it names no live session.
#[php_function]
#[php(name = "SessionProxy\\destroy_session_handle")]
pub fn destroy_session_handle(handle: ext_php_rs::binary_slice::BinarySlice<u8>) -> bool {
    guard(false, || with_request(false, |r| r.destroy_session_handle(&handle).unwrap_or(false)))
}

/// Sessions active in the last `$seconds`, on engines that can count without reading every session.
#[php_function]
#[php(name = "SessionProxy\\count_active")]
pub fn count_active(seconds: i64) -> Zval {
    guard(Zval::new(), || with_request(false_zval(), |r| ops::count_active(r, seconds)))
}

fn false_zval() -> Zval {
    let mut z = Zval::new();
    z.set_bool(false);
    z
}

/// Adds the functions to the module.
pub fn functions(m: ModuleBuilder) -> ModuleBuilder {
    m.function(wrap_function!(set_user))
        .function(wrap_function!(user_sessions))
        .function(wrap_function!(destroy_user_sessions))
        .function(wrap_function!(destroy_session_handle))
        .function(wrap_function!(count_active))
}
