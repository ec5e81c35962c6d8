//! A small client for memcached's meta protocol (`mg`, `ms`, `md`, text since 1.6) over TCP or a unix
//! socket. Meta commands give what the engine needs in one round trip each, and pipelined: add with a
//! TTL (`ms MS=E`), compare-and-swap and compare-and-delete (`C<cas>`), the remaining TTL and client
//! flags of an item (`t`, `f`), touch (`mg T<ttl>`).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::time::Duration;

use crate::net::Socket;

use super::options::ServerAddr;

/// One reply line, with the value for `VA`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `VA`: value and return flags.
    Value(Vec<u8>, Flags),
    /// `HD`: success without a value.
    Done(Flags),
    /// `EN`: miss.
    Miss,
    /// `NS`: not stored (add of an existing key).
    NotStored,
    /// `EX`: CAS mismatch.
    Exists,
    /// `NF`: not found (CAS or delete of a missing key).
    NotFound,
    /// `SERVER_ERROR ...`, `CLIENT_ERROR ...`, `ERROR`: the whole line.
    Error(String),
}

/// Return flags of a meta reply (`c<cas> t<ttl> f<flags>`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    pub cas: Option<u64>,
    pub ttl: Option<i64>,
    pub client_flags: Option<u32>,
}

fn parse_flags<'a>(tokens: impl Iterator<Item = &'a str>) -> Flags {
    let mut f = Flags::default();
    for t in tokens {
        let (k, v) = t.split_at(1.min(t.len()));
        match k {
            "c" => f.cas = v.parse().ok(),
            "t" => f.ttl = v.parse().ok(),
            "f" => f.client_flags = v.parse().ok(),
            _ => {}
        }
    }
    f
}

pub struct Conn {
    r: BufReader<Socket>,
    out: Vec<u8>,
    /// Replies to commands sent with `send_unanswered`, read and dropped before the next reply.
    unanswered: usize,
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

impl Conn {
    pub fn connect(addr: &ServerAddr, timeout: Duration, busy_poll: Duration) -> io::Result<Conn> {
        let socket = match addr {
            ServerAddr::Tcp { host, port } => Socket::tcp(host, *port, timeout, timeout, busy_poll)?,
            ServerAddr::Unix(p) => Socket::unix(p, timeout, busy_poll)?,
        };
        Ok(Conn { r: BufReader::with_capacity(64 << 10, socket), out: Vec::with_capacity(4096), unanswered: 0 })
    }

    /// Whether an idle connection still looks usable: nothing unread is buffered and the server has
    /// not closed it (a non-blocking peek finds neither end-of-file nor an error). A pooled connection
    /// to a server that restarted since fails this check, so it is replaced before a request uses it
    /// rather than failing that request.
    pub fn idle_alive(&mut self) -> bool {
        // A release sent without waiting (send_unanswered): its answer came long ago; read it now.
        if self.unanswered > 0 && self.skip_unanswered().is_err() {
            return false;
        }
        if !self.r.buffer().is_empty() || !self.out.is_empty() {
            return false;
        }
        // Closed by the server, or bytes nobody asked for (the stream is out of step): not usable.
        self.r.get_ref().is_quiet()
    }

    /// Queues a command line (without `\r\n`) and an optional data block.
    pub fn queue(&mut self, line: &str, data: Option<&[u8]>) {
        self.out.extend_from_slice(line.as_bytes());
        self.out.extend_from_slice(b"\r\n");
        if let Some(d) = data {
            self.out.extend_from_slice(d);
            self.out.extend_from_slice(b"\r\n");
        }
    }

    /// Sends everything queued.
    pub fn flush(&mut self) -> io::Result<()> {
        let r = self.r.get_mut().write_all(&self.out);
        self.out.clear();
        if self.out.capacity() > 1 << 20 {
            self.out.shrink_to(4096);
        }
        r
    }

    /// Sends everything queued (`n` commands of one-line replies) without waiting for the replies:
    /// the next read skips them. For a command whose answer changes nothing for the request that sends
    /// it (releasing a lock after the session is stored), so it costs no round trip.
    pub fn send_unanswered(&mut self, n: usize) -> io::Result<()> {
        self.flush()?;
        self.unanswered += n;
        Ok(())
    }

    /// Reads the replies of commands sent with `send_unanswered`, before the connection is closed.
    /// A lock's release goes unanswered; a process that exits right after sending it must not exit
    /// before the server has served it: a waiter that finds the holder's process gone breaks its lock
    /// at once, and the next holder would then read the version item without the release's update
    /// (still queued in another server thread) and take a stale read for current (see `Drop for
    /// MemcachedStore`). Bounded by the connection's read timeout.
    pub fn finish(&mut self) -> io::Result<()> {
        self.skip_unanswered()
    }

