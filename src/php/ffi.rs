//! Declarations of the PHP symbols ext-php-rs does not bind. All are exported by Debian's `php` and
//! `php-fpm` binaries (ext/session is compiled in). Layouts follow php-src `ext/session/php_session.h`.

use std::os::raw::{c_char, c_int, c_void};

use ext_php_rs::ffi::{zend_class_entry, zend_long, zend_module_entry, zend_string};
use ext_php_rs::zend::ClassEntry;

pub const SUCCESS: c_int = 0;
pub const FAILURE: c_int = -1;

pub type ModData = *mut *mut c_void;

/// `ps_module`: a name and nine hooks (PHP 8.x signatures).
#[repr(C)]
pub struct PsModule {
    pub name: *const c_char,
    pub open: unsafe extern "C" fn(ModData, *const c_char, *const c_char) -> c_int,
    pub close: unsafe extern "C" fn(ModData) -> c_int,
    pub read: unsafe extern "C" fn(ModData, *mut zend_string, *mut *mut zend_string, zend_long) -> c_int,
    pub write: unsafe extern "C" fn(ModData, *mut zend_string, *mut zend_string, zend_long) -> c_int,
    pub destroy: unsafe extern "C" fn(ModData, *mut zend_string) -> c_int,
    pub gc: unsafe extern "C" fn(ModData, zend_long, *mut zend_long) -> zend_long,
    pub create_sid: unsafe extern "C" fn(ModData) -> *mut zend_string,
    pub validate_sid: unsafe extern "C" fn(ModData, *mut zend_string) -> c_int,
    pub update_timestamp: unsafe extern "C" fn(ModData, *mut zend_string, *mut zend_string, zend_long) -> c_int,
}

// SAFETY: immutable after construction; the pointers are 'static.
unsafe impl Sync for PsModule {}

/// `zend_module_dep`.
#[repr(C)]
pub struct ModuleDep {
    pub name: *const c_char,
    pub rel: *const c_char,
    pub version: *const c_char,
    pub kind: u8,
}

pub const MODULE_DEP_REQUIRED: u8 = 1;

/// A null-terminated dependency table.
#[repr(transparent)]
pub struct ModuleDeps<const N: usize>(pub [ModuleDep; N]);
// SAFETY: immutable, 'static C strings only.
unsafe impl<const N: usize> Sync for ModuleDeps<N> {}

pub const ZEND_INI_STAGE_DEACTIVATE: c_int = 1 << 3;

unsafe extern "C" {
    pub static php_session_iface_entry: *mut zend_class_entry;
    pub static php_session_id_iface_entry: *mut zend_class_entry;
    pub static php_session_update_timestamp_iface_entry: *mut zend_class_entry;
    static spl_ce_InvalidArgumentException: *mut zend_class_entry;
    pub fn php_session_register_module(m: *const PsModule) -> c_int;
    pub fn php_session_create_id(mod_data: ModData) -> *mut zend_string;
    pub fn zend_ini_long(name: *const c_char, name_length: usize, orig: c_int) -> zend_long;
    pub fn zend_ini_string_ex(name: *const c_char, name_length: usize, orig: c_int, exists: *mut bool) -> *mut c_char;
    pub fn php_get_temporary_directory() -> *const c_char;
    pub fn display_ini_entries(module: *mut zend_module_entry);
    /// PHP's displayer for boolean directives (phpinfo, `php --ri`): On/Off, not the raw value ("" for Off).
    pub fn zend_ini_boolean_displayer_cb(ini_entry: *mut ext_php_rs::ffi::zend_ini_entry, type_: c_int);
    pub fn zend_unregister_ini_entries_ex(module_number: c_int, module_type: c_int);
}

/// The current value of an INI directive as a string ("" if unset).
pub fn ini_string(name: &str) -> String {
    let mut exists = false;
    // SAFETY: name/len describe a valid buffer; the result is NULL or a NUL-terminated string owned by PHP.
    let p = unsafe { zend_ini_string_ex(name.as_ptr().cast(), name.len(), 0, &mut exists) };
    if p.is_null() {
        return String::new();
    }
    // SAFETY: non-null, NUL-terminated, valid for the duration of this call.
    unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

pub fn ini_long(name: &str) -> i64 {
    // SAFETY: name/len describe a valid buffer.
    unsafe { zend_ini_long(name.as_ptr().cast(), name.len(), 0) }
}

/// PHP's `sys_get_temp_dir()`.
pub fn temp_dir() -> std::path::PathBuf {
    // SAFETY: returns a pointer to a NUL-terminated string PHP keeps for the process.
    let p = unsafe { php_get_temporary_directory() };
    if p.is_null() {
        return std::env::temp_dir();
    }
    // SAFETY: as above.
    let s = unsafe { std::ffi::CStr::from_ptr(p) }.to_string_lossy().into_owned();
    std::path::PathBuf::from(s)
}

/// Bytes of a borrowed `zend_string` (empty for NULL).
///
/// # Safety
/// `s` must be NULL or a valid zend_string that outlives the returned slice.
pub unsafe fn zstr_bytes<'a>(s: *const zend_string) -> &'a [u8] {
    if s.is_null() {
        return &[];
    }
    // SAFETY: per the contract, s is a valid zend_string.
    unsafe { (*s).as_bytes() }
}

/// SPL's \InvalidArgumentException (SPL is always built in and starts before extensions).
pub fn invalid_argument_exception() -> &'static ClassEntry {
    // SAFETY: set by SPL's MINIT, which runs before ours (see the module's dependencies).
    unsafe { spl_ce_InvalidArgumentException.as_ref() }.expect("SPL is started before session_proxy")
}

// zend_type masks (Zend/zend_type_info.h, zend_types.h of PHP 8.2).
pub const MAY_BE_FALSE: u32 = 1 << 2;
pub const MAY_BE_LONG: u32 = 1 << 4;
pub const MAY_BE_STRING: u32 = 1 << 6;
const ZEND_TYPE_MAY_BE_MASK: u32 = (1 << 18) - 1;

/// Sets the declared return type of internal method `name` (lower case) of `ce` to the union `mask`.
/// ext-php-rs cannot declare `string|false` or `int|false`, which SessionHandlerInterface's tentative
/// return types are; this must run before the interface is implemented, where PHP checks them.
///
/// # Safety
/// MINIT only; `ce` is a class this module registered, whose arg_info ext-php-rs keeps for the process.
pub unsafe fn set_return_type(ce: *mut zend_class_entry, name: &str, mask: u32) -> bool {
    // SAFETY: per the contract; function_table holds zend_function pointers keyed by lower-case name.
    unsafe {
        let zv = ext_php_rs::ffi::zend_hash_str_find(&(*ce).function_table, name.as_ptr().cast(), name.len());
        if zv.is_null() {
            return false;
        }
        let func = (*zv).value.ptr.cast::<ext_php_rs::ffi::zend_function>();
        let arg_info = (*func).internal_function.arg_info;
        if arg_info.is_null() {
            return false;
        }
        // The return type lives just before the first argument's info.
        let ret = arg_info.offset(-1);
        (*ret).type_.type_mask = ((*ret).type_.type_mask & !ZEND_TYPE_MAY_BE_MASK) | mask;
        true
    }
}
