//! The `session_proxy` save handler: nine ps_module hooks translating PHP calls to `session::Request`.
//! Every hook runs inside `guard`, so no Rust panic ever unwinds into PHP.

use std::ffi::CStr;
use std::os::raw::{c_char, c_int};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use ext_php_rs::boxed::ZBox;
use ext_php_rs::error::php_error;
use ext_php_rs::ffi::{zend_long, zend_string};
use ext_php_rs::flags::ErrorType;
use ext_php_rs::types::ZendStr;

use super::ffi::{self, zstr_bytes, ModData, PsModule, FAILURE, SUCCESS};
use crate::dsn;
use crate::session::{Diag, Level, Request};
use crate::settings::{RawSettings, Settings};

pub static MODULE: PsModule = PsModule {
    name: c"session_proxy".as_ptr(),
    open: sp_open,
    close: sp_close,
    read: sp_read,
    write: sp_write,
    destroy: sp_destroy,
    gc: sp_gc,
    create_sid: sp_create_sid,
    validate_sid: sp_validate_sid,
    update_timestamp: sp_update_timestamp,
};

pub fn raise(diags: Vec<Diag>) {
    for d in diags {
        let level = match d.level {
            Level::Warning => ErrorType::Warning,
            Level::Notice => ErrorType::Notice,
        };
        php_error(&level, &d.problem.to_string());
    }
}

/// Runs `f`, turning a panic into a warning and `on_panic`.
pub fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(v) => v,
        Err(payload) => {
            let why = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            php_error(&ErrorType::Warning, &format!("session_proxy: internal error: {why}"));
            on_panic
        }
    }
}

/// Test builds only (feature `test-panic`, which scripts/test.sh builds into target/panic-test/ for
/// php-tests/panic_guard.phpt): panics when the environment variable `SESSION_PROXY_TEST_PANIC`
/// names `place`, so that a test can show `guard` keeps a panic out of PHP. The normal build has no
/// such code.
#[cfg(feature = "test-panic")]
#[track_caller]
pub fn test_panic(place: &str) {
    if std::env::var_os("SESSION_PROXY_TEST_PANIC").is_some_and(|v| v == place) {
        panic!("test panic in {place}");
    }
}

#[cfg(not(feature = "test-panic"))]
#[inline(always)]
pub fn test_panic(_place: &str) {}

/// The old store named by `session_proxy.migrate_from` (None: empty, no migration); the error is
/// the warning's words (without the "session_proxy: " every warning starts with), naming the
/// directive (passwords masked).
pub fn old_store(dsn: &str) -> Result<Option<dsn::Engine>, String> {
    if dsn.trim().is_empty() {
        return Ok(None);
    }
    dsn::parse(dsn.trim(), &ffi::temp_dir()).map(Some).map_err(|e| match e {
        dsn::ConfigError::BadDsn(e) => e.for_directive(crate::settings::MIGRATE_FROM),
        e => e.to_string(),
    })
}

/// A request's stack: the engine, the default layers, and the migration from the old store if set.
/// Err: the whole warning.
pub fn stack_for(engine: dsn::Engine, settings: &Settings) -> Result<crate::store::layer::Stack, String> {
    let mut stack = super::atrest::stack(engine, settings)?;
    stack.layers.migrate_from =
        old_store(settings.migrate_from.as_deref().unwrap_or_default()).map_err(|m| format!("session_proxy: {m}"))?.map(Box::new);
    Ok(stack)
}

/// Settings for this request from the `session_proxy.*` directives and max_execution_time.
pub fn current_settings() -> Settings {
    Settings::from_raw(&RawSettings::read(ffi::ini_string, ffi::ini_long("max_execution_time")))
        .with_serializer(&ffi::ini_string("session.serialize_handler"))
}

fn max_lifetime(secs: zend_long) -> Duration {
    Duration::from_secs(secs.max(0) as u64)
}

