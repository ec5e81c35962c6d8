//! The MySQL/MariaDB engine's DDL and stored procedures (README: "MySQL / MariaDB"). `{t}` is the
//! table, `{f}` the procedures' prefix (`<table>_sp3`, `<table>_sp3s` over Symfony's table).
//!
//! Every step of the contract is one CALL (one round trip). Each procedure runs its statements with
//! autocommit, or in one READ COMMITTED transaction of its own that it commits before it returns
//! (READ COMMITTED: no gap locks, so two requests creating the same session never deadlock; the
//! second waits for the first's row and is refused). No transaction outlives a CALL. The common
//! writes on the native table (any, this version, under our lock, touch, destroy) are a single
//! autocommit statement; only a create (expect absent) needs the transaction.
//! - lock and read: `GET_LOCK(k, 0)`, then the read: a statement of its own, so it sees every write
//!   committed before the lock was ours;
//! - write and release: the write's transaction commits, then `RELEASE_LOCK(k)`: a waiter gets the
//!   lock only when the write is visible.

/// The native table (`schema=native`).
pub const NATIVE_DDL: &str = "
CREATE TABLE IF NOT EXISTS {t} (
    id         VARBINARY(256) NOT NULL PRIMARY KEY, -- session id, [a-zA-Z0-9,-]{1,256} (binary: case-sensitive)
    data       LONGBLOB NOT NULL,                   -- the encoded session, bytes as PHP gave them
    created    DOUBLE NOT NULL,                     -- unix time (s, server clock) of the first write
    updated    DOUBLE NOT NULL,                     -- unix time of the last write or timestamp update
    expiry     DOUBLE NOT NULL,                     -- updated + the writer's session.gc_maxlifetime
    user_id    VARBINARY(1024) NULL,                -- the per-user index (session_proxy.user_key)
    version    BIGINT NOT NULL,                     -- bumped by every write; a write may expect the one it read
    client_ip  VARBINARY(255) NULL,                 -- session_proxy.track_client
    user_agent BLOB NULL,
    KEY {t}_updated (updated),
    KEY {t}_expiry (expiry),
    KEY {t}_user_id (user_id)
) ENGINE = InnoDB";

/// The secret of the per-user index's session handles, one row.
pub const META_DDL: &str = "
CREATE TABLE IF NOT EXISTS {t}_meta (
    name  VARBINARY(64) NOT NULL PRIMARY KEY,
    value VARBINARY(255) NOT NULL
) ENGINE = InnoDB";

/// `lock=row`: lock rows with owner token and expiry.
pub const ROW_DDL: &str = "
CREATE TABLE IF NOT EXISTS {t}_locks (
    id      VARBINARY(256) NOT NULL PRIMARY KEY, -- session id
    owner   VARBINARY(64) NOT NULL,              -- token of the request holding the lock
    expires DOUBLE NOT NULL                      -- unix time (s, server clock) after which it may be taken over
) ENGINE = InnoDB";

/// Symfony's PdoSessionHandler table (5.4's createTable() for mysql), made only when missing; the
/// data column is LONGBLOB (Symfony's BLOB holds 64 KiB; a table Symfony made keeps its own).
pub const SYMFONY_DDL: &str = "
CREATE TABLE IF NOT EXISTS {t} (
    sess_id       VARBINARY(128) NOT NULL PRIMARY KEY,
    sess_data     LONGBLOB NOT NULL,
    sess_lifetime INTEGER UNSIGNED NOT NULL, -- unix time the session expires (time() + gc_maxlifetime at write)
    sess_time     INTEGER UNSIGNED NOT NULL, -- unix time of the write
    KEY {t}_expiry (sess_lifetime)
) COLLATE utf8mb4_bin, ENGINE = InnoDB";

/// The server's clock, in seconds with microseconds (SYSDATE: now, not the statement's start).
pub const NOW: &str = "UNIX_TIMESTAMP(SYSDATE(6))";

