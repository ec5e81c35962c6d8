<?php

/**
 * session_proxy — PHP stubs for IDEs and static analysis. php-tests/stub_matches.phpt checks that this
 * file and the loaded extension agree (classes, methods, parameters, types, INI directives).
 *
 * Native save handler "session_proxy":
 *
 *     extension = session_proxy
 *     session.save_handler = session_proxy
 *     session.save_path = "sqlite:///var/lib/php/sessions/sessions.sqlite"
 *
 * session.save_path (DSN):
 *   ""                                   SQLite file session_proxy.sqlite in sys_get_temp_dir()/session_proxy-<uid>/ (0700, checked)
 *   "/abs/dir"                           SQLite file /abs/dir/session_proxy.sqlite
 *   "sqlite:///abs/file.sqlite"          options: busy_timeout=MS (0..600000, 5000), synchronous=normal|full
 *   "files:///abs/dir"                   PHP's own sess_<id> format; options: depth=N (0..8), mode=0600
 *   "redis://[[user]:password@]host[:port][/db][?prefix=…&timeout=S&read_timeout=S&persistent=0|1&busy_poll=µS]"
 *   "rediss://…?ca=…&cert=…&key=…&verify=full|ca|none"   Redis over TLS
 *   "unix:///path/redis.sock[?db=N&prefix=…]"             Redis over a unix socket
 *   "tcp://host:port?auth=…&database=N&prefix=…[,tcp://…]" phpredis' own save_path syntax, same keys
 *   "redis-cluster://host:port[,host:port…]"              Redis Cluster seeds (locking works in cluster mode)
 *   "rediss-cluster://host:port[,…]?ca=…&verify=…"         Redis Cluster over TLS (the rediss:// options)
 *   "redis-sentinel://host:port[,…]/<master-name>"         master discovery and failover via Sentinel;
 *                                        sentinel_user=…&sentinel_password=… for Sentinels with requirepass
 *   "rediss-sentinel://host:port[,…]/<master-name>?ca=…"   Sentinel over TLS (Sentinels and master)
 *   "seed[]=host:port&seed[]=…&auth=…&prefix=…"           phpredis' rediscluster save_path, verbatim
 *   "memcached://host[:port][,host[:port]|,/unix.sock…][?prefix=…&replicas=N&timeout=MS&retry=MS&weights=…&lock_placement=compat|session&busy_poll=µS]"
 *                                        php-memcached's keys and ketama placement
 *   The README lists every option with its range and default.
 *
 * INI directives (all PHP_INI_ALL; an invalid value is rejected with a warning and the old value stays):
 * @ini session_proxy.locking = 1
 *      On: a per-session lock held from read to write/close. Off: no lock, the last writer wins.
 *      optimistic: no lock and no wait; the write is a compare-and-swap against the version read, and a
 *      concurrent change is merged key by key (top-level $_SESSION keys).
 * @ini session_proxy.lock_wait_timeout = 30000
 *      Milliseconds a request waits for another request's lock (0..3600000).
 * @ini session_proxy.lock_expire = 0
 *      Seconds after which a lock whose holder vanished may be taken over (0..86400);
 *      0 = max_execution_time, or 30 when that is 0.
 * @ini session_proxy.lock_timeout_action = fail
 *      On lock wait timeout: fail (session_start() returns false) or readonly (open without the lock, with a notice;
 *      refuse changes with a notice).
 * @ini session_proxy.merge_conflict = last
 *      locking=optimistic, a top-level key changed by two requests at once: last (this request's value wins) or
 *      first (the stored value wins; this request's change to it is dropped with a notice).
 * @ini session_proxy.user_key =
 *      The top-level $_SESSION key whose value (a string, or an int as its digits) binds the session to a user
 *      in the per-user index (letters, digits, _ . : -; at most 127 bytes). Empty: only set_user() binds.
 * @ini session_proxy.track_client = 0
 *      Record the client's IP address (REMOTE_ADDR) and user agent with a session's binding, listed by
 *      user_sessions(). Off by default: they are personal data, kept only where the site needs them.
 * @ini session_proxy.migrate_from =
 *      Read-through migration: the old store's DSN (any session.save_path form). A session the store lacks is read
 *      from it and moved at its first write (or unchanged request); strict mode accepts ids of either store;
 *      destroy removes both; the lock is taken in both. An old store that fails costs one warning per request.
 *      Empty: off.
 * @ini session_proxy.encryption_key = ''
 *      Encrypt sessions at rest (XChaCha20-Poly1305): an absolute path of a key file, or env:NAME; the key is 32
 *      raw bytes or 64 hex digits. Never the key itself. Empty: off. A key that cannot be read refuses sessions.
 * @ini session_proxy.encryption_keys_old = ''
 *      Comma-separated old keys (same forms), still read; re-encrypted under encryption_key at the next write.
 * @ini session_proxy.hash_ids = 0
 *      On: engines store and lock under HMAC-SHA256(key, id), never the id.
 * @ini session_proxy.hash_key = ''
 *      The hash_ids key (same forms as encryption_key); empty: derived from encryption_key by HKDF-SHA256.
 * @ini session_proxy.compression = off
 *      off, zstd or lz4, for sessions of at least compression_threshold bytes.
 * @ini session_proxy.compression_threshold = 1024
 *      Sessions shorter than this many bytes are stored uncompressed.
 */

