//! Lock owner tokens.

use std::fmt;

/// A random 128-bit token that names one request's ownership of a session lock. Only the holder of the
/// token can write under the lock or release it; a request whose lock expired and was taken over finds
/// its token gone and writes nothing.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Token(String);

impl Token {
    pub fn new() -> Self {
        let mut b = [0u8; 16];
        // getrandom only fails when the OS has no randomness source; fall back to time and pid,
        // which still separates requests (uniqueness is what locking needs).
        if getrandom::fill(&mut b).is_err() {
            let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            b[..8].copy_from_slice(&(t.as_nanos() as u64).to_le_bytes());
            b[8..12].copy_from_slice(&std::process::id().to_le_bytes());
        }
        Token(b.iter().map(|x| format!("{x:02x}")).collect())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for Token {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({}…)", &self.0[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_unique_hex() {
        let set: HashSet<String> = (0..1000).map(|_| Token::new().0).collect();
        assert_eq!(set.len(), 1000);
        assert!(set.iter().all(|t| t.len() == 32 && t.bytes().all(|c| c.is_ascii_hexdigit())));
    }
}
