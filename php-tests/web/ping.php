<?php
// Liveness probe for scripts/services/web.sh: nginx -> php-fpm -> PHP with the extension loaded.
header('Content-Type: text/plain');
echo 'pong ', extension_loaded('session_proxy') ? 'session_proxy' : 'without session_proxy';
