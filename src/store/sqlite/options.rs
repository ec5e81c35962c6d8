//! `sqlite:///abs/path/file.sqlite[?busy_timeout=MS&synchronous=normal|full]` → options. Pure parsing
//! (no file system access), table-driven tests below.

use std::path::PathBuf;
use std::time::Duration;

use crate::grammar::{self, Reason};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SqliteOptions {
    pub path: PathBuf,
    /// How long one SQLite statement waits for the database write lock (not the session lock).
    pub busy_timeout: Duration,
    /// `PRAGMA synchronous`: NORMAL (default, safe in WAL mode) or FULL (fsync every commit).
    pub synchronous_full: bool,
    /// The file's directory is the zero-config private one: created 0700 and checked (`private::ensure_private_dir`).
    pub private_dir: bool,
}

impl SqliteOptions {
    /// The defaults for the database file `path`.
    pub fn at(path: PathBuf) -> Self {
        SqliteOptions { path, busy_timeout: Duration::from_millis(5000), synchronous_full: false, private_dir: false }
    }
}

/// Parses what follows `sqlite://` (the file path, percent-encoded) and the query options.
pub fn parse(path_part: &str, params: Vec<(String, String)>) -> Result<SqliteOptions, Reason> {
    let path = grammar::abs_path("path", &grammar::percent_decode(path_part)?)?;
    // "/dir/" and "/dir/." (also %2E-escaped) name a directory, whatever the file system says.
    if path_part.ends_with('/') || path.file_name().is_none() || path.as_os_str().as_encoded_bytes().ends_with(b"/.") {
        return Err(Reason::NamesADirectory(path.display().to_string()));
    }
    let mut o = SqliteOptions::at(path);
    for (k, v) in params {
        match k.as_str() {
            "busy_timeout" => o.busy_timeout = grammar::option_millis(&k, &v, 0, 600_000)?,
            "synchronous" => {
                o.synchronous_full = match v.to_ascii_lowercase().as_str() {
                    "normal" => false,
                    "full" => true,
                    _ => return Err(grammar::invalid(&k, &v, "normal or full")),
                }
            }
            _ => {
                return Err(Reason::UnknownOption { key: k, place: "for sqlite://".into(), known: "busy_timeout, synchronous".into() })
            }
        }
    }
    Ok(o)
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammar::options as q;

    #[test]
    fn valid_forms() {
        assert_eq!(parse("/d/s.db", q("")), Ok(SqliteOptions::at("/d/s.db".into())));
        assert_eq!(parse("/my%20dir/s.db", q("")), Ok(SqliteOptions::at("/my dir/s.db".into())));
        assert_eq!(
            parse("/d/s.db", q("busy_timeout=0&synchronous=Full")),
            Ok(SqliteOptions { busy_timeout: Duration::ZERO, synchronous_full: true, ..SqliteOptions::at("/d/s.db".into()) })
        );
    }

    #[test]
    fn invalid_forms_name_the_problem() {
        let cases = [
            ("rel.db", "", "path \"rel.db\" is not absolute"),
            ("/d/", "", "/d/ names a directory; sqlite:// takes a file path"),
            ("/d/%2E", "", "names a directory"),
            ("/d/../x.db", "", "contains \"..\""),
            ("/d/x%zz.db", "", "bad percent-escape"),
            ("/d/x.db", "busy_timeout=600001", "option busy_timeout=\"600001\" must be an integer from 0 to 600000"),
            ("/d/x.db", "synchronous=off", "option synchronous=\"off\" must be normal or full"),
            ("/d/x.db", "foo=1", "unknown option \"foo\" for sqlite:// (known: busy_timeout, synchronous)"),
        ];
        grammar::assert_refused(parse, &cases);
    }
}
