//! The Zend skin: module entry, MINIT/MSHUTDOWN/MINFO, INI registration and the save handler hooks.
//! Nothing here decides behaviour; it translates to and from the plain-Rust core.

mod ffi;
mod hooks;
mod ini;

use std::os::raw::c_int;

use ext_php_rs::builders::ModuleBuilder;
use ext_php_rs::error::php_error;
use ext_php_rs::flags::ErrorType;
use ext_php_rs::internal::{ModuleStartupMutex, MODULE_STARTUP_INIT};
use ext_php_rs::zend::{IniEntryDef, ModuleEntry, StaticModuleEntry};
use ext_php_rs::{info_table_end, info_table_row, info_table_start};

use ffi::{ModuleDep, ModuleDeps, MODULE_DEP_REQUIRED};

/// `ZEND_MOD_REQUIRED("session")`: PHP starts ext/session first and refuses to load us without it.
static DEPS: ModuleDeps<2> = ModuleDeps([
    ModuleDep { name: c"session".as_ptr(), rel: std::ptr::null(), version: std::ptr::null(), kind: MODULE_DEP_REQUIRED },
    ModuleDep { name: std::ptr::null(), rel: std::ptr::null(), version: std::ptr::null(), kind: 0 },
]);

static STARTUP: ModuleStartupMutex = MODULE_STARTUP_INIT;

/// Written by hand rather than with `#[php_module]`, whose entry always has `deps = NULL`.
#[unsafe(no_mangle)]
pub extern "C" fn get_module() -> *mut ModuleEntry {
    static ENTRY: StaticModuleEntry = StaticModuleEntry::new();
    ENTRY.get_or_init(|| {
        let builder = ModuleBuilder::new("session_proxy", crate::VERSION)
            .startup_function(minit)
            .shutdown_function(mshutdown)
            .info_function(minfo);
        let (mut entry, startup, owned) = builder.try_into().expect("the module definition is static and valid");
        entry.deps = DEPS.0.as_ptr().cast();
        STARTUP.lock().replace(startup);
        (entry, owned)
    })
}

extern "C" fn minit(ty: c_int, module_number: c_int) -> c_int {
    hooks::guard(ffi::FAILURE, || {
        IniEntryDef::register(ini::ENTRIES.as_slice(), module_number);
        // SAFETY: MINIT is the documented place to register a save handler; MODULE is 'static.
        if unsafe { ffi::php_session_register_module(&hooks::MODULE) } != ffi::SUCCESS {
            php_error(&ErrorType::CoreWarning, "session_proxy: cannot register the save handler");
            return ffi::FAILURE;
        }
        ext_php_rs::internal::startup_guard(|| match STARTUP.lock().as_ref() {
            Some(s) => s.startup(ty, module_number),
            None => Ok(()),
        })
    })
}

extern "C" fn mshutdown(ty: c_int, module_number: c_int) -> c_int {
    // SAFETY: unregisters what minit registered for this module number.
    unsafe { ffi::zend_unregister_ini_entries_ex(module_number, ty) };
    ffi::SUCCESS
}

extern "C" fn minfo(module: *mut ModuleEntry) {
    hooks::guard((), || {
        info_table_start!();
        info_table_row!("session_proxy support", "enabled");
        info_table_row!("Version", crate::VERSION);
        info_table_row!("Save handler", "session_proxy");
        info_table_row!("Engines", "sqlite, files, redis (standalone, TLS, unix socket, phpredis save_path syntax, cluster, sentinel)");
        info_table_row!("SQLite library", rusqlite::version());
        info_table_row!("DSN forms", crate::dsn::ACCEPTED_FORMS);
        info_table_row!("Pooled connections (this process)", crate::pool::idle_count().to_string());
        info_table_end!();
        // SAFETY: PHP passes our own module entry.
        unsafe { ffi::display_ini_entries(module) };
    })
}

#[cfg(test)]
mod tests {}