/// session.gc_maxlifetime, for the calls where PHP does not pass it.
pub fn ini_max_lifetime() -> Duration {
    max_lifetime(ffi::ini_long("session.gc_maxlifetime"))
}

/// The request behind mod_data, if open succeeded.
///
/// # Safety
/// `mod_data` is PHP's `&PS(mod_data)`: NULL-or-ours.
unsafe fn request<'a>(mod_data: ModData) -> Option<&'a mut Request> {
    if mod_data.is_null() {
        return None;
    }
    // SAFETY: *mod_data is NULL or a Box<Request> we leaked in sp_open.
    unsafe { (*mod_data).cast::<Request>().as_mut() }
}

/// Runs `f` on the open request and raises what it reported; FAILURE without an open request.
unsafe fn with_request<T: Copy>(mod_data: ModData, fail: T, f: impl FnOnce(&mut Request) -> T) -> T {
    guard(fail, || {
        // SAFETY: forwarded from the hook's contract.
        let Some(r) = (unsafe { request(mod_data) }) else {
            php_error(&ErrorType::Warning, "session_proxy: the session storage is not open");
            return fail;
        };
        let out = f(r);
        raise(r.take_diags());
        out
    })
}

fn result(ok: bool) -> c_int {
    if ok { SUCCESS } else { FAILURE }
}

unsafe extern "C" fn sp_open(mod_data: ModData, save_path: *const c_char, _name: *const c_char) -> c_int {
    guard(FAILURE, || {
        let path = if save_path.is_null() {
            String::new()
        } else {
            // SAFETY: PHP passes a NUL-terminated string.
            let raw = unsafe { CStr::from_ptr(save_path) };
            match raw.to_str() {
                Ok(p) => p.to_owned(),
                // Not replaced lossily: U+FFFD would name another file than the one configured.
                Err(_) => {
                    let e = dsn::DsnError {
                        save_path: raw.to_string_lossy().into_owned(),
                        reason: crate::grammar::Reason::NotUtf8,
                    };
                    php_error(&ErrorType::Warning, &format!("session_proxy: {e}"));
                    return FAILURE;
                }
            }
        };
        let settings = current_settings();
        // session_reset() opens again while the session is active: keep the request (and its lock).
        // SAFETY: mod_data is PHP's &PS(mod_data).
        if let Some(r) = unsafe { request(mod_data) } {
            r.set_settings(settings, ini_max_lifetime());
            return SUCCESS;
        }
        let track_client = settings.track_client;
        let engine = match dsn::parse_cached(&path, &ffi::temp_dir()) {
            Ok(e) => e,
            Err(e) => {
                php_error(&ErrorType::Warning, &format!("session_proxy: {e}"));
                return FAILURE;
            }
        };
        let stack = match stack_for(engine, &settings) {
            Ok(s) => s,
            Err(msg) => {
                php_error(&ErrorType::Warning, &msg);
                return FAILURE;
            }
        };
        match Request::open(stack, settings, ini_max_lifetime()) {
            Ok(mut r) => {
                super::users::opened(&mut r, track_client);
                let r = Box::into_raw(Box::new(r));
                super::users::set_current(r);
                // SAFETY: mod_data is valid for writing.
                unsafe { *mod_data = r.cast() };
                SUCCESS
            }
            Err(problem) => {
                php_error(&ErrorType::Warning, &problem.to_string());
                FAILURE
            }
        }
    })
}

unsafe extern "C" fn sp_close(mod_data: ModData) -> c_int {
    guard(FAILURE, || {
        if mod_data.is_null() || unsafe { (*mod_data).is_null() } {
            return SUCCESS;
        }
        // SAFETY: set by sp_open from Box::into_raw; cleared right after so it is freed once.
        let mut r = unsafe { Box::from_raw((*mod_data).cast::<Request>()) };
        unsafe { *mod_data = std::ptr::null_mut() };
        super::users::set_current(std::ptr::null_mut());
        super::users::before_end(&mut r);
        raise(r.close());
        SUCCESS
    })
}

