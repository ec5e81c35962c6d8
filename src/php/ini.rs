//! Registration of the `session_proxy.*` directives. Values are read per request by name
//! (`hooks::current_settings`); the on-modify hook only validates, so a bad value is refused with a
//! warning naming the directive and the old value stays (`ini_set` returns false).

use std::os::raw::{c_int, c_void};

use ext_php_rs::error::php_error;
use ext_php_rs::ffi::{zend_ini_entry, zend_string};
use ext_php_rs::flags::{ErrorType, IniEntryPermission};
use ext_php_rs::zend::{IniEntryDef, IniEntryDefs};

use super::ffi::{zstr_bytes, FAILURE, SUCCESS, ZEND_INI_STAGE_DEACTIVATE};
use super::hooks::guard;
use crate::settings::{self, DIRECTIVES};

/// PHP's ZEND_INI_STAGE_STARTUP: php.ini's values, registered in MINIT.
const ZEND_INI_STAGE_STARTUP: c_int = 1;

const fn entry(i: usize) -> IniEntryDef {
    let d = &DIRECTIVES[i];
    let mut e = IniEntryDef::new(d.name, d.default, IniEntryPermission::All);
    e.on_modify = Some(on_modify);
    if d.boolean {
        e.displayer = Some(boolean_displayer);
    }
    e
}

pub static ENTRIES: IniEntryDefs<{ DIRECTIVES.len() + 1 }> =
    IniEntryDefs::new([
        entry(0),
        entry(1),
        entry(2),
        entry(3),
        entry(4),
        entry(5),
        entry(6),
        entry(7),
        entry(8),
        entry(9),
        entry(10),
        entry(11),
        entry(12),
        entry(13),
        IniEntryDef::end(),
    ]);

/// phpinfo and `php --ri` for an On/Off directive: PHP's own On/Off for a boolean value, the value as
/// written otherwise (`session_proxy.locking = optimistic`, which PHP's displayer would show as Off).
unsafe extern "C" fn boolean_displayer(entry: *mut zend_ini_entry, ty: c_int) {
    const ZEND_INI_DISPLAY_ORIG: c_int = 1;
    guard((), || {
        // SAFETY: PHP passes one of its registered entries; its value strings are NULL or valid.
        let value = unsafe {
            let v = if ty == ZEND_INI_DISPLAY_ORIG && (*entry).modified != 0 { (*entry).orig_value } else { (*entry).value };
            if v.is_null() { &[][..] } else { zstr_bytes(v) }
        };
        let text = String::from_utf8_lossy(value);
        if settings::parse_bool(text.trim()).is_ok() {
            // SAFETY: forwarded as PHP gave it.
            unsafe { super::ffi::zend_ini_boolean_displayer_cb(entry, ty) };
        } else if let Ok(c) = std::ffi::CString::new(text.into_owned()) {
            // SAFETY: a "%s" format with one NUL-terminated string.
            unsafe { ext_php_rs::ffi::php_printf(c"%s".as_ptr(), c.as_ptr()) };
        }
    })
}

unsafe extern "C" fn on_modify(
    entry: *mut zend_ini_entry,
    new_value: *mut zend_string,
    _a1: *mut c_void,
    _a2: *mut c_void,
    _a3: *mut c_void,
    stage: c_int,
) -> c_int {
    guard(FAILURE, || {
        // SAFETY: PHP passes its entry and the candidate value.
        let (name, value) = unsafe { (zstr_bytes((*entry).name), zstr_bytes(new_value)) };
        let name = String::from_utf8_lossy(name);
        let value = String::from_utf8_lossy(value);
        let checked = match settings::validate(&name, &value) {
            Ok(()) if name == settings::MIGRATE_FROM => super::hooks::old_store(&value).map(|_| ()),
            r => r,
        };
        match checked {
            Ok(()) => SUCCESS,
            // php.ini's own value of a key directive: kept, so that session_start() refuses it.
            Err(_) if stage == ZEND_INI_STAGE_STARTUP && settings::kept_when_invalid(&name) => SUCCESS,
            Err(msg) => {
                // Restoring the original value at request end is never worth a warning.
                if stage != ZEND_INI_STAGE_DEACTIVATE {
                    php_error(&ErrorType::Warning, &format!("session_proxy: {msg}"));
                }
                FAILURE
            }
        }
    })
}