namespace SessionProxy;

/**
 * Thrown by Handler::__construct() for a malformed DSN or a bad option, with the same message the
 * native handler warns with.
 */
class Exception extends \InvalidArgumentException
{
}

/**
 * The session_proxy core as a save-handler object, for session_set_save_handler(), frameworks
 * (Symfony's NativeSessionStorage, Laravel's session Store) and subclasses. Same engines, locking,
 * lazy write, strict mode and error semantics as the native handler. Storage failures during a request
 * are a warning and false, as with PHP's SessionHandler. Methods may be called without open() (the
 * storage is opened on first use); the lock is released by write(), destroy(), close(), or when the
 * object is freed.
 *
 *     session_set_save_handler(new \SessionProxy\Handler('sqlite:///var/lib/app/sessions.sqlite'), true);
 */
class Handler implements \SessionHandlerInterface, \SessionIdInterface, \SessionUpdateTimestampHandlerInterface
{
    /**
     * @param string $dsn A session.save_path DSN (see above).
     * @param array|null $options session_proxy.* directives without the prefix: locking (bool or
     *     "optimistic"), lock_wait_timeout (int ms), lock_expire (int s), lock_timeout_action ("fail"|"readonly"),
     *     merge_conflict ("last"|"first"), migrate_from (a DSN), encryption_key, encryption_keys_old, hash_ids (bool),
     *     hash_key, compression ("off"|"zstd"|"lz4"), compression_threshold (int bytes).
     *     Options not given follow the INI values in force when the session is opened.
     * @throws Exception for a malformed DSN, an unknown option or an invalid value.
     */
    public function __construct(string $dsn, ?array $options = null) {}

    /** Opens the storage named by the constructor's DSN; $path and $name are not used. */
    public function open(string $path, string $name): bool {}

    /** Releases the lock (if held) and returns the connection to the per-process pool. */
    public function close(): bool {}

    /**
     * Takes the session's lock (when locking is on) and returns its data: "" for a new or expired
     * session, false with a warning on failure (lock wait timeout with action fail, storage error,
     * invalid id).
     */
    public function read(string $id): string|false {}

    /** Writes the data and releases the lock in one step; false with a warning if refused or failed. */
    public function write(string $id, string $data): bool {}

    /** Deletes the session (refused with a warning when the session was opened read-only). */
    public function destroy(string $id): bool {}

    /** Deletes sessions idle for more than $max_lifetime seconds; returns how many, or false. */
    public function gc(int $max_lifetime): int|false {}

    /**
     * A new id from PHP's generator (session.sid_length, sid_bits_per_character), not looked up in the store (no
     * round trip): its first read() refuses it, with a warning, if it names a stored session.
     */
    public function create_sid(): string {}

    /** True when a live session with this id exists (used by session.use_strict_mode). */
    public function validateId(string $id): bool {}

    /** lazy_write: refreshes the expiry of unchanged data without rewriting it, and releases the lock. */
    public function updateTimestamp(string $id, string $data): bool {}

    /**
     * Binds this handler's session to $user in the per-user index; it persists with the next write. A
     * binding that fails ends the session and makes that write() return false (see set_user()).
     */
    public function setUser(string $user): void {}

    /**
     * $user's live sessions (see \SessionProxy\user_sessions()); "current" is this handler's session.
     * @return array<int, array{handle: string, created: int, last_active: int, current: bool, ip?: string, user_agent?: string}>|false
     */
    public function userSessions(string $user): mixed {}

