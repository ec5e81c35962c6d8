--TEST--
session_proxy.* directives: invalid values are refused with a warning naming the directive and the accepted range, the previous value stays; valid values are accepted
--FILE--
<?php
require __DIR__ . '/inc/helpers.inc';

$warnings = [];
set_error_handler(function (int $no, string $msg) use (&$warnings) {
    $warnings[] = ($no === E_WARNING ? 'Warning: ' : "[$no] ") . $msg;
    return true;
});

// Each directive is first set to a valid non-default value, so "previous value" cannot be confused with
// the default; then every bad value must be refused and leave that value in place.
$table = [
    'session_proxy.locking' => [
        'start' => 'off',
        'bad' => ['maybe', '2', '-1', 'onn'],
        'good' => ['On', 'off', 'yes', 'no', 'TRUE', 'false', '1', '0', '', 'optimistic', 'Optimistic'],
    ],
    'session_proxy.lock_wait_timeout' => [
        'start' => '1234',
        'bad' => ['-1', 'abc', '3600001', '1.5', '1e3', '', '99999999999999999999999', '0x10'],
        'good' => ['0', '250', ' 500 ', '3600000'],
    ],
    'session_proxy.lock_expire' => [
        'start' => '17',
        'bad' => ['86401', '-1', 'abc', '', '2.5'],
        'good' => ['0', '1', '86400'],
    ],
    'session_proxy.lock_timeout_action' => [
        'start' => 'readonly',
        'bad' => ['wait', '', 'read-only', 'failed'],
        'good' => ['fail', 'readonly', 'FAIL', 'ReadOnly'],
    ],
    'session_proxy.merge_conflict' => [
        'start' => 'first',
        'bad' => ['both', '', 'lastt', '1'],
        'good' => ['last', 'first', 'LAST', 'First'],
    ],
];

foreach ($table as $name => $t) {
    echo "== $name (default ", var_export(ini_get($name), true), ")\n";
    $warnings = [];
    $r = ini_set($name, $t['start']);
    echo 'set ', var_export($t['start'], true), ': returned ', var_export($r, true), ', now ', var_export(ini_get($name), true), "\n";
    foreach ($t['bad'] as $bad) {
        $warnings = [];
        $r = ini_set($name, $bad);
        echo 'bad ', var_export($bad, true), ': returned ', var_export($r, true), ', still ', var_export(ini_get($name), true), "\n";
        foreach ($warnings as $w) {
            echo "  $w\n";
        }
    }
    $prev = ini_get($name);
    foreach ($t['good'] as $good) {
        $warnings = [];
        $r = ini_set($name, $good);
        if ($r !== $prev || ini_get($name) !== $good || $warnings) {
            echo 'good ', var_export($good, true), ' NOT ACCEPTED: returned ', var_export($r, true), ', now ',
                var_export(ini_get($name), true), ' ', implode(' | ', $warnings), "\n";
        }
        $prev = ini_get($name);
    }
    echo 'valid values accepted: ', implode(', ', array_map(fn ($v) => var_export($v, true), $t['good'])), "\n";
    ini_restore($name);
    echo 'after ini_restore: ', var_export(ini_get($name), true), "\n";
}

// At startup: a bad -d value prints a warning and the default stays in force; a good one is taken.
echo "== startup\n";
$code = 'foreach (["locking", "lock_wait_timeout", "lock_expire", "lock_timeout_action"] as $k) { echo "$k=", ini_get("session_proxy.$k"), "\n"; }';
echo sp_child($code, [
    'session_proxy.lock_wait_timeout' => 'abc',
    'session_proxy.locking' => 'maybe',
    'session_proxy.lock_expire' => '86401',
    'session_proxy.lock_timeout_action' => 'wait',
]);
echo "-- good values at startup\n";
echo sp_child($code, [
    'session_proxy.lock_wait_timeout' => '250',
    'session_proxy.locking' => '0',
    'session_proxy.lock_expire' => '5',
    'session_proxy.lock_timeout_action' => 'readonly',
]);
?>
--EXPECT--
== session_proxy.locking (default '1')
set 'off': returned '1', now 'off'
bad 'maybe': returned false, still 'off'
  Warning: ini_set(): session_proxy: invalid value "maybe" for session_proxy.locking: expected On/Off, 1/0, true/false, yes/no or optimistic; the previous value stays
bad '2': returned false, still 'off'
  Warning: ini_set(): session_proxy: invalid value "2" for session_proxy.locking: expected On/Off, 1/0, true/false, yes/no or optimistic; the previous value stays
bad '-1': returned false, still 'off'
  Warning: ini_set(): session_proxy: invalid value "-1" for session_proxy.locking: expected On/Off, 1/0, true/false, yes/no or optimistic; the previous value stays
bad 'onn': returned false, still 'off'
  Warning: ini_set(): session_proxy: invalid value "onn" for session_proxy.locking: expected On/Off, 1/0, true/false, yes/no or optimistic; the previous value stays
valid values accepted: 'On', 'off', 'yes', 'no', 'TRUE', 'false', '1', '0', '', 'optimistic', 'Optimistic'
after ini_restore: '1'
== session_proxy.lock_wait_timeout (default '30000')
set '1234': returned '30000', now '1234'
bad '-1': returned false, still '1234'
  Warning: ini_set(): session_proxy: invalid value "-1" for session_proxy.lock_wait_timeout: expected a whole number from 0 to 3600000; the previous value stays
