<?php
// The ceiling of bench/fpm.sh: nginx + php-fpm running PHP with no session.
echo "ok\n";
