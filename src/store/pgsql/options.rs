//! `pgsql://[user[:password]@]host[:port][,host2[:port]…]/dbname[?table=…&sslmode=disable|prefer|require|verify-full&sslrootcert=…&connect_timeout=S&lock=advisory|row&schema=native|symfony&create=auto|never]`
//! → options: the SQL engines' shared grammar (`store::sqlopts`), PostgreSQL's default port, no keys
//! of its own.

use crate::grammar::Reason;
pub use crate::store::sqlopts::{LockMode, Schema, SqlOptions, SslMode};

pub type PgsqlOptions = SqlOptions;

/// PostgreSQL's port when a host names none.
pub const DEFAULT_PORT: u16 = 5432;

/// Parses what follows `pgsql://` (query included).
pub fn parse(rest: &str) -> Result<PgsqlOptions, Reason> {
    let o = crate::store::sqlopts::parse("pgsql", rest, DEFAULT_PORT, "", |_, _, _| Ok(false))?;
    crate::store::sqlopts::row_needs_native(&o)?;
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        let o = parse("sp:pw@127.0.0.1,127.0.0.1:15433/sp?lock=row").unwrap();
        assert_eq!(o.hosts, vec![("127.0.0.1".into(), 5432), ("127.0.0.1".into(), 15433)]);
        assert_eq!(o.lock, LockMode::Row);
        let e = parse("h/db?lock=row&schema=symfony").unwrap_err().to_string();
        assert!(e.contains("lock=row works with schema=native only"), "{e}");
        let e = parse("h/db?socket=/x").unwrap_err().to_string();
        assert!(e.contains("unknown option \"socket\" for pgsql://"), "{e}");
    }
}
