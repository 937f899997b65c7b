//! Terminal settings: the mode of QEMU's stdio chardev, and putting back exactly what was there.
//!
//! A terminal's settings belong to the terminal, not to fdmon: [`MonitorMode`] changes them only
//! while fdmon is the terminal's foreground process group, and restores the saved settings when
//! it is dropped, suspended or told to.

use super::raw;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::ptr;

use super::{cvt, errno};

/// `termios` as the kernel reports it.
#[derive(Clone, Copy)]
pub struct Termios(libc::termios);

impl Termios {
    /// The settings QEMU 7.2's stdio chardev uses (observed with `stty -a`): no canonical mode,
    /// no echo, no input translation or flow control, 8-bit characters, output processing kept,
    /// reads return after one byte; with `signal == false` also no signal characters.
    pub fn monitor_mode(&self, signal: bool) -> Termios {
        let mut t = self.0;
        t.c_iflag &= !(libc::IGNBRK
            | libc::BRKINT
            | libc::PARMRK
            | libc::ISTRIP
            | libc::INLCR
            | libc::IGNCR
            | libc::ICRNL
            | libc::IXON);
        t.c_oflag |= libc::OPOST;
        t.c_lflag &= !(libc::ECHO | libc::ECHONL | libc::ICANON | libc::IEXTEN);
        if !signal {
            t.c_lflag &= !libc::ISIG;
        }
        t.c_cflag &= !(libc::CSIZE | libc::PARENB);
        t.c_cflag |= libc::CS8;
        t.c_cc[libc::VMIN] = 1;
        t.c_cc[libc::VTIME] = 0;
        Termios(t)
    }
}

/// `tcgetattr`.
pub fn get(fd: BorrowedFd) -> io::Result<Termios> {
    // SAFETY: termios is plain old data; all-zero is a valid value for tcgetattr to fill in.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: tcgetattr on a borrowed, open fd writes into `t`, which outlives the call.
    cvt(unsafe { libc::tcgetattr(fd.as_raw_fd(), &mut t) })?;
    Ok(Termios(t))
}

/// `tcsetattr(TCSANOW)`, retried on `EINTR`, with `SIGTTOU` blocked during the call (fdmon only
/// calls it as the foreground group, or to put back what it changed).
pub fn set(fd: BorrowedFd, t: &Termios) -> io::Result<()> {
    // SAFETY: sigset_t is plain old data, initialized by sigemptyset right away.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid sigset_t; SIGTTOU is a valid signal.
    unsafe {
        raw::sigemptyset(&mut set);
        raw::sigaddset(&mut set, libc::SIGTTOU);
    }
    // SAFETY: as above; the old mask is filled in by pthread_sigmask.
    let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both sets are valid.
    let rc = unsafe { raw::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
    if rc != 0 {
        return Err(errno(rc));
    }
    let r = super::retry(|| {
        // SAFETY: tcsetattr on a borrowed, open fd reads `t.0`, which outlives the call.
        cvt(unsafe { libc::tcsetattr(fd.as_raw_fd(), libc::TCSANOW, &t.0) })
    });
    // SAFETY: restores the mask saved above.
    unsafe { raw::pthread_sigmask(libc::SIG_SETMASK, &old, ptr::null_mut()) };
    r.map(drop)
}

/// Whether the calling process's group is the foreground group of the terminal `fd`.
pub fn is_foreground(fd: BorrowedFd) -> bool {
    // SAFETY: tcgetpgrp and getpgid take no memory; tcgetpgrp on a borrowed, open fd.
    unsafe { raw::tcgetpgrp(fd.as_raw_fd()) == raw::getpgid(0) }
}

/// A terminal in the monitor's mode while this value lives: the user's settings are saved when
/// it is made and put back when it is dropped (and around a job-control stop).
pub struct MonitorMode {
    fd: OwnedFd,
    saved: Termios,
    mode: Termios,
    signal: bool,
    /// Whether the monitor mode is on the terminal now.
    applied: bool,
}

impl MonitorMode {
    /// Saves the settings of terminal `fd` (a copy of it is kept) and applies the monitor mode
    /// if fdmon is in the foreground; a background fdmon applies it on [`MonitorMode::resume`].
    pub fn new(fd: OwnedFd, signal: bool) -> io::Result<MonitorMode> {
        let saved = get(fd.as_fd())?;
        let mut m = MonitorMode { fd, saved, mode: saved.monitor_mode(signal), signal, applied: false };
        m.resume();
        Ok(m)
    }

    /// Puts the user's settings back (before a stop, or at exit).
    pub fn suspend(&mut self) {
        if self.applied {
            let _ = set(self.fd.as_fd(), &self.saved);
            self.applied = false;
        }
    }

    /// Applies the monitor mode again if fdmon is the terminal's foreground (after `SIGCONT`).
    /// The user's settings are read again first: they may have changed while fdmon was stopped.
    pub fn resume(&mut self) {
        if !is_foreground(self.fd.as_fd()) {
            return;
        }
        if !self.applied {
            if let Ok(now) = get(self.fd.as_fd()) {
                self.saved = now;
                self.mode = now.monitor_mode(self.signal);
            }
        }
        if set(self.fd.as_fd(), &self.mode).is_ok() {
            self.applied = true;
        }
    }
}

impl Drop for MonitorMode {
    fn drop(&mut self) {
        self.suspend();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monitor_mode_is_qemus_stdio_mode() {
        // SAFETY: termios is plain old data.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        t.c_iflag = libc::ICRNL | libc::IXON | libc::IXOFF | libc::IUTF8;
        t.c_oflag = libc::ONLCR;
        t.c_cflag = libc::CS7 | libc::PARENB | libc::CREAD;
        t.c_lflag = libc::ISIG | libc::ICANON | libc::ECHO | libc::ECHOE | libc::IEXTEN;
        t.c_cc[libc::VMIN] = 0;
        t.c_cc[libc::VTIME] = 5;
        let m = Termios(t).monitor_mode(true).0;
        assert_eq!(m.c_iflag, libc::IXOFF | libc::IUTF8);
        assert_eq!(m.c_oflag, libc::ONLCR | libc::OPOST);
        assert_eq!(m.c_cflag, libc::CS8 | libc::CREAD);
        assert_eq!(m.c_lflag, libc::ISIG | libc::ECHOE);
        assert_eq!((m.c_cc[libc::VMIN], m.c_cc[libc::VTIME]), (1, 0));
        assert_eq!(Termios(t).monitor_mode(false).0.c_lflag, libc::ECHOE);
    }
}
