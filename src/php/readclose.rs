//! `session_start(['read_and_close' => true])` must take no lock and never wait (issue 12).
//!
//! PHP does not tell a save handler about `read_and_close`: it calls open, read and close as for any
//! start. The observer API would tell us that `session_start` runs, but not with which options before
//! it runs. So MINIT wraps the internal function `session_start` itself (its handler in the function
//! table, the way APM extensions hook internal functions): the wrapper reads the `read_and_close`
//! option as PHP does (`zval_get_long` of the value, any non-zero is true), notes it for this thread,
//! calls PHP's own `session_start`, and clears the note when it returns. The save handler's read hook
//! and `SessionProxy\Handler::read` ask `active()` and then read without the lock.

use std::cell::Cell;
use std::sync::atomic::{AtomicPtr, Ordering};

use ext_php_rs::ffi::{
    ext_php_rs_compiler_globals, zend_execute_data, zend_function, zend_hash_str_find_ptr_lc, zval, ZEND_INTERNAL_FUNCTION,
};
use ext_php_rs::types::Zval;

pub type Handler = unsafe extern "C" fn(*mut zend_execute_data, *mut zval);

/// PHP's own `session_start`, once wrapped.
static ORIGINAL: AtomicPtr<()> = AtomicPtr::new(std::ptr::null_mut());

thread_local! {
    static READ_AND_CLOSE: Cell<bool> = const { Cell::new(false) };
}

/// Whether the `session_start()` running on this thread asked for `read_and_close`.
pub fn active() -> bool {
    READ_AND_CLOSE.with(Cell::get)
}

/// Wraps `session_start`; false if it is not there (ext/session starts before us: it always is).
///
/// # Safety
/// MINIT only: the function table is not yet shared with any request.
pub unsafe fn install() -> bool {
    // SAFETY: forwarded (MINIT).
    unsafe { wrap(c"session_start", session_start, &ORIGINAL) }
}

/// Wraps the internal function `name` with `wrapper`, keeping PHP's own handler in `original` (also
/// used for session_regenerate_id, php/users.rs); false if it is not there.
///
/// # Safety
/// MINIT only: the function table is not yet shared with any request.
pub unsafe fn wrap(name: &std::ffi::CStr, wrapper: Handler, original_slot: &AtomicPtr<()>) -> bool {
    // The compiler's function table: the executor's (what zend_fetch_function_str looks in) is only
    // set up per request under php-fpm, and is NULL at MINIT.
    // SAFETY: MINIT, single-threaded; the globals and their table exist from zend_startup on.
    let f = unsafe {
        let cg = ext_php_rs_compiler_globals();
        if cg.is_null() || (*cg).function_table.is_null() {
            return false;
        }
        zend_hash_str_find_ptr_lc((*cg).function_table, name.as_ptr(), name.to_bytes().len()).cast::<zend_function>()
    };
    if f.is_null() {
        return false;
    }
    // SAFETY: a function of the table; its type byte says which union member is valid.
    unsafe {
        if u32::from((*f).type_) != ZEND_INTERNAL_FUNCTION {
            return false;
        }
        let Some(original) = (*f).internal_function.handler else { return false };
        // A second MINIT (a module reloaded in the same process) must not wrap the wrapper.
        if original as usize != wrapper as usize {
            original_slot.store(original as *mut (), Ordering::Release);
            (*f).internal_function.handler = Some(wrapper);
        }
    }
    true
}

/// `read_and_close` of `session_start`'s options array (its first argument), as PHP reads it.
///
/// # Safety
/// `ex` is the frame of a `session_start` call.
unsafe fn read_and_close(ex: *mut zend_execute_data) -> bool {
    // ZEND_CALL_NUM_ARGS and ZEND_CALL_ARG(ex, 1): the arguments follow the frame, in zval slots.
    // SAFETY: PHP's call frame layout; the slot exists when num_args >= 1.
    unsafe {
        if (*ex).This.u2.num_args < 1 {
            return false;
        }
        let slots = std::mem::size_of::<zend_execute_data>().div_ceil(std::mem::size_of::<zval>());
        let arg = &*ex.cast::<Zval>().add(slots);
        let Some(options) = arg.array() else { return false };
        options.get("read_and_close").is_some_and(truthy_as_long)
    }
}

/// PHP's `zval_get_long(v) != 0` for the scalar types an option is given as.
fn truthy_as_long(v: &Zval) -> bool {
    if let Some(b) = v.bool() {
        return b;
    }
    if let Some(l) = v.long() {
        return l != 0;
    }
    if let Some(d) = v.double() {
        return d as i64 != 0;
    }
    if let Some(s) = v.string() {
        // A numeric prefix, as PHP's string-to-int conversion ("1", " 2abc"; "yes" is 0).
        let t = s.trim_start();
        let digits: String = t.chars().enumerate().take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+'))).map(|(_, c)| c).collect();
        return digits.parse::<i64>().is_ok_and(|n| n != 0);
    }
    false
}

unsafe extern "C" fn session_start(ex: *mut zend_execute_data, rv: *mut zval) {
    // SAFETY: PHP calls this as session_start's handler, with its frame.
    let flag = super::hooks::guard(false, || unsafe { read_and_close(ex) });
    let previous = READ_AND_CLOSE.with(|c| c.replace(flag));
    // SAFETY: forwarded as PHP gave it. (PHP errors here unwind by longjmp, as through PHP's own
    // frames; the note is then left set until the next session_start, which resets it.)
    unsafe { call_original(&ORIGINAL, ex, rv) };
    READ_AND_CLOSE.with(|c| c.set(previous));
}

/// Calls the PHP handler `wrap` kept in `original_slot`.
///
/// # Safety
/// `ex` and `rv` as PHP gave them to the wrapper.
pub unsafe fn call_original(original_slot: &AtomicPtr<()>, ex: *mut zend_execute_data, rv: *mut zval) {
    let original = original_slot.load(Ordering::Acquire);
    if !original.is_null() {
        // SAFETY: stored from the function's own handler in `wrap`.
        let original: Handler = unsafe { std::mem::transmute::<*mut (), Handler>(original) };
        // SAFETY: forwarded.
        unsafe { original(ex, rv) };
    }
}