/// The statement's start on the server's clock: one value however often a statement names it (a
/// plain write's `updated` and `expiry`, as the procedures' `t0`).
pub const STMT_NOW: &str = "UNIX_TIMESTAMP(NOW(6))";

/// The native row's version and liveness (the reader's lifetime `life`), over the alias `s`.
pub const NATIVE_VER: &str = "s.version";
pub const NATIVE_LIVE: &str = "s.updated >= UNIX_TIMESTAMP(SYSDATE(6)) - life";

/// Symfony's row: no version column, so the version is 60 bits of an MD5 over the row; a session
/// lives until `sess_lifetime` (a value up to 315576000 is the legacy relative form).
pub const SYMFONY_VER: &str = "CAST(CONV(LEFT(MD5(CONCAT(s.sess_data, ':', s.sess_time, ':', s.sess_lifetime)), 15), 16, 10) AS SIGNED)";
macro_rules! symfony_until {
    () => {
        "(CASE WHEN s.sess_lifetime <= 315576000 THEN s.sess_lifetime + s.sess_time ELSE s.sess_lifetime END)"
    };
}
/// The unix time a Symfony row expires.
pub const SYMFONY_UNTIL: &str = symfony_until!();
pub const SYMFONY_LIVE: &str = concat!(symfony_until!(), " > UNIX_TIMESTAMP(SYSDATE(6))");

/// The data change of a write, in the caller's transaction: `ok` whether it applied, `nv` the new
/// version. Native table.
pub const NATIVE_APPLY: &str = "
CREATE PROCEDURE {f}_apply(IN op INT, IN sid VARBINARY(256), IN d LONGBLOB, IN want BIGINT, IN life DOUBLE, OUT ok BOOLEAN, OUT nv BIGINT)
MODIFIES SQL DATA
BEGIN
    DECLARE t0 DOUBLE DEFAULT UNIX_TIMESTAMP(SYSDATE(6));
    DECLARE v BIGINT DEFAULT NULL;
    DECLARE u DOUBLE DEFAULT NULL;
    DECLARE dup BOOLEAN DEFAULT FALSE;
    DECLARE CONTINUE HANDLER FOR 1062 SET dup = TRUE;
    SET ok = FALSE, nv = NULL;
    IF op = 0 THEN       -- any, or under our lock with nothing read
        INSERT INTO {t} (id, data, created, updated, expiry, version)
            VALUES (sid, d, t0, t0, t0 + life, CAST(FLOOR(RAND() * 4e18) AS SIGNED))
            ON DUPLICATE KEY UPDATE data = VALUES(data), updated = VALUES(updated), expiry = VALUES(expiry), version = version + 1;
        SELECT version INTO nv FROM {t} WHERE id = sid;
        SET ok = TRUE;
    ELSEIF op = 1 THEN   -- absent: an expired row counts as absent
        SELECT version, updated INTO v, u FROM {t} WHERE id = sid FOR UPDATE;
        IF v IS NULL THEN
            SET nv = CAST(FLOOR(RAND() * 4e18) AS SIGNED);
            INSERT INTO {t} (id, data, created, updated, expiry, version) VALUES (sid, d, t0, t0, t0 + life, nv);
            SET ok = NOT dup;
        ELSEIF u < t0 - life THEN
            UPDATE {t} SET data = d, created = t0, updated = t0, expiry = t0 + life, version = v + 1 WHERE id = sid;
            SET nv = v + 1, ok = TRUE;
        END IF;
    ELSEIF op = 2 OR op = 5 THEN  -- this version (live); or under our lock, while the row exists
        SELECT version, updated INTO v, u FROM {t} WHERE id = sid FOR UPDATE;
        IF v IS NOT NULL AND ((op = 2 AND v = want AND u >= t0 - life) OR op = 5) THEN
            UPDATE {t} SET data = d, updated = t0, expiry = t0 + life, version = v + 1 WHERE id = sid;
            SET nv = v + 1, ok = TRUE;
        END IF;
    ELSEIF op = 3 THEN   -- touch
        UPDATE {t} SET updated = t0, expiry = t0 + life WHERE id = sid;
        SET ok = TRUE;
    ELSE                 -- destroy
        DELETE FROM {t} WHERE id = sid;
        SET ok = TRUE;
    END IF;