bad 'abc': returned false, still '1234'
  Warning: ini_set(): session_proxy: invalid value "abc" for session_proxy.lock_wait_timeout: expected a whole number from 0 to 3600000; the previous value stays
bad '3600001': returned false, still '1234'
  Warning: ini_set(): session_proxy: invalid value "3600001" for session_proxy.lock_wait_timeout: expected a whole number from 0 to 3600000; the previous value stays
bad '1.5': returned false, still '1234'
  Warning: ini_set(): session_proxy: invalid value "1.5" for session_proxy.lock_wait_timeout: expected a whole number from 0 to 3600000; the previous value stays
bad '1e3': returned false, still '1234'
  Warning: ini_set(): session_proxy: invalid value "1e3" for session_proxy.lock_wait_timeout: expected a whole number from 0 to 3600000; the previous value stays
bad '': returned false, still '1234'
  Warning: ini_set(): session_proxy: invalid value "" for session_proxy.lock_wait_timeout: expected a whole number from 0 to 3600000; the previous value stays
bad '99999999999999999999999': returned false, still '1234'
  Warning: ini_set(): session_proxy: invalid value "99999999999999999999999" for session_proxy.lock_wait_timeout: expected a whole number from 0 to 3600000; the previous value stays
bad '0x10': returned false, still '1234'
  Warning: ini_set(): session_proxy: invalid value "0x10" for session_proxy.lock_wait_timeout: expected a whole number from 0 to 3600000; the previous value stays
valid values accepted: '0', '250', ' 500 ', '3600000'
after ini_restore: '30000'
== session_proxy.lock_expire (default '0')
set '17': returned '0', now '17'
bad '86401': returned false, still '17'
  Warning: ini_set(): session_proxy: invalid value "86401" for session_proxy.lock_expire: expected a whole number from 0 to 86400; the previous value stays
bad '-1': returned false, still '17'
  Warning: ini_set(): session_proxy: invalid value "-1" for session_proxy.lock_expire: expected a whole number from 0 to 86400; the previous value stays
bad 'abc': returned false, still '17'
  Warning: ini_set(): session_proxy: invalid value "abc" for session_proxy.lock_expire: expected a whole number from 0 to 86400; the previous value stays
bad '': returned false, still '17'
  Warning: ini_set(): session_proxy: invalid value "" for session_proxy.lock_expire: expected a whole number from 0 to 86400; the previous value stays
bad '2.5': returned false, still '17'
  Warning: ini_set(): session_proxy: invalid value "2.5" for session_proxy.lock_expire: expected a whole number from 0 to 86400; the previous value stays
valid values accepted: '0', '1', '86400'
after ini_restore: '0'
== session_proxy.lock_timeout_action (default 'fail')
set 'readonly': returned 'fail', now 'readonly'
bad 'wait': returned false, still 'readonly'
  Warning: ini_set(): session_proxy: invalid value "wait" for session_proxy.lock_timeout_action: expected fail or readonly; the previous value stays
bad '': returned false, still 'readonly'
  Warning: ini_set(): session_proxy: invalid value "" for session_proxy.lock_timeout_action: expected fail or readonly; the previous value stays
bad 'read-only': returned false, still 'readonly'
  Warning: ini_set(): session_proxy: invalid value "read-only" for session_proxy.lock_timeout_action: expected fail or readonly; the previous value stays
bad 'failed': returned false, still 'readonly'
  Warning: ini_set(): session_proxy: invalid value "failed" for session_proxy.lock_timeout_action: expected fail or readonly; the previous value stays
valid values accepted: 'fail', 'readonly', 'FAIL', 'ReadOnly'
after ini_restore: 'fail'
== session_proxy.merge_conflict (default 'last')
set 'first': returned 'last', now 'first'
bad 'both': returned false, still 'first'
  Warning: ini_set(): session_proxy: invalid value "both" for session_proxy.merge_conflict: expected last or first; the previous value stays
bad '': returned false, still 'first'
  Warning: ini_set(): session_proxy: invalid value "" for session_proxy.merge_conflict: expected last or first; the previous value stays
bad 'lastt': returned false, still 'first'
  Warning: ini_set(): session_proxy: invalid value "lastt" for session_proxy.merge_conflict: expected last or first; the previous value stays
bad '1': returned false, still 'first'
  Warning: ini_set(): session_proxy: invalid value "1" for session_proxy.merge_conflict: expected last or first; the previous value stays
valid values accepted: 'last', 'first', 'LAST', 'First'
after ini_restore: 'last'
== startup

Warning: PHP Startup: session_proxy: invalid value "maybe" for session_proxy.locking: expected On/Off, 1/0, true/false, yes/no or optimistic; the previous value stays in Unknown on line 0

Warning: PHP Startup: session_proxy: invalid value "abc" for session_proxy.lock_wait_timeout: expected a whole number from 0 to 3600000; the previous value stays in Unknown on line 0

Warning: PHP Startup: session_proxy: invalid value "86401" for session_proxy.lock_expire: expected a whole number from 0 to 86400; the previous value stays in Unknown on line 0

Warning: PHP Startup: session_proxy: invalid value "wait" for session_proxy.lock_timeout_action: expected fail or readonly; the previous value stays in Unknown on line 0
locking=1
lock_wait_timeout=30000
lock_expire=0
lock_timeout_action=fail
-- good values at startup
locking=0
lock_wait_timeout=250
lock_expire=5
lock_timeout_action=readonly
