#!/usr/bin/env python3
"""Start a program with a listening unix socket as fd 3, the race-free way.

usage: launch.py SOCKET_PATH PROGRAM [ARGS...]

Creates and listens on SOCKET_PATH *before* starting PROGRAM (typically fdmon with
`-chardev socket,fd=3,server=on,wait=off,id=mon`), prints PROGRAM's pid and exits. When this
returns, a client can connect to SOCKET_PATH once, with no retry loop: the kernel queues the
connection until fdmon accepts it. If that connect fails, fdmon is gone.

An existing SOCKET_PATH is replaced only if it is a stale socket (nothing listens on it);
anything else there (a regular file, a live socket) is an error and is left untouched.
"""
import os
import socket
import stat
import subprocess
import sys


def remove_stale_socket(path):
    """Removes PATH only if it is a stale socket (nobody listening); returns why not, or None.

    A regular file, a directory, a symbolic link or a socket some process listens on is left
    alone: the caller named the wrong path, and deleting it could destroy data or cut off a
    running service.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if not stat.S_ISSOCK(st.st_mode):
        return "it is not a socket"
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except ConnectionRefusedError:
        os.unlink(path)
        return None
    except OSError as e:
        return e.strerror
    finally:
        probe.close()
    return "a process is listening on it"


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, cmd = argv[1], argv[2:]
    problem = remove_stale_socket(path)
    if problem:
        print(f"launch.py: refusing to replace {path}: {problem}", file=sys.stderr)
        return 1
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(path)
    lst.listen(8)

    if lst.fileno() != 3:
        os.dup2(lst.fileno(), 3)  # the copy at 3 is inheritable
    proc = subprocess.Popen(cmd, pass_fds=(3,), start_new_session=True)
    print(proc.pid)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
