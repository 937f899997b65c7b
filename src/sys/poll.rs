//! `poll(2)` over a caller-built array. It never owns, closes or remembers the fds it watches.

use super::raw;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use super::cvt;

/// Data to read (or a connection to accept).
pub const IN: i16 = libc::POLLIN;
/// Room to write.
pub const OUT: i16 = libc::POLLOUT;
/// Peer hung up (output only).
pub const HUP: i16 = libc::POLLHUP;
/// Error condition (output only).
pub const ERR: i16 = libc::POLLERR;
/// The fd is not open (output only).
pub const NVAL: i16 = libc::POLLNVAL;

/// One entry of the array passed to [`poll`]; layout-identical to `struct pollfd`.
///
/// It holds a plain fd number, not a borrow: the loop keeps the array across rounds and
/// rebuilds it from its registry when the set of sources changes. A number that was closed
/// meanwhile reports [`NVAL`]; a negative number is skipped by the kernel (its `revents` stay 0).
#[derive(Clone, Copy)]
#[repr(transparent)]
pub struct PollFd(libc::pollfd);

impl PollFd {
    /// Watch `fd` for `events` (a combination of [`IN`] and [`OUT`]).
    pub fn new(fd: RawFd, events: i16) -> Self {
        PollFd(libc::pollfd { fd, events, revents: 0 })
    }

    /// What happened, after [`poll`] returned.
    pub fn revents(&self) -> i16 {
        self.0.revents
    }

    /// The events asked for.
    #[cfg(test)]
    pub fn events(&self) -> i16 {
        self.0.events
    }

    /// Watch `fd` for `events` instead (clears `revents`); a negative `fd` disables the entry
    /// (the kernel skips it), so an array can keep its shape while interest comes and goes.
    pub fn set(&mut self, fd: RawFd, events: i16) {
        self.0.fd = fd;
        self.0.events = events;
        self.0.revents = 0;
    }

    /// The watched fd number.
    #[cfg(test)]
    pub fn fd(&self) -> RawFd {
        self.0.fd
    }
}

impl fmt::Debug for PollFd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PollFd")
            .field("fd", &self.0.fd)
            .field("events", &format_args!("{:#x}", self.0.events))
            .field("revents", &format_args!("{:#x}", self.0.revents))
            .finish()
    }
}

/// Converts a timeout to poll's milliseconds, rounding up so that a short but nonzero wait
/// never becomes a busy loop; `None` is -1 (infinite); capped at `i32::MAX` ms.
fn timeout_ms(timeout: Option<Duration>) -> libc::c_int {
    match timeout {
        None => -1,
        Some(d) => {
            let ms = d.as_nanos().div_ceil(1_000_000);
            ms.min(libc::c_int::MAX as u128) as libc::c_int
        }
    }
}

/// Waits until one of `fds` is ready or `timeout` passes (`None` = forever). Returns how many
/// entries have nonzero `revents`; 0 on timeout. A signal (`EINTR`) also returns `Ok(0)`, with
/// every `revents` cleared: the caller checks its self-pipe and deadline on the next round.
/// On success the kernel has written every entry's `revents` (0 for a negative fd), so the
/// array is not cleared first: a large, mostly idle set costs nothing per entry here. After
/// another error, `revents` are unspecified.
pub fn poll(fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    // SAFETY: PollFd is repr(transparent) over libc::pollfd, so the slice is a valid array
    // of `fds.len()` pollfd structs that the kernel may write `revents` into.
    let r =
        unsafe { raw::poll(fds.as_mut_ptr().cast::<libc::pollfd>(), fds.len() as libc::nfds_t, timeout_ms(timeout)) };
    match cvt(r) {
        Ok(n) => Ok(n as usize),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            for p in fds.iter_mut() {
                p.0.revents = 0;
            }
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// Sleeps for `d` (`nanosleep`, resumed after a signal): the back-off of a loop that cannot
/// poll (an fd that keeps failing).
pub fn sleep(d: std::time::Duration) {
    super::raw::sleep_ns(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::fd;
    use std::os::fd::{AsFd, AsRawFd};
    use std::time::Instant;

    #[test]
    fn timeout_rounding() {
        assert_eq!(timeout_ms(None), -1);
        assert_eq!(timeout_ms(Some(Duration::ZERO)), 0);
        assert_eq!(timeout_ms(Some(Duration::from_micros(1))), 1);
        assert_eq!(timeout_ms(Some(Duration::from_millis(1500))), 1500);
        assert_eq!(timeout_ms(Some(Duration::from_secs(u64::MAX))), libc::c_int::MAX);
    }

    #[test]
    fn poll_times_out_then_sees_data() {
        let (r, w) = fd::pipe(true).unwrap();
        let mut fds = [PollFd::new(r.as_raw_fd(), IN)];
        // A signal sent to the test process (another test does that) may end a wait early
        // with Ok(0), so wait out the deadline in a loop, as the event loop does.
        let t = Instant::now();
        let deadline = t + Duration::from_millis(50);
        let mut rounds = 0;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            assert_eq!(poll(&mut fds, Some(left)).unwrap(), 0);
            assert_eq!(fds[0].revents(), 0);
            rounds += 1;
        }
        assert!(rounds >= 1 && t.elapsed() >= Duration::from_millis(50));
        fd::write(w.as_fd(), b"x").unwrap();
        while poll(&mut fds, Some(Duration::from_secs(5))).unwrap() == 0 {}
        assert_eq!(fds[0].revents() & IN, IN);
        assert_eq!(fds[0].fd(), r.as_raw_fd());
    }

    #[test]
    fn poll_hup_out_and_negative() {
        let (r, w) = fd::pipe(true).unwrap();
        let mut fds = [PollFd::new(-1, IN), PollFd::new(w.as_raw_fd(), OUT), PollFd::new(r.as_raw_fd(), IN)];
        // Ok(0) only if a signal (from another test) interrupted the call.
        while poll(&mut fds, Some(Duration::ZERO)).unwrap() == 0 {}
        assert_eq!(fds[0].revents(), 0);
        assert_eq!(fds[1].revents(), OUT);
        assert_eq!(fds[2].revents(), 0);
        drop(w);
        let mut fds = [PollFd::new(r.as_raw_fd(), IN)];
        while poll(&mut fds, None).unwrap() == 0 {}
        assert_ne!(fds[0].revents() & HUP, 0);
    }
}
