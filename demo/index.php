<?php
// session_proxy demo: counts your visits in a session stored by the embedded SQLite engine.
// `curl -c jar -b jar http://127.0.0.1:8080/` twice prints 1, then 2.
session_start();
$_SESSION['visits'] = ($_SESSION['visits'] ?? 0) + 1;
header('Content-Type: text/plain; charset=utf-8');
echo $_SESSION['visits'], "\n";