    /**
     * Ends all of $user's sessions (but this handler's current one with $keep_current).
     * @return int|false how many were ended, or false with a warning
     */
    public function destroyUserSessions(string $user, bool $keep_current = false): mixed {}

    /** Ends the session a handle from userSessions() names; false when it names no live session. */
    public function destroySessionHandle(string $handle): bool {}

    /**
     * Sessions written or touched in the last $seconds (SQLite only; the other engines warn and return false).
     * @return int|false
     */
    public function countActive(int $seconds): mixed {}
}

/**
 * Binds the active session to $user in the per-user index (issue 13); it persists with the session's next
 * write (or timestamp update). A user is 1..1024 bytes, any bytes. Call it at login; an unchanged binding
 * costs nothing, a changed one one more step. A warning without an active session, or for an empty or
 * too long name. On a Redis that evicts keys when full (maxmemory with a policy other than noeviction),
 * binding and listing warn: a binding evicted while its session lives hides that session from its list.
 * When the binding itself fails (the index's server is down), the session is ended rather than left
 * logged in without its user's index knowing it: the write fails (PHP warns "Failed to write session
 * data") with a warning naming the cause, and the user starts a new session.
 */
function set_user(string $user): void {}

/**
 * $user's live sessions, oldest first:
 *
 *     [['handle' => '616c696365.9f…', 'created' => 1764590000, 'last_active' => 1764593600, 'current' => true,
 *       'ip' => '192.0.2.7', 'user_agent' => 'Mozilla/5.0 …'],   // ip and user_agent only with track_client = On
 *      …]
 *
 * The handle names the session for destroy_session_handle(); it is never the session id (a keyed hash under
 * a per-installation secret). Works on the active session's storage, or on session.save_path's.
 * @return array<int, array{handle: string, created: int, last_active: int, current: bool, ip?: string, user_agent?: string}>|false
 */
function user_sessions(string $user): mixed {}

/**
 * Ends all of $user's sessions ("log out everywhere"; with $keep_current, but the current one): each is
 * deleted with its lock, so that a request inside it cannot bring it back with its late write.
 * @return int|false how many were ended, or false with a warning
 */
function destroy_user_sessions(string $user, bool $keep_current = false): mixed {}

/** Ends the session a handle from user_sessions() names; false when it names no live session. */
function destroy_session_handle(string $handle): bool {}

/**
 * How many sessions were written or touched in the last $seconds ("who is online"), on engines that can
 * tell without reading every session (SQLite); the others warn and return false.
 * @return int|false
 */
function count_active(int $seconds): mixed {}

/**
 * The counters of every engine (sqlite, files, redis, memcached), summed over every process that shares
 * them: all php-fpm workers of a pool (the counters live in memory shared from startup); under the CLI,
 * this process and the children it forks. See the README, "Metrics".
 *
 *     ['redis' => ['requests' => 12, 'reads' => 12, 'writes' => 11, 'touches' => 1, 'destroys' => 0,
 *                  'lock_acquisitions' => 12, 'lock_timeouts' => 0, 'round_trips' => 24,
 *                  'read_bytes' => 4096, 'written_bytes' => 4000, 'merges' => 0, 'merge_conflicts' => 0,
 *                  'old_store_reads' => 0, 'migrated' => 0,
 *                  'lock_wait_ms' => ['buckets' => [1 => 11, 5 => 11, 10 => 11, 50 => 11, 100 => 11,
 *                                                   500 => 12, 1000 => 12, 5000 => 12, '+Inf' => 12],
 *                                     'sum_ms' => 201.5, 'count' => 12],
 *                  'writes_refused' => ['lock_lost' => 0, 'conflict' => 0, 'too_large' => 0, 'storage_error' => 0],
 *                  'storage_errors' => [['kind' => 'timeout', 'at' => 'redis://10.0.0.5:6379', 'count' => 1]]],
 *      'sqlite' => [...], 'files' => [...], 'memcached' => [...]]
 *
 * lock_wait_ms: every lock taken, by how long it was waited for (cumulative buckets: waits of at most
 * that many milliseconds). storage_errors: by kind and host or path (passwords masked); once 64 places
 * are counted, new ones count under kind and at "other".
 */
function stats(): array {}

/**
 * The same counters in Prometheus' text exposition format 0.0.4, for a /metrics page:
 *
 *     header('Content-Type: text/plain; version=0.0.4');
 *     echo \SessionProxy\stats_prometheus();
 */
function stats_prometheus(): string {}
