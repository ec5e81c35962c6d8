<?php
// Prepended to bench/web/session.php by bench/fpm.sh's "PHP session module, nothing stored" row: a
// handler that stores nothing, so that row is the most any session handler can reach through fpm
// (PHP's session machinery, the id, the cookie, serialization), less this class's userland calls.
session_set_save_handler(new class implements SessionHandlerInterface {
    public function open(string $path, string $name): bool { return true; }
    public function close(): bool { return true; }
    public function read(string $id): string|false { return ''; }
    public function write(string $id, string $data): bool { return true; }
    public function destroy(string $id): bool { return true; }
    public function gc(int $max): int|false { return 0; }
}, false);
