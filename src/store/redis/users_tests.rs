//! The per-user index against the live servers of scripts/services/redis.sh: standalone, a phpredis
//! server list (a user's set and its sessions on different servers), Sentinel and Cluster (the set in
//! another slot than the sessions).

use super::dsn;
use super::RedisStore;
use crate::lock::Token;
use crate::store::users_tests::users_conformance;
use crate::store::Store;

fn env(k: &str) -> String {
    std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set: run the tests with `make test` (scripts/test.sh starts the servers)"))
}

fn prefix() -> String {
    format!("sp-test-{}:", Token::new().as_str())
}

fn check(dsn: &str, tag: &str) {
    let o = dsn::parse(dsn).unwrap();
    users_conformance(|| Box::new(RedisStore::open(&o).unwrap()) as Box<dyn Store>, tag, false);
}

#[test]
fn users_standalone_and_server_list() {
    let (p1, p2) = (env("SP_REDIS_PORT"), env("SP_REDIS_PORT2"));
    check(&format!("redis://127.0.0.1:{p1}/0?prefix={}", prefix()), "rs");
    // phpredis' list: sessions and sets spread over two servers.
    let px = prefix();
    check(&format!("tcp://127.0.0.1:{p1}?prefix={px},tcp://127.0.0.1:{p2}?prefix={px}"), "rl");
}

#[test]
fn users_sentinel() {
    check(&format!("redis-sentinel://{}/{}?db=2&prefix={}", env("SP_REDIS_SENTINEL"), env("SP_REDIS_SENTINEL_MASTER"), prefix()), "rn");
}

#[test]
fn users_cluster() {
    check(&format!("redis-cluster://{}?prefix={}", env("SP_REDIS_CLUSTER"), prefix()), "rc");
}