END";

/// The same over Symfony's table (whole seconds, its expiry rule, the row hash as version).
pub const SYMFONY_APPLY: &str = "
CREATE PROCEDURE {f}_apply(IN op INT, IN sid VARBINARY(256), IN d LONGBLOB, IN want BIGINT, IN life DOUBLE, OUT ok BOOLEAN, OUT nv BIGINT)
MODIFIES SQL DATA
BEGIN
    DECLARE now0 DOUBLE DEFAULT UNIX_TIMESTAMP(SYSDATE(6));
    DECLARE t0 BIGINT DEFAULT FLOOR(now0);
    DECLARE e0 BIGINT DEFAULT FLOOR(now0 + life);
    DECLARE v BIGINT DEFAULT NULL;
    DECLARE lv BOOLEAN DEFAULT NULL;
    DECLARE dup BOOLEAN DEFAULT FALSE;
    DECLARE CONTINUE HANDLER FOR 1062 SET dup = TRUE;
    SET ok = FALSE, nv = NULL;
    IF op = 0 THEN
        INSERT INTO {t} (sess_id, sess_data, sess_lifetime, sess_time) VALUES (sid, d, e0, t0)
            ON DUPLICATE KEY UPDATE sess_data = VALUES(sess_data), sess_lifetime = VALUES(sess_lifetime), sess_time = VALUES(sess_time);
        SELECT {ver} INTO nv FROM {t} AS s WHERE s.sess_id = sid;
        SET ok = TRUE;
    ELSEIF op = 1 OR op = 2 OR op = 5 THEN
        SELECT {ver}, {live} INTO v, lv FROM {t} AS s WHERE s.sess_id = sid FOR UPDATE;
        IF op = 1 AND v IS NULL THEN
            INSERT INTO {t} (sess_id, sess_data, sess_lifetime, sess_time) VALUES (sid, d, e0, t0);
            SET ok = NOT dup;
        ELSEIF v IS NOT NULL AND ((op = 1 AND NOT lv) OR (op = 2 AND v = want AND lv) OR op = 5) THEN
            UPDATE {t} SET sess_data = d, sess_lifetime = e0, sess_time = t0 WHERE sess_id = sid;
            SET ok = TRUE;
        END IF;
        IF ok THEN
            SELECT {ver} INTO nv FROM {t} AS s WHERE s.sess_id = sid;
        END IF;
    ELSEIF op = 3 THEN
        UPDATE {t} SET sess_lifetime = e0, sess_time = t0 WHERE sess_id = sid;
        SET ok = TRUE;
    ELSE
        DELETE FROM {t} WHERE sess_id = sid;
        SET ok = TRUE;
    END IF;
END";

/// The answer of a write procedure: `{lost}` is the lock-lost column's value (lock rows) or empty.
const ANSWER: &str = "
    IF ok THEN
        SELECT {lost} TRUE, nv, NULL, NULL;
    ELSE
        SELECT {lost} FALSE, NULL, s.{data}, {ver} FROM (SELECT 1) AS one LEFT JOIN {t} AS s ON s.{id} = sid AND {live};
    END IF;";

