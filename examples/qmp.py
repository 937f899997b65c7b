#!/usr/bin/env python3
"""Run QMP commands over a unix socket, one connect, no dependencies.

usage: qmp.py SOCKET_PATH COMMAND[:JSON_ARGUMENTS] ...

Negotiates capabilities, runs each command in order and prints each reply's "return" value as
JSON. Events that arrive are printed to stderr. Exits 1 at the first error reply.
Example: qmp.py mon.sock cont query-status 'human-monitor-command:{"command-line": "info status"}'
"""
import json
import socket
import sys


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(argv[1])
    lines = sock.makefile("rb")

    def receive():
        while True:
            line = lines.readline()
            if not line:
                raise EOFError("connection closed")
            msg = json.loads(line)
            if "event" in msg:
                print(json.dumps(msg), file=sys.stderr)
                continue
            return msg

    greeting = receive()
    if "QMP" not in greeting:
        print("not a QMP server", file=sys.stderr)
        return 1
    for n, spec in enumerate(["qmp_capabilities"] + argv[2:]):
        name, _, args = spec.partition(":")
        req = {"execute": name, "id": n}
        if args:
            req["arguments"] = json.loads(args)
        sock.sendall(json.dumps(req).encode())
        reply = receive()
        if "error" in reply:
            print(f"{name}: {reply['error']['desc']}", file=sys.stderr)
            return 1
        if n:
            print(json.dumps(reply["return"]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
