//! RESP2 replies read into redis-rs' `Value`, for `wire.rs`.
//!
//! Why not `redis::Parser`: it decodes through `combine`'s buffered decoder, which extends and
//! zero-fills an 8 KiB buffer for every reply it reads (measured: ~12k instructions of a ~97k
//! instruction session cycle with locking off, where a cycle reads 10 replies). The replies we read
//! are RESP2 only (the connection never sends `HELLO 3`): simple strings, errors, integers, bulk
//! strings and arrays. Here a reply is first measured in the bytes already read (no allocation while
//! it is incomplete), then built once; the buffer is the connection's own, zero-filled once and
//! reused. A server error line is handed to `redis::parse_redis_value`, so that its `ServerError`
//! (code, kind, detail) is exactly redis-rs' own.

use std::io::Read;

use redis::{ErrorKind, RedisError, RedisResult, Value};

/// The buffer's resting size: every reply of a session cycle fits (a larger one grows it for as
/// long as it is read).
const BUF: usize = 16 * 1024;
/// redis-rs' own bound on nested arrays.
const MAX_DEPTH: usize = 100;
/// The longest bulk string Redis sends (its `proto-max-bulk-len` is at most 512 MiB by default): a
/// larger length is a broken stream, not a reason to allocate it.
const MAX_BULK: usize = 1 << 30;

/// Bytes read from a connection and not yet consumed: `buf[start..end]`.
pub struct Reader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

/// How far a reply reaches in the bytes at hand.
enum Extent {
    /// The reply ends this many bytes in.
    Whole(usize),
    /// Incomplete: at least this many bytes are needed in all.
    Short(usize),
}

impl Default for Reader {
    fn default() -> Self {
        Reader { buf: vec![0; BUF], start: 0, end: 0 }
    }
}

impl Reader {
    /// The next reply, reading from `r` as needed.
    pub fn read_value<R: Read>(&mut self, r: &mut R) -> RedisResult<Value> {
        loop {
            let need = match extent(&self.buf[self.start..self.end], 0)? {
                Extent::Whole(n) => {
                    let (v, used) = build(&self.buf[self.start..self.start + n])?;
                    debug_assert_eq!(used, n);
                    self.start += n;
                    if self.start == self.end {
                        self.start = 0;
                        self.end = 0;
                        if self.buf.len() > BUF {
                            // A large reply is read: back to the resting size.
                            self.buf.truncate(BUF);
                            self.buf.shrink_to_fit();
                        }
                    }
                    return Ok(v);
                }
                Extent::Short(n) => n,
            };
            if self.start > 0 && self.start + need > self.buf.len() {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if self.start + need > self.buf.len() {
                self.buf.resize(self.start + need, 0);
            }
            let n = r.read(&mut self.buf[self.end..])?;
            if n == 0 {
                return Err(RedisError::from(std::io::Error::from(std::io::ErrorKind::UnexpectedEof)));
            }
            self.end += n;
        }
    }
}

fn protocol(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::Parse, "parse error", what.to_string()))
}

/// The line at the start of `b` (without its CRLF) and the bytes up to and including the CRLF.
fn line(b: &[u8]) -> Option<(&[u8], usize)> {
    let i = b.windows(2).position(|w| w == b"\r\n")?;
    Some((&b[..i], i + 2))
}

fn int(l: &[u8]) -> RedisResult<i64> {
    std::str::from_utf8(l).ok().and_then(|s| s.trim().parse().ok()).ok_or_else(|| protocol("Expected integer, got garbage"))
}

/// How far the reply at the start of `b` reaches (module documentation).
fn extent(b: &[u8], depth: usize) -> RedisResult<Extent> {
    if depth > MAX_DEPTH {
        return Err(protocol("Maximum recursion depth exceeded"));
    }
    let Some(&kind) = b.first() else { return Ok(Extent::Short(1)) };
    let Some((l, head)) = line(&b[1..]) else { return Ok(Extent::Short(b.len() + 1)) };
    let head = head + 1;
    match kind {
        b'+' | b'-' => Ok(Extent::Whole(head)),
        b':' => int(l).map(|_| Extent::Whole(head)),
        b'$' => {
            let n = int(l)?;
            if n < 0 {
                return Ok(Extent::Whole(head));
            }
            let end = usize::try_from(n).ok().filter(|&n| n <= MAX_BULK).map(|n| head + n + 2).ok_or_else(|| protocol("bulk length"))?;
            if b.len() < end {
                Ok(Extent::Short(end))
            } else if &b[end - 2..end] != b"\r\n" {
                Err(protocol("bulk string not ended by CRLF"))
            } else {
                Ok(Extent::Whole(end))
            }
        }
        b'*' => {
            let n = int(l)?;
            let mut at = head;
            for _ in 0..n.max(0) {
                match extent(&b[at..], depth + 1)? {
                    Extent::Whole(k) => at += k,
                    Extent::Short(k) => return Ok(Extent::Short(at + k)),
                }
            }
            Ok(Extent::Whole(at))
        }
        _ => Err(protocol("unexpected reply type (RESP2 only)")),
    }
}