/// Write and release (advisory locks): `rel` releases `k` once the write committed. `{slow}` says
/// which ops take the transaction and `{f}_apply`; on the native table the others (`{fast}`) are one
/// autocommit statement each, committed when it ends, so still before the release.
const WRITE: &str = "
CREATE PROCEDURE {f}_write(IN k VARCHAR(64), IN rel BOOLEAN, IN op INT, IN sid VARBINARY(256), IN d LONGBLOB, IN want BIGINT, IN life DOUBLE)
MODIFIES SQL DATA
BEGIN
    DECLARE ok BOOLEAN DEFAULT FALSE;
    DECLARE nv BIGINT DEFAULT NULL;
    DECLARE t0 DOUBLE DEFAULT UNIX_TIMESTAMP(SYSDATE(6));
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; IF rel THEN DO RELEASE_LOCK(k); END IF; RESIGNAL; END;
    IF {slow} THEN
        SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
        START TRANSACTION;
        CALL {f}_apply(op, sid, d, want, life, ok, nv);
        COMMIT;{fast}
    END IF;
    IF rel THEN DO RELEASE_LOCK(k); END IF;{answer}
END";

/// The native table's common writes, each one statement (what `{f}_apply` does for them, without its
/// transaction, row read and second SELECT): the new version is `LAST_INSERT_ID(version + 1)`, read
/// back by `LAST_INSERT_ID()` (the table has no AUTO_INCREMENT column to disturb it).
/// - any (0): the upsert; a new row gets a random version;
/// - this version (2), while live; under our lock while the row exists (5): one UPDATE, applied when
///   it matched its row (a single-row UPDATE by primary key is atomic: no other write in between);
/// - touch (3) and destroy (4), as in `{f}_apply`.
const NATIVE_FAST: &str = "
    ELSEIF op = 0 THEN
        SET nv = CAST(FLOOR(RAND() * 4e18) AS SIGNED);
        INSERT INTO {t} (id, data, created, updated, expiry, version) VALUES (sid, d, t0, t0, t0 + life, nv)
            ON DUPLICATE KEY UPDATE data = VALUES(data), updated = VALUES(updated), expiry = VALUES(expiry), version = LAST_INSERT_ID(version + 1);
        -- 1: inserted (at nv), 2: updated
        IF ROW_COUNT() <> 1 THEN SET nv = CAST(LAST_INSERT_ID() AS SIGNED); END IF;
        SET ok = TRUE;
    ELSEIF op = 5 THEN
        UPDATE {t} SET data = d, updated = t0, expiry = t0 + life, version = LAST_INSERT_ID(version + 1) WHERE id = sid;
        SET ok = (ROW_COUNT() = 1);
        IF ok THEN SET nv = CAST(LAST_INSERT_ID() AS SIGNED); END IF;
    ELSEIF op = 2 THEN
        UPDATE {t} SET data = d, updated = t0, expiry = t0 + life, version = LAST_INSERT_ID(version + 1)
            WHERE id = sid AND version = want AND updated >= t0 - life;
        SET ok = (ROW_COUNT() = 1);
        IF ok THEN SET nv = CAST(LAST_INSERT_ID() AS SIGNED); END IF;
    ELSEIF op = 3 THEN
        UPDATE {t} SET updated = t0, expiry = t0 + life WHERE id = sid;
        SET ok = TRUE;
    ELSE
        DELETE FROM {t} WHERE id = sid;
        SET ok = TRUE;";

/// Lock and read (advisory locks): one try of `GET_LOCK`, the read under it.
const LOCK: &str = "
CREATE PROCEDURE {f}_lock(IN k VARCHAR(64), IN sid VARBINARY(256), IN life DOUBLE)
READS SQL DATA
BEGIN
    IF GET_LOCK(k, 0) = 1 THEN
        SELECT TRUE, s.{data}, {ver}, {uid} FROM (SELECT 1) AS one LEFT JOIN {t} AS s ON s.{id} = sid AND {live};
    ELSE
        SELECT FALSE, NULL, NULL, NULL;
    END IF;
END";

