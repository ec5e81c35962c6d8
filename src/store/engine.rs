//! Which engine a save_path chose, with its options: what `crate::dsn::parse` returns and
//! `connect` opens. Kept beside the engines (not in `crate::dsn`) so that nothing under `store` needs
//! the DSN dispatcher back (`scripts/imports.sh` checks there is no import circle).

use super::files::FilesOptions;
use super::memcached::MemcachedOptions;
use super::redis::RedisOptions;
use super::sqlite::SqliteOptions;
use super::pgsql::PgsqlOptions;
use super::mysql::MysqlOptions;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Engine {
    Sqlite(SqliteOptions),
    Files(FilesOptions),
    Memcached(MemcachedOptions),
    Redis(RedisOptions),
    Pgsql(PgsqlOptions),
    Mysql(MysqlOptions),
}

impl Engine {
    pub fn scheme(&self) -> &'static str {
        match self {
            Engine::Sqlite(_) => "sqlite",
            Engine::Files(_) => "files",
            Engine::Memcached(_) => "memcached",
            Engine::Redis(_) => "redis",
            Engine::Pgsql(_) => "pgsql",
            Engine::Mysql(_) => "mysql",
        }
    }
}