unsafe extern "C" fn sp_read(mod_data: ModData, key: *mut zend_string, val: *mut *mut zend_string, maxlifetime: zend_long) -> c_int {
    unsafe {
        with_request(mod_data, FAILURE, |r| {
            test_panic("read");
            // The request's expiry is session.gc_maxlifetime, read at open (PHP passes the same).
            let _ = maxlifetime;
            let read = if super::readclose::active() { r.read_and_close(zstr_bytes(key)) } else { r.read(zstr_bytes(key)) };
            match read {
                Ok(data) => {
                    // A request-allocated string: PHP releases it.
                    *val = ZendStr::new(&data, false).into_raw();
                    SUCCESS
                }
                Err(_) => FAILURE,
            }
        })
    }
}

unsafe extern "C" fn sp_write(mod_data: ModData, key: *mut zend_string, val: *mut zend_string, maxlifetime: zend_long) -> c_int {
    unsafe {
        with_request(mod_data, FAILURE, |r| {
            let _ = maxlifetime;
            result(r.write(zstr_bytes(key), zstr_bytes(val)).is_ok())
        })
    }
}

unsafe extern "C" fn sp_update_timestamp(
    mod_data: ModData,
    key: *mut zend_string,
    _val: *mut zend_string,
    maxlifetime: zend_long,
) -> c_int {
    unsafe {
        let _ = maxlifetime;
        with_request(mod_data, FAILURE, |r| result(r.update_timestamp(zstr_bytes(key)).is_ok()))
    }
}

unsafe extern "C" fn sp_destroy(mod_data: ModData, key: *mut zend_string) -> c_int {
    unsafe {
        with_request(mod_data, FAILURE, |r| {
            super::users::before_end(r);
            result(r.destroy(zstr_bytes(key)).is_ok())
        })
    }
}

unsafe extern "C" fn sp_gc(mod_data: ModData, maxlifetime: zend_long, nrdels: *mut zend_long) -> zend_long {
    unsafe {
        with_request(mod_data, -1, |r| match r.gc(max_lifetime(maxlifetime)) {
            Ok(n) => {
                if !nrdels.is_null() {
                    *nrdels = n as zend_long;
                }
                n as zend_long
            }
            Err(_) => -1,
        })
    }
}

unsafe extern "C" fn sp_validate_sid(mod_data: ModData, key: *mut zend_string) -> c_int {
    unsafe { with_request(mod_data, FAILURE, |r| result(r.exists(zstr_bytes(key)) == Ok(true))) }
}

/// A fresh id from PHP's generator (honouring session.sid_length / sid_bits_per_character). Not looked
/// up in the store (no round trip): its first read in `r` refuses it if it names a stored session
/// (`Request::new_id`). Shared by the save handler's create_sid hook and
/// `SessionProxy\Handler::create_sid`.
pub fn create_id(r: Option<&mut Request>, mod_data: ModData) -> Result<ZBox<ZendStr>, String> {
    let generate = || {
        // SAFETY: mod_data is PHP's own pointer or NULL; the generator only reads session globals and
        // returns a fresh request-allocated string (owned by the ZBox, freed if it is dropped) or NULL.
        let sid = unsafe { ffi::php_session_create_id(mod_data) };
        (!sid.is_null()).then(|| unsafe { ZBox::from_raw(sid) })
    };
    let sid = match r {
        None => generate(),
        Some(r) => r.new_id(generate, |sid| sid.as_bytes()),
    };
    sid.ok_or_else(|| "session_proxy: PHP could not generate a session id".into())
}

unsafe extern "C" fn sp_create_sid(mod_data: ModData) -> *mut zend_string {
    guard(std::ptr::null_mut(), || {
        // SAFETY: as in the other hooks.
        match create_id(unsafe { request(mod_data) }, mod_data) {
            Ok(sid) => sid.into_raw(),
            Err(msg) => {
                php_error(&ErrorType::Warning, &msg);
                std::ptr::null_mut()
            }
        }
    })
}
