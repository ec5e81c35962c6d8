//! The Zend skin: module entry, MINIT/MSHUTDOWN/MINFO, INI registration and the save handler hooks.
//! Nothing here decides behaviour; it translates to and from the plain-Rust core.

mod atrest;
mod class;
mod ffi;
mod hooks;
mod ini;
mod readclose;
mod stats;
mod users;
mod words;

use std::os::raw::c_int;

use ext_php_rs::builders::ModuleBuilder;
use ext_php_rs::error::php_error;
use ext_php_rs::flags::ErrorType;
use ext_php_rs::internal::{ModuleStartupMutex, MODULE_STARTUP_INIT};
use ext_php_rs::zend::{IniEntryDef, ModuleEntry, StaticModuleEntry};
use ext_php_rs::{info_table_end, info_table_row, info_table_start};

use ffi::{ModuleDep, ModuleDeps, MODULE_DEP_REQUIRED};

/// `ZEND_MOD_REQUIRED("session")` (and SPL, for \InvalidArgumentException): PHP starts them first
/// and refuses to load us without them.
static DEPS: ModuleDeps<3> = ModuleDeps([
    ModuleDep { name: c"session".as_ptr(), rel: std::ptr::null(), version: std::ptr::null(), kind: MODULE_DEP_REQUIRED },
    ModuleDep { name: c"spl".as_ptr(), rel: std::ptr::null(), version: std::ptr::null(), kind: MODULE_DEP_REQUIRED },
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
            .info_function(minfo)
            .class::<class::Handler>();
        let builder = stats::functions(builder);
        let builder = users::functions(builder);
        let (mut entry, startup, owned) = builder.try_into().expect("the module definition is static and valid");
        entry.deps = DEPS.0.as_ptr().cast();
        STARTUP.lock().replace(startup);
        (entry, owned)
    })
}

extern "C" fn minit(ty: c_int, module_number: c_int) -> c_int {
    hooks::guard(ffi::FAILURE, || {
        // The counters' shared block, made here so that php-fpm's workers, forked later, share it.
        crate::metrics::global();
        IniEntryDef::register(ini::ENTRIES.as_slice(), module_number);
        // SAFETY: MINIT is the documented place to register a save handler; MODULE is 'static.
        if unsafe { ffi::php_session_register_module(&hooks::MODULE) } != ffi::SUCCESS {
            php_error(&ErrorType::CoreWarning, "session_proxy: cannot register the save handler");
            return ffi::FAILURE;
        }
        let registered = ext_php_rs::internal::startup_guard(|| match STARTUP.lock().as_ref() {
            Some(s) => s.startup(ty, module_number),
            None => Ok(()),
        });
        if registered != ffi::SUCCESS {
            return registered;
        }
        if ext_php_rs::internal::startup_guard(class::register_exception) != ffi::SUCCESS {
            return ffi::FAILURE;
        }
        // SAFETY: MINIT.
        if !unsafe { readclose::install() } {
            php_error(&ErrorType::CoreWarning, "session_proxy: cannot find session_start() to wrap for read_and_close");
            return ffi::FAILURE;
        }
        // SAFETY: MINIT.
        if !unsafe { users::install() } {
            php_error(&ErrorType::CoreWarning, "session_proxy: cannot find session_regenerate_id() to wrap for the user index");
            return ffi::FAILURE;
        }
        implement_session_interfaces()
    })
}

/// Gives SessionProxy\Handler the exact return types of the session interfaces, then implements them
/// (declared here rather than with `#[php(implements)]`, which would check the types before the fix).
fn implement_session_interfaces() -> c_int {
    use ext_php_rs::class::RegisteredClass;
    let ce = std::ptr::from_ref(class::Handler::get_metadata().ce()).cast_mut();
    // SAFETY: MINIT, our own freshly registered class; the interface entries are set by ext/session,
    // which starts before us (module dependency).
    unsafe {
        if !ffi::set_return_type(ce, "read", ffi::MAY_BE_STRING | ffi::MAY_BE_FALSE)
            || !ffi::set_return_type(ce, "gc", ffi::MAY_BE_LONG | ffi::MAY_BE_FALSE)
        {
            php_error(&ErrorType::CoreWarning, "session_proxy: cannot declare SessionProxy\\Handler's return types");
            return ffi::FAILURE;
        }
        for iface in [ffi::php_session_iface_entry, ffi::php_session_id_iface_entry, ffi::php_session_update_timestamp_iface_entry] {
            if iface.is_null() {
                php_error(&ErrorType::CoreWarning, "session_proxy: ext/session's interfaces are not registered");
                return ffi::FAILURE;
            }
            ext_php_rs::ffi::zend_do_implement_interface(ce, iface);
        }
    }
    ffi::SUCCESS
}

extern "C" fn mshutdown(ty: c_int, module_number: c_int) -> c_int {
    // The counters' file goes with the process that made it (php-fpm's master, a CLI run).
    hooks::guard((), || crate::metrics::global().remove_file());
    // Pooled Memcached connections close here, not at exit(): each first reads the answers to the
    // releases it sent without waiting (see `Drop for MemcachedStore`).
    hooks::guard((), crate::pool::close_memcached);
    // SQLite's checkpointer threads end before PHP unloads the code they run.
    hooks::guard((), crate::store::sqlite::stop_checkpointers);
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
        info_table_row!("Class", "SessionProxy\\Handler");
        info_table_row!("Engines", "sqlite, files, redis (standalone, unix socket, cluster, sentinel; TLS for standalone, cluster and sentinel; phpredis' redis and rediscluster save_path syntax), memcached, pgsql (PostgreSQL: advisory locks, several hosts with failover, TLS), mysql (MySQL/MariaDB: GET_LOCK or lock rows, TCP or unix socket, TLS)");
        info_table_row!("SQLite library", rusqlite::version());
        info_table_row!("SQLite checkpoints", crate::store::sqlite::describe_checkpoints());
        info_table_row!("DSN forms", crate::dsn::ACCEPTED_FORMS);
        info_table_row!("Pooled connections (this process)", crate::pool::idle_count().to_string());
        info_table_row!("Pooled DSNs kept", format!("the {} most recently used per process", crate::pool::MAX_STACKS));
        info_table_row!("Counters", stats::sharing());
        for (name, value) in atrest::info_rows() {
            info_table_row!(name, value);
        }
        info_table_end!();
        stats::info_table();
        // SAFETY: PHP passes our own module entry.
        unsafe { ffi::display_ini_entries(module) };
    })
}

#[cfg(test)]
mod tests {}