/// `lock=row` (native table only): take the lock row (free, or expired), then read. For connection
/// poolers in transaction mode (ProxySQL, pgBouncer-style): nothing is left on the connection.
const ROW_LOCK: &str = "
CREATE PROCEDURE {f}_rlock(IN sid VARBINARY(256), IN life DOUBLE, IN own VARBINARY(64), IN lexp DOUBLE)
MODIFIES SQL DATA
BEGIN
    DECLARE t0 DOUBLE DEFAULT UNIX_TIMESTAMP(SYSDATE(6));
    DECLARE o VARBINARY(64) DEFAULT NULL;
    DECLARE e DOUBLE DEFAULT NULL;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
    START TRANSACTION;
    -- owner is assigned first: both conditions read the old expires.
    INSERT INTO {t}_locks (id, owner, expires) VALUES (sid, own, t0 + lexp)
        ON DUPLICATE KEY UPDATE owner = IF(expires < t0, VALUES(owner), owner), expires = IF(expires < t0, VALUES(expires), expires);
    SELECT owner, expires INTO o, e FROM {t}_locks WHERE id = sid;
    COMMIT;
    IF o = own AND e = t0 + lexp THEN
        SELECT TRUE, s.data, s.version, NULL, s.user_id FROM (SELECT 1) AS one LEFT JOIN {t} AS s ON s.id = sid AND s.updated >= UNIX_TIMESTAMP(SYSDATE(6)) - life;
    ELSE
        SELECT FALSE, NULL, NULL, e - t0, NULL;
    END IF;
END";

/// `lock=row` write: the lock row's delete and the write commit together; `lost` when it was not ours.
const ROW_WRITE: &str = "
CREATE PROCEDURE {f}_rwrite(IN own VARBINARY(64), IN op INT, IN sid VARBINARY(256), IN d LONGBLOB, IN want BIGINT, IN life DOUBLE)
MODIFIES SQL DATA
BEGIN
    DECLARE ok BOOLEAN DEFAULT FALSE;
    DECLARE nv BIGINT DEFAULT NULL;
    DECLARE n INT DEFAULT 1;
    DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;
    SET TRANSACTION ISOLATION LEVEL READ COMMITTED;
    START TRANSACTION;
    IF own IS NOT NULL THEN
        DELETE FROM {t}_locks WHERE id = sid AND owner = own;
        SET n = ROW_COUNT();
    END IF;
    -- A destroy deletes also when the lock is no longer ours (as on the other engines).
    IF n = 0 AND op <> 4 THEN
        ROLLBACK;
        SELECT TRUE, FALSE, NULL, NULL, NULL;
    ELSE
        CALL {f}_apply(op, sid, d, want, life, ok, nv);
        COMMIT;{answer}
    END IF;
END";

/// The procedures of a schema, by name suffix, with every placeholder but `{t}` and `{f}` filled in.
pub fn procedures(native: bool, row: bool) -> Vec<(&'static str, String)> {
    let (id, data, ver, live, apply) =
        if native { ("id", "data", NATIVE_VER, NATIVE_LIVE, NATIVE_APPLY) } else { ("sess_id", "sess_data", SYMFONY_VER, SYMFONY_LIVE, SYMFONY_APPLY) };
    // Symfony's table keeps no user: its reads answer NULL there.
    let uid = if native { "s.user_id" } else { "NULL" };
    let fill = |s: &str| s.replace("{id}", id).replace("{data}", data).replace("{ver}", ver).replace("{live}", live).replace("{uid}", uid);
    let answer = |lost: &str| fill(&ANSWER.replace("{lost}", lost));
    let mut v = vec![
        ("apply", fill(apply)),
        ("write", WRITE.replace("{slow}", if native { "op = 1" } else { "TRUE" }).replace("{fast}", if native { NATIVE_FAST } else { "" }).replace("{answer}", &answer(""))),
        ("lock", fill(LOCK)),
    ];
    if row {
        v.push(("rlock", ROW_LOCK.to_string()));
        v.push(("rwrite", ROW_WRITE.replace("{answer}", &answer("FALSE,"))));
    }
    v
}
