--TEST--
SQLite engine: a process that used a session, pcntl_forks and exits (a daemon's start): its child holds its own locks on the database, so another program opening and closing the database deletes no log under it, and none of the child's writes is lost
--FILE--
<?php
require __DIR__ . '/inc/locking.inc';

// SQLite keeps one record per database file and process of the locks it holds. A forked child
// inherits its parent's record, though none of the parent's kernel locks: a connection the child
// opened beside the inherited ones took no lock in the kernel, as the record said it held them.
// Once the parent had exited, a program that closed the database found itself its last user,
// checkpointed it, and deleted its -wal and -shm: every later commit of the child went into a
// deleted file, reported as stored (before the fix: 1 of the child's 51 sessions stored).
const PARENT = 700; // sessions of 3000 B: 2450 log frames, past the 2000 that start the thread

function scenario(string $mode): void
{
    $d = sp_tmpdir("fork-exit-$mode");
    $db = "$d/sessions.sqlite";
    $dsn = "sqlite://$db";
    $sig = sp_tmpdir("fork-exit-sig-$mode");
    // The parent writes enough (a page each) for its checkpointer thread to start: that thread's
    // connection is inherited too, and closed by the child like the pooled one.
    $h = lk_spawn('
        for ($i = 0; $i < $P["parent"]; $i++) {
            session_id("parent$i");
            session_start();
            $_SESSION["by"] = str_repeat("p", 3000);
            session_write_close();
        }
        $threads = array_map(fn($f) => trim(file_get_contents($f)), glob("/proc/self/task/*/comm"));
        if ($P["open"]) {
            session_id("held");
            session_start();
        }
        $pid = pcntl_fork();
        if ($pid !== 0) {
            lk_done(["forked" => $pid > 0, "checkpointer" => in_array("sp-checkpoint", $threads, true)]);
            exit(0);
        }
        $write = function (string $id) {
            session_id($id);
            $ok = session_start();
            $_SESSION["by"] = $id;
            return $ok && session_write_close();
        };
        // A session open at the fork ends in the child too, on the parent\'s connection, which is then
        // closed, never pooled.
        $ok = (!$P["open"] || session_write_close()) && $write("child0");
        lk_signal($P["sig"] . "/ready", ["pid" => getmypid(), "ok" => $ok]);
        lk_await($P["sig"] . "/go", 60.0);
        $stored = 0;
        for ($i = 1; $i <= 50; $i++) {
            $stored += $write("child$i") ? 1 : 0;
        }
        lk_signal($P["sig"] . "/done", ["stored" => $stored, "errors" => $GLOBALS["lk_errors"]]);
        lk_await($P["sig"] . "/end", 60.0);
        lk_signal($P["sig"] . "/exiting");
    ', ['sig' => $sig, 'parent' => PARENT, 'open' => $mode === 'open'], ['session.save_path' => $dsn]);
    $r = lk_result('parent', sp_wait($h));
    echo "$mode: ", 'the parent forked and exited: ', json_encode($r), "\n";
    sp_wait_for_file("$sig/ready", 30.0);
    $ready = json_decode(file_get_contents("$sig/ready"), true);
    $child = (int) $ready['pid'];
    echo 'the child wrote after the fork: ', json_encode($ready['ok']), "\n";

    // The child's own locks, as the kernel lists them: a shared lock on the database file (every
    // connection holds one in WAL mode) and one on its -shm.
    $held = function (string $file) use ($child): bool {
        $inode = fileinode($file);
        foreach (file('/proc/locks') as $line) {
            $f = preg_split('/\s+/', trim($line));
            // "1: POSIX  ADVISORY  READ 1234 fe:00:5678 0 EOF" (a blocked waiter has "->" in front)
            if ($f[1] === 'POSIX' && (int) $f[4] === $child && (int) substr($f[5], strrpos($f[5], ':') + 1) === $inode) {
                return true;
            }
        }
        return false;
    };
    echo 'the child holds a lock on the database: ', lk_check($held($db)), "\n";
    echo 'the child holds a lock on its -shm: ', lk_check($held("$db-shm")), "\n";

    // Another program opens the database, reads, and closes it.
    $out = sp_child('
        $c = new SQLite3($argv[1]);
        echo $c->querySingle("SELECT count(*) FROM sessions WHERE id != \'held\'");
        $c->close();
    ', ['extension' => 'sqlite3'], [$db]);
    echo 'another program read sessions: ', $out === (string) (PARENT + 1) ? 'all' : $out, "\n";
    clearstatcache();
    echo 'the log is still there: ', lk_check(file_exists("$db-wal") && file_exists("$db-shm")), "\n";

    lk_signal_parent("$sig/go");
    sp_wait_for_file("$sig/done", 60.0);
    $done = json_decode(file_get_contents("$sig/done"), true);
    echo 'the child reports stored: ', json_encode($done), "\n";
    $count = sp_child('
        $c = new SQLite3($argv[1], SQLITE3_OPEN_READONLY);
        echo $c->querySingle("SELECT count(*) FROM sessions WHERE id LIKE \'child%\'");
    ', ['extension' => 'sqlite3'], [$db]);
    echo "the child's sessions in the database: $count of 51\n";
    $got = lk_stored($dsn, 'child50');
    echo 'child50 reads back: ', json_encode($got['data'] ?? $got), "\n";

    lk_signal_parent("$sig/end");
    sp_wait_for_file("$sig/exiting", 30.0);
    for ($i = 0; $i < 1500 && file_exists("/proc/$child"); $i++) {
        usleep(20000);
    }
    echo 'the child exited: ', lk_check(!file_exists("/proc/$child")), "\n";
}

foreach (['idle', 'open'] as $mode) {
    echo "== a session $mode at the fork\n";
    scenario($mode);
}
?>
--EXPECT--
== a session idle at the fork
idle: the parent forked and exited: {"forked":true,"checkpointer":true,"errors":[]}
the child wrote after the fork: true
the child holds a lock on the database: yes
the child holds a lock on its -shm: yes
another program read sessions: all
the log is still there: yes
the child reports stored: {"stored":50,"errors":[]}
the child's sessions in the database: 51 of 51
child50 reads back: {"by":"child50"}
the child exited: yes
== a session open at the fork
open: the parent forked and exited: {"forked":true,"checkpointer":true,"errors":[]}
the child wrote after the fork: true
the child holds a lock on the database: yes
the child holds a lock on its -shm: yes
another program read sessions: all
the log is still there: yes
the child reports stored: {"stored":50,"errors":[]}
the child's sessions in the database: 51 of 51
child50 reads back: {"by":"child50"}
the child exited: yes
