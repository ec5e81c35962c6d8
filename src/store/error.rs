//! Typed storage errors. An engine says what went wrong (`kind`) and where (`at`: a host, a socket
//! or a path, never with a password); `detail` is the engine's account of the cause, which the PHP
//! skin puts into its warning. The session layer and the metrics layer decide on the kind alone.

/// What kind of failure a `StoreError` is; metrics count errors by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    Unavailable,
    Timeout,
    TooLarge,
    Conflict,
    Corrupt,
    LockLost,
    Backend,
    /// The stored session's bytes cannot be decoded: no configured key opens them, or they are
    /// damaged (the at-rest layers). The session layer starts an empty session and keeps the bytes.
    Unreadable,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 8] = [
        ErrorKind::Unavailable,
        ErrorKind::Timeout,
        ErrorKind::TooLarge,
        ErrorKind::Conflict,
        ErrorKind::Corrupt,
        ErrorKind::LockLost,
        ErrorKind::Backend,
        ErrorKind::Unreadable,
    ];

    /// A stable lower-case name (metrics labels).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Corrupt => "corrupt",
            ErrorKind::LockLost => "lock_lost",
            ErrorKind::Backend => "backend",
            ErrorKind::Unreadable => "unreadable",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The host, socket or path cannot be reached, opened or used (refused, unresolvable, missing,
    /// not permitted, not ours).
    #[error("{detail}")]
    Unavailable { at: String, detail: String },
    /// The storage did not answer within the configured timeout.
    #[error("{detail}")]
    Timeout { at: String, detail: String },
    /// The session is larger than the storage accepts; nothing was sent.
    #[error("{detail}")]
    TooLarge { at: String, size: usize, limit: usize, detail: String },
    /// The stored session is not what the operation required (outside the `Written::Conflict` path,
    /// e.g. a replica that disagrees).
    #[error("{detail}")]
    Conflict { at: String, detail: String },
    /// The stored data or the storage's answer is malformed.
    #[error("{detail}")]
    Corrupt { at: String, detail: String },
    /// The lock this operation needed is no longer ours.
    #[error("{detail}")]
    LockLost { at: String, detail: String },
    /// Any other failure the storage reported.
    #[error("{detail}")]
    Backend { at: String, detail: String },
    /// The stored session's bytes cannot be decoded (no key opens them, damaged): `ErrorKind::Unreadable`.
    #[error("{detail}")]
    Unreadable { at: String, detail: String },
}

impl StoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable { .. } => ErrorKind::Unavailable,
            StoreError::Timeout { .. } => ErrorKind::Timeout,
            StoreError::TooLarge { .. } => ErrorKind::TooLarge,
            StoreError::Conflict { .. } => ErrorKind::Conflict,
            StoreError::Corrupt { .. } => ErrorKind::Corrupt,
            StoreError::LockLost { .. } => ErrorKind::LockLost,
            StoreError::Backend { .. } => ErrorKind::Backend,
            StoreError::Unreadable { .. } => ErrorKind::Unreadable,
        }
    }

    /// The host, socket or path the error is about (masked: no credentials).
    pub fn at(&self) -> &str {
        self.parts().0
    }

    /// The engine's account of the cause.
    pub fn detail(&self) -> &str {
        self.parts().1
    }

    fn parts(&self) -> (&str, &str) {
        match self {
            StoreError::Unavailable { at, detail }
            | StoreError::Timeout { at, detail }
            | StoreError::TooLarge { at, detail, .. }
            | StoreError::Conflict { at, detail }
            | StoreError::Corrupt { at, detail }
            | StoreError::LockLost { at, detail }
            | StoreError::Backend { at, detail }
            | StoreError::Unreadable { at, detail } => (at, detail),
        }
    }

    /// An error of `kind` at `at`, with the cause in words (TooLarge without known sizes).
    pub fn new(kind: ErrorKind, at: impl Into<String>, detail: impl Into<String>) -> Self {
        let (at, detail) = (at.into(), detail.into());
        match kind {
            ErrorKind::Unavailable => StoreError::Unavailable { at, detail },
            ErrorKind::Timeout => StoreError::Timeout { at, detail },
            ErrorKind::TooLarge => StoreError::TooLarge { at, size: 0, limit: 0, detail },
            ErrorKind::Conflict => StoreError::Conflict { at, detail },
            ErrorKind::Corrupt => StoreError::Corrupt { at, detail },
            ErrorKind::LockLost => StoreError::LockLost { at, detail },
            ErrorKind::Backend => StoreError::Backend { at, detail },
            ErrorKind::Unreadable => StoreError::Unreadable { at, detail },
        }
    }

    /// An I/O error classified by its kind: timeouts as `Timeout`, a refused, reset or missing
    /// endpoint (or a permission problem) as `Unavailable`, anything else as `Backend`.
    pub fn io(at: impl Into<String>, e: &std::io::Error, detail: impl Into<String>) -> Self {
        use std::io::ErrorKind as K;
        let kind = match e.kind() {
            K::TimedOut | K::WouldBlock => ErrorKind::Timeout,
            K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::AddrNotAvailable
            | K::BrokenPipe
            | K::NotFound
            | K::PermissionDenied
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::UnexpectedEof => ErrorKind::Unavailable,
            _ => ErrorKind::Backend,
        };
        StoreError::new(kind, at, detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_at_and_words_survive_construction() {
        for kind in ErrorKind::ALL {
            let e = StoreError::new(kind, "127.0.0.1:6379", format!("{} happened", kind.name()));
            assert_eq!(e.kind(), kind);
            assert_eq!(e.at(), "127.0.0.1:6379");
            assert_eq!(e.to_string(), format!("{} happened", kind.name()));
        }
        let names: std::collections::HashSet<_> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
    }

    #[test]
    fn io_errors_are_classified() {
        use std::io::{Error, ErrorKind as K};
        let c = |k| StoreError::io("h", &Error::from(k), "x").kind();
        assert_eq!(c(K::TimedOut), ErrorKind::Timeout);
        assert_eq!(c(K::WouldBlock), ErrorKind::Timeout);
        assert_eq!(c(K::ConnectionRefused), ErrorKind::Unavailable);
        assert_eq!(c(K::NotFound), ErrorKind::Unavailable);
        assert_eq!(c(K::InvalidData), ErrorKind::Backend);
    }
}
