//! The client side of one monitor connection: bounded waits only.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

pub const QMP_CAPABILITIES: &[u8] = b"{\"execute\":\"qmp_capabilities\"}\n";
pub const QUERY_STATUS: &[u8] = b"{\"execute\":\"query-status\"}\n";
pub const QUIT: &[u8] = b"{\"execute\":\"quit\"}\n";

pub fn err(what: &str) -> std::io::Error {
    std::io::Error::other(what.to_string())
}

/// A monitor connection; counts reply lines.
pub struct Conn {
    pub s: UnixStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn new(s: UnixStream) -> Conn {
        Conn { s, buf: Vec::with_capacity(4096) }
    }

    /// Reads until `n` more newlines arrived, within `t`.
    pub fn lines(&mut self, n: usize, t: Duration) -> std::io::Result<()> {
        let end = Instant::now() + t;
        let mut seen = 0;
        let mut chunk = [0u8; 65536];
        // Newlines left over from an earlier read count first.
        while seen < n {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                self.buf.drain(..=i);
                seen += 1;
                continue;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(err("timed out waiting for a reply line"));
            }
            self.s.set_read_timeout(Some(left))?;
            let k = self.s.read(&mut chunk)?;
            if k == 0 {
                return Err(err("the target hung up"));
            }
            self.buf.extend_from_slice(&chunk[..k]);
            if self.buf.len() > 1 << 24 {
                return Err(err("reply too long"));
            }
        }
        Ok(())
    }

    pub fn send(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.s.write_all(b)
    }

    /// Sends one command and waits for its reply line.
    pub fn cmd(&mut self, b: &[u8], t: Duration) -> std::io::Result<()> {
        self.send(b)?;
        self.lines(1, t)
    }
}
