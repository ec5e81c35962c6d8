//! A plain (TCP or unix socket, no TLS) connection to one Redis server, speaking RESP2 (replies read
//! by `resp.rs`) over a [`crate::net::Socket`], so that a worker polls for an answer briefly
//! instead of sleeping at once (see `crate::net`). redis-rs' `Connection` owns its socket and offers
//! no way to wait for an answer other than a blocking read; TLS, Cluster and the Sentinels' own
//! connections still use it.
//!
//! The handshake is what redis-rs sends for the same settings without a client name: `AUTH` (with a
//! user name if one is given) and `SELECT` for a database other than 0.

use std::io::Write;
use std::time::Duration;

use redis::{ConnectionLike, ErrorKind, RedisError, RedisResult, Value};

use super::dsn::{Addr, Node};
use super::resp::Reader;
use crate::net::Socket;

pub struct Wire {
    sock: Socket,
    reader: Reader,
    db: i64,
    open: bool,
}

impl Wire {
    /// Connects and authenticates. Errors are redis-rs errors, as `redis::Client` would give them.
    pub fn connect(node: &Node) -> RedisResult<Wire> {
        let sock = match &node.addr {
            Addr::Tcp { host, port } => {
                Socket::tcp(host, *port, node.connect_timeout, node.read_timeout, node.busy_poll)?
            }
            Addr::Unix(p) => Socket::unix(p, node.read_timeout, node.busy_poll)?,
        };
        let mut w = Wire { sock, reader: Reader::default(), db: node.db, open: true };
        if let Some(p) = &node.password {
            let mut auth = redis::cmd("AUTH");
            if let Some(u) = &node.username {
                auth.arg(u);
            }
            auth.arg(p);
            // As redis-rs reports it (the server's own words can differ between versions).
            if let Err(e) = w.req_command(&auth)?.extract_error() {
                if e.code().is_some_and(|c| c == "WRONGPASS" || c == "ERR") {
                    return Err(RedisError::from((ErrorKind::AuthenticationFailed, "Password authentication failed")));
                }
                return Err(e);
            }
        }
        if node.db != 0 {
            w.req_command(redis::cmd("SELECT").arg(node.db))?.extract_error()?;
        }
        Ok(w)
    }

    pub fn set_read_timeout(&self, d: Option<Duration>) -> RedisResult<()> {
        Ok(self.sock.set_read_timeout(d)?)
    }

    /// Turns busy polling off for a read expected to wait long (BLPOP), and back on.
    pub fn set_polling(&mut self, on: bool) {
        self.sock.set_polling(on);
    }

    fn send(&mut self, bytes: &[u8]) -> RedisResult<()> {
        self.sock.write_all(bytes).map_err(|e| self.fail(e.into()))
    }

    fn read(&mut self) -> RedisResult<Value> {
        match self.reader.read_value(&mut self.sock) {
            Ok(v) => Ok(v),
            Err(e) => Err(self.fail(e)),
        }
    }

    /// Any I/O or protocol error leaves the stream at an unknown point: the connection is done.
    fn fail(&mut self, e: RedisError) -> RedisError {
        self.open = false;
        e
    }
}

impl ConnectionLike for Wire {
    fn req_packed_command(&mut self, cmd: &[u8]) -> RedisResult<Value> {
        if !self.open {
            return Err(closed());
        }
        self.send(cmd)?;
        self.read()
    }

    /// Sends `cmd` (several commands) in one write and returns the answers from `offset` on. Server
    /// error answers are returned as values (`Value::ServerError`); the caller decides.
    fn req_packed_commands(&mut self, cmd: &[u8], offset: usize, count: usize) -> RedisResult<Vec<Value>> {
        if !self.open {
            return Err(closed());
        }
        self.send(cmd)?;
        let mut out = Vec::with_capacity(count);
        for i in 0..offset + count {
            let v = self.read()?;
            if i >= offset {
                out.push(v);
            }
        }
        Ok(out)
    }

    fn get_db(&self) -> i64 {
        self.db
    }

    fn check_connection(&mut self) -> bool {
        redis::cmd("PING").query::<String>(self).is_ok()
    }

    fn is_open(&self) -> bool {
        self.open
    }
}

fn closed() -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::BrokenPipe, "connection closed after an error"))
}
