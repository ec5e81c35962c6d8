<?php

/**
 * session_proxy — PHP stubs for IDEs and static analysis.
 *
 * The extension registers the native save handler "session_proxy":
 *
 *     extension = session_proxy
 *     session.save_handler = session_proxy
 *     session.save_path = "sqlite:///var/lib/php/sessions/sessions.sqlite"
 *
 * session.save_path (DSN):
 *   ""                                   SQLite file session_proxy.sqlite in sys_get_temp_dir()
 *   "/abs/dir"                           SQLite file /abs/dir/session_proxy.sqlite
 *   "sqlite:///abs/file.sqlite"          options: busy_timeout=MS (0..600000, 5000), synchronous=normal|full
 *   "files:///abs/dir"                   PHP's own sess_<id> format; options: depth=N (0..8), mode=0600
 *
 * INI directives (all PHP_INI_ALL; an invalid value is rejected with a warning and the old value stays):
 *   session_proxy.locking              = 1      per-session lock from read to write/close
 *   session_proxy.lock_wait_timeout    = 30000  ms a request waits for another request's lock (0..3600000)
 *   session_proxy.lock_expire          = 0      s before a vanished holder's lock may be taken over
 *                                               (0..86400; 0 = max_execution_time, or 30 when that is 0)
 *   session_proxy.lock_timeout_action  = fail   fail: session_start() returns false;
 *                                               readonly: open without lock, refuse writes with a notice
 *
 * This version defines no PHP functions, classes or constants; the SessionProxy\Handler class for
 * frameworks is planned.
 */
