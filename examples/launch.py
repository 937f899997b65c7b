#!/usr/bin/env python3
"""Start a program with a listening unix socket as fd 3, the race-free way.

usage: launch.py SOCKET_PATH PROGRAM [ARGS...]

Creates and listens on SOCKET_PATH *before* starting PROGRAM (typically fdmon with
`-chardev socket,fd=3,server=on,wait=off,id=mon`), prints PROGRAM's pid and exits. When this
returns, a client can connect to SOCKET_PATH once, with no retry loop: the kernel queues the
connection until fdmon accepts it. If that connect fails, fdmon is gone.
"""
import os
import socket
import subprocess
import sys


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, cmd = argv[1], argv[2:]
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
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
