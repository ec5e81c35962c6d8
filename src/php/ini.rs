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

const fn entry(i: usize) -> IniEntryDef {
    let d = &DIRECTIVES[i];
    let mut e = IniEntryDef::new(d.name, d.default, IniEntryPermission::All);
    e.on_modify = Some(on_modify);
    if d.boolean {
        e.displayer = Some(super::ffi::zend_ini_boolean_displayer_cb);
    }
    e
}

pub static ENTRIES: IniEntryDefs<{ DIRECTIVES.len() + 1 }> =
    IniEntryDefs::new([entry(0), entry(1), entry(2), entry(3), IniEntryDef::end()]);

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
        match settings::validate(&name, &value) {
            Ok(()) => SUCCESS,
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
