# session_proxy — see README.md. `make demo` and `make test` work on a fresh Debian bookworm machine.
SO        := $(CURDIR)/target/release/libsession_proxy.so
PHP       ?= php
DEMO_HOST ?= 127.0.0.1
DEMO_PORT ?= 8080

.PHONY: all deps build test soak demo bench clean

all: build

deps:
	@bash scripts/deps.sh

build: deps
	cargo build --release
	cargo build --release -p session-proxy-cli

test: build
	@bash scripts/test.sh

# The long checks (under 30 min on 2 cores): fuzzing of the parsers, the phpt suite under valgrind,
# the php-fpm soak; one summary at the end. See scripts/soak.sh for the knobs.
soak: build
	@bash scripts/soak.sh

# Serves demo/index.php with PHP's built-in server on the zero-config SQLite default
# (empty session.save_path: session_proxy.sqlite in session_proxy-<uid>/ of the system temp dir).
demo: build
	@echo "demo: http://$(DEMO_HOST):$(DEMO_PORT)/  (curl -c jar -b jar http://$(DEMO_HOST):$(DEMO_PORT)/ twice: 1, then 2)"
	$(PHP) -n -d extension=$(SO) -d session.save_handler=session_proxy -d session.save_path= \
		-S $(DEMO_HOST):$(DEMO_PORT) -t demo demo/index.php

bench: build
	@bash bench/fpm.sh
	@bash bench/cycle.sh
	@bash bench/floor.sh
	@bash bench/redis.sh
	@bash bench/memcached.sh

clean:
	cargo clean