    /// Replies still to be skipped (for tests).
    #[cfg(test)]
    pub fn unanswered(&self) -> usize {
        self.unanswered
    }

    fn skip_unanswered(&mut self) -> io::Result<()> {
        while self.unanswered > 0 {
            self.unanswered -= 1;
            let line = self.line()?;
            if line.starts_with("VA ") {
                return Err(bad(format!("unexpected value reply {line:?} to an unanswered command")));
            }
        }
        Ok(())
    }

    fn line(&mut self) -> io::Result<String> {
        let mut buf = Vec::with_capacity(64);
        let n = self.r.read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed by the server"));
        }
        // Meta replies end in \r\n; the LRU crawler's dump lines in \n alone.
        if buf.pop() != Some(b'\n') {
            return Err(bad("truncated reply line".into()));
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        String::from_utf8(buf).map_err(|_| bad("reply line is not text".into()))
    }

    /// Reads one reply.
    pub fn reply(&mut self) -> io::Result<Reply> {
        self.skip_unanswered()?;
        let line = self.line()?;
        let mut t = line.split(' ');
        Ok(match t.next().unwrap_or("") {
            "VA" => {
                let n: usize = t.next().and_then(|n| n.parse().ok()).ok_or_else(|| bad(format!("bad reply {line:?}")))?;
                let flags = parse_flags(t);
                let mut data = vec![0u8; n + 2];
                self.r.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(bad("value block not terminated".into()));
                }
                data.truncate(n);
                Reply::Value(data, flags)
            }
            "HD" => Reply::Done(parse_flags(t)),
            "EN" => Reply::Miss,
            "NS" => Reply::NotStored,
            "EX" => Reply::Exists,
            "NF" => Reply::NotFound,
            _ if line.starts_with("SERVER_ERROR") || line.starts_with("CLIENT_ERROR") || line == "ERROR" => {
                Reply::Error(line)
            }
            _ => return Err(bad(format!("unexpected reply {line:?}"))),
        })
    }

    /// A text command with a multi-line answer ending in `END` (stats, metadump); returns the lines.
    pub fn lines_until_end(&mut self, cmd: &str, max_lines: usize) -> io::Result<Vec<String>> {
        // Commands sent unanswered are answered first: memcached refuses a metadump that arrives
        // behind other commands in one read ("ERROR cannot pipeline other commands before metadump").
        self.skip_unanswered()?;
        self.queue(cmd, None);
        self.flush()?;
        self.read_lines_until_end(cmd, max_lines)
    }

    /// The answer of a multi-line command (`cmd`, for the words of an error) already sent, pipelined
    /// behind others whose replies were read first.
    pub fn read_lines_until_end(&mut self, cmd: &str, max_lines: usize) -> io::Result<Vec<String>> {
        let mut out = Vec::new();
        loop {
            let l = self.line()?;
            if l == "END" {
                return Ok(out);
            }
            if l == "ERROR" || l.starts_with("ERROR ") || l.starts_with("SERVER_ERROR") || l.starts_with("CLIENT_ERROR") || l.starts_with("BUSY") {
                return Err(bad(format!("{cmd}: {l}")));
            }
            if out.len() < max_lines {
                out.push(l);
            }
        }
    }
}

/// Whether `lines_until_end` failed because the server's LRU crawler is busy with another dump
/// (memcached answers `BUSY …`): the server is up, the command can be sent again.
pub fn is_busy(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::InvalidData && e.to_string().contains(": BUSY")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    #[test]
    fn idle_alive_tells_a_closed_or_out_of_step_connection() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let addr = ServerAddr::Tcp { host: "127.0.0.1".into(), port };
        let mut c = Conn::connect(&addr, Duration::from_secs(1), Duration::from_micros(50)).unwrap();
        let (mut server_side, _) = l.accept().unwrap();
        assert!(c.idle_alive(), "an open, quiet connection is usable");
        // The answer to a command sent unanswered is read (and dropped) by the check.
        c.queue("md k C1", None);
        c.send_unanswered(1).unwrap();
        let mut line = [0u8; 9];
        server_side.read_exact(&mut line).unwrap();
        server_side.write_all(b"NF\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(c.idle_alive(), "the unanswered command's answer is not out of step");
        assert_eq!(c.unanswered(), 0);
        server_side.write_all(b"HD\r\n").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!c.idle_alive(), "unasked-for bytes: out of step");

        let mut c = Conn::connect(&addr, Duration::from_secs(1), Duration::from_micros(50)).unwrap();
        let (server_side, _) = l.accept().unwrap();
        drop(server_side); // the server went away (restart)
        std::thread::sleep(Duration::from_millis(50));
        assert!(!c.idle_alive(), "closed by the server");
    }
}
