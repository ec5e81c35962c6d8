#!/usr/bin/env bash
# Installs what building and testing session_proxy needs on Debian bookworm, only if missing.
# Rust (cargo) must already be there; everything else comes from Debian's packages.
set -euo pipefail

# php8.2-cli/php8.2-dev: PHP, php-config, headers, run-tests.php; php8.2-sqlite3: tests inspect the schema; clang/libclang-dev: bindgen for ext-php-rs.
# redis-server/redis-tools: the Redis engine's test servers; php8.2-redis: phpredis, compared against in tests and bench;
# libssl-dev/pkg-config: TLS to Redis (rediss://) through the system OpenSSL; openssl: test certificates.
# php8.2-fpm/nginx: the web service (scripts/services/web.sh) behind php-tests/fpm_*.phpt;
# php-symfony-http-foundation (5.4), php-laravel-framework (8.x): the framework tests (symfony_*.phpt, laravel_*.phpt).
# memcached: test servers for the memcached engine; php8.2-memcached (+ igbinary, msgpack it loads first): the peer the compatibility tests and bench compare with.
# postgresql, mariadb-server: the SQL engines' test servers (scripts/services/pgsql.sh, mariadb.sh; their system
# services are not started, see policy-rc.d below); php8.2-pgsql, php8.2-mysql: pdo_pgsql/pdo_mysql for Symfony's
# PdoSessionHandler, compared against in tests and bench/sql.sh.
# strace: busy_poll.phpt counts a child's polled socket reads (recv with MSG_DONTWAIT).
PACKAGES=(
  php8.2-cli php8.2-dev php8.2-sqlite3
  clang libclang-dev
  redis-server redis-tools php8.2-redis
  libssl-dev pkg-config openssl
  php8.2-fpm nginx
  php-symfony-http-foundation php-laravel-framework
  memcached php8.2-memcached php8.2-igbinary php8.2-msgpack
  strace
  postgresql mariadb-server php8.2-pgsql php8.2-mysql
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Installing server packages must not start their system services (nginx on :80 and the like): the
  # tests run their own instances on 127.0.0.1. policy-rc.d is Debian's switch for that; ours is
  # removed again afterwards, and one the machine already has is left alone.
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    trap '$SUDO rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

command -v cargo >/dev/null || { echo "deps: cargo not found; install Rust (rustup) first" >&2; exit 1; }
