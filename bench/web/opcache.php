<?php
// bench/fpm.sh: whether the pool's OPcache is on (OPCACHE=1 asks for it).
echo function_exists('opcache_get_status') && (opcache_get_status(false)['opcache_enabled'] ?? false) ? 'on' : 'off';
