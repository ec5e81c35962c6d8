//! `files:///abs/dir[?depth=N&mode=0600]` → options. Pure parsing (no file system access),
//! table-driven tests below.

use std::path::PathBuf;

use crate::grammar::{self, Reason};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FilesOptions {
    pub dir: PathBuf,
    /// Sub-directory levels, as the `N;` prefix of PHP's files handler: `sess_abc` lives in `dir/a/b/`.
    pub depth: u8,
    /// Permission bits of new session files (PHP's default is 0600).
    pub mode: u32,
}

/// Parses what follows `files://` (the directory, percent-encoded) and the query options.
pub fn parse(path_part: &str, params: Vec<(String, String)>) -> Result<FilesOptions, Reason> {
    let dir = grammar::abs_path("path", &grammar::percent_decode(path_part)?)?;
    let mut o = FilesOptions { dir, depth: 0, mode: 0o600 };
    for (k, v) in params {
        match k.as_str() {
            "depth" => o.depth = grammar::option_int(&k, &v, 0, 8)? as u8,
            "mode" => {
                o.mode = u32::from_str_radix(&v, 8)
                    .ok()
                    .filter(|m| *m <= 0o777 && m & 0o600 == 0o600)
                    .ok_or_else(|| grammar::invalid(&k, &v, "octal permission bits including 0600"))?
            }
            _ => return Err(Reason::UnknownOption { key: k, place: "for files://".into(), known: "depth, mode".into() }),
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
        assert_eq!(parse("/var/s", q("")), Ok(FilesOptions { dir: "/var/s".into(), depth: 0, mode: 0o600 }));
        assert_eq!(parse("/var/s%20x", q("depth=8&mode=0640")), Ok(FilesOptions { dir: "/var/s x".into(), depth: 8, mode: 0o640 }));
    }

    #[test]
    fn invalid_forms_name_the_problem() {
        let cases = [
            ("var/s", "", "path \"var/s\" is not absolute"),
            ("/var/../s", "", "contains \"..\""),
            ("/var/s%09", "", "decodes to a control character"),
            ("/var/s", "depth=9", "option depth=\"9\" must be an integer from 0 to 8"),
            ("/var/s", "mode=0400", "option mode=\"0400\" must be octal permission bits including 0600"),
            ("/var/s", "mode=1777", "octal permission bits"),
            ("/var/s", "table=x", "unknown option \"table\" for files:// (known: depth, mode)"),
        ];
        grammar::assert_refused(parse, &cases);
    }
}