/// Builds the reply at the start of `b`, which `extent` found whole.
fn build(b: &[u8]) -> RedisResult<(Value, usize)> {
    let (l, head) = line(&b[1..]).ok_or_else(|| protocol("incomplete reply"))?;
    let head = head + 1;
    match b[0] {
        b'+' if l == b"OK" => Ok((Value::Okay, head)),
        b'+' => {
            let s = std::str::from_utf8(l).map_err(|_| protocol("simple string not UTF-8"))?;
            Ok((Value::SimpleString(s.to_string()), head))
        }
        b'-' => Ok((redis::parse_redis_value(&b[..head])?, head)),
        b':' => Ok((Value::Int(int(l)?), head)),
        b'$' => match usize::try_from(int(l)?) {
            Ok(n) => Ok((Value::BulkString(b[head..head + n].to_vec()), head + n + 2)),
            Err(_) => Ok((Value::Nil, head)),
        },
        b'*' => match usize::try_from(int(l)?) {
            Ok(n) => {
                let mut items = Vec::with_capacity(n);
                let mut at = head;
                for _ in 0..n {
                    let (v, k) = build(&b[at..])?;
                    items.push(v);
                    at += k;
                }
                Ok((Value::Array(items), at))
            }
            Err(_) => Ok((Value::Nil, head)),
        },
        _ => Err(protocol("unexpected reply type (RESP2 only)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out its bytes `step` at a time, as a socket may.
    struct Trickle<'a> {
        b: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = self.step.min(self.b.len()).min(out.len());
            out[..n].copy_from_slice(&self.b[..n]);
            self.b = &self.b[n..];
            Ok(n)
        }
    }

    fn big() -> Vec<u8> {
        (0..40_000u32).map(|i| (i % 251) as u8).collect()
    }

    /// A stream of replies of every RESP2 kind, nested and binary, with a bulk larger than the buffer.
    fn stream() -> Vec<u8> {
        let mut s = b"+OK\r\n+QUEUED\r\n-ERR unknown command 'FOO'\r\n-NOSCRIPT No matching script.\r\n:42\r\n:-7\r\n$-1\r\n*-1\r\n$0\r\n\r\n".to_vec();
        s.extend_from_slice(b"$5\r\na\r\nb\0\r\n*3\r\n:1\r\n*2\r\n$1\r\nx\r\n$-1\r\n*0\r\n");
        s.extend_from_slice(format!("${}\r\n", big().len()).as_bytes());
        s.extend_from_slice(&big());
        s.extend_from_slice(b"\r\n:9\r\n");
        s
    }

    /// Every reply is what redis-rs' own parser makes of it, however the bytes arrive.
    #[test]
    fn reads_what_redis_rs_reads() {
        let s = stream();
        // redis-rs' decoder keeps what it read ahead: it is asked for the 13 replies by count.
        let mut p = redis::Parser::new();
        let mut src: &[u8] = &s;
        let theirs: Vec<Value> = (0..13).map(|_| p.parse_value(&mut src).unwrap()).collect();
        assert_eq!(theirs[12], Value::Int(9));
        assert!(matches!(&theirs[2], Value::ServerError(e) if e.code() == "ERR"));
        for step in [1, 2, 3, 7, 64, 4096, usize::MAX] {
            let mut r = Reader::default();
            let mut t = Trickle { b: &s, step };
            let ours: Vec<Value> = (0..theirs.len()).map(|_| r.read_value(&mut t).unwrap()).collect();
            assert_eq!(ours, theirs, "step {step}");
            assert_eq!(r.buf.len(), BUF, "the buffer is back to its resting size");
            assert!(r.read_value(&mut t).is_err(), "end of stream");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bad in [&b"?x\r\n"[..], b":abc\r\n", b"$3\r\nabcde\r\n", b"$99999999999999999999\r\n", b"$1000000000000\r\n", b"*1\r\n!3\r\nabc\r\n"] {
            let mut r = Reader::default();
            assert!(r.read_value(&mut &bad[..]).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let deep: Vec<u8> = b"*1\r\n".repeat(MAX_DEPTH + 5);
        assert!(Reader::default().read_value(&mut &deep[..]).is_err());
    }
}
