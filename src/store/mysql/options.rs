//! `mysql://[user[:password]@]host[:port]/dbname[?table=…&sslmode=disable|prefer|require|verify-full&sslrootcert=…&connect_timeout=S&lock=advisory|row&schema=native|symfony&create=auto|never]`
//! and `mysql:///dbname?socket=/run/mysqld/mysqld.sock[&…]` → options: the SQL engines' shared
//! grammar (`store::sqlopts`), MySQL's default port, and one key of its own, `socket`.

use crate::grammar::{self, Reason};
pub use crate::store::sqlopts::{LockMode, Schema, SqlOptions, SslMode};

pub type MysqlOptions = SqlOptions;

/// MySQL's port when a host names none.
pub const DEFAULT_PORT: u16 = 3306;

/// The longest table name: its procedures' names (`<table>_sp3s_rwrite`) must fit MySQL's 64.
pub const MAX_TABLE: usize = 48;

/// Parses what follows `mysql://` (query included).
pub fn parse(rest: &str) -> Result<MysqlOptions, Reason> {
    let o = crate::store::sqlopts::parse("mysql", rest, DEFAULT_PORT, "socket", |k, v, o| {
        if k != "socket" {
            return Ok(false);
        }
        o.socket = Some(grammar::abs_path("socket", v)?);
        Ok(true)
    })?;
    if o.table.len() > MAX_TABLE {
        return Err(grammar::invalid("table", &o.table, "a table name of at most 48 characters on mysql:// (its procedures' names must fit in 64)"));
    }
    if o.hosts.len() > 1 {
        return Err(Reason::Rule("mysql:// takes one server (host[:port]); for several, put ProxySQL or a load balancer in front"));
    }
    if o.socket.is_some() && !o.hosts.is_empty() {
        return Err(Reason::Rule("give a host or socket=, not both; write mysql:///dbname?socket=/path for a unix socket"));
    }
    if o.socket.is_some() && matches!(o.sslmode, SslMode::Require | SslMode::VerifyFull) {
        return Err(Reason::Rule("sslmode=require and verify-full are for TCP; a unix socket (socket=) is local and not encrypted"));
    }
    crate::store::sqlopts::row_needs_native(&o)?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn forms() {
        let o = parse("sp:pw@127.0.0.1/sp?lock=row").unwrap();
        assert_eq!((o.hosts.clone(), o.lock, o.socket.clone()), (vec![("127.0.0.1".into(), 3306)], LockMode::Row, None));
        assert_eq!(o.at(), "127.0.0.1:3306");
        let o = parse("/sp?socket=/run/mysqld/mysqld.sock").unwrap();
        assert!(o.hosts.is_empty());
        assert_eq!((o.socket.as_deref(), o.dbname.as_str()), (Some(Path::new("/run/mysqld/mysqld.sock")), "sp"));
        assert_eq!(o.at(), "/run/mysqld/mysqld.sock");
        let o = parse("u:p@[::1]:13306/db?schema=symfony&table=sf").unwrap();
        assert_eq!((o.hosts[0].1, o.schema, o.table.as_str()), (13306, Schema::Symfony, "sf"));
    }

    #[test]
    fn bad_forms_name_the_problem() {
        let cases = [
            ("h/db?lock=row&schema=symfony", "lock=row works with schema=native only"),
            ("h/db?socket=rel.sock", "socket \"rel.sock\" is not absolute"),
            ("h/db?socket=/s.sock", "not both"),
            ("/db?socket=/s.sock&sslmode=verify-full", "are for TCP"),
            ("h1,h2/db", "takes one server"),
            ("/db", "no server given; write mysql://host[:port]/dbname"),
            ("h", "no database name given; write mysql://host/dbname"),
            ("h/db?bogus=1", "unknown option \"bogus\" for mysql:// (known: table, sslmode, sslrootcert, connect_timeout, lock, schema, create, socket)"),
            ("h/db?table=abcdefghijabcdefghijabcdefghijabcdefghijabcdefghij", "at most 48 characters"),
            ("h/db?sslmode=maybe", "option sslmode=\"maybe\" must be disable, prefer, require or verify-full"),
        ];
        for (rest, want) in cases {
            let e = parse(rest).unwrap_err().to_string();
            assert!(e.contains(want), "{rest:?}: {e}");
        }
    }
}
