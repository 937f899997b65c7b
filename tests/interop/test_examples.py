"""The README's Makefile flow with examples/launch.py and examples/qmp.py, and qmp-shell."""
import os
import subprocess
import sys
import tempfile
import time
import unittest

FDMON = os.environ.get("FDMON", "target/debug/fdmon")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TIMEOUT = 20


def run(*args, check=True):
    r = subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)
    if check and r.returncode != 0:
        raise AssertionError(f"{args} failed: {r.returncode} {r.stderr}")
    return r


class Examples(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="fdmon-test-")
        self.sock = os.path.join(self.dir.name, "mon.sock")
        self.marker = os.path.join(self.dir.name, "started")

    def tearDown(self):
        self.dir.cleanup()

    def test_makefile_flow(self):
        launch = os.path.join(ROOT, "examples", "launch.py")
        qmp = os.path.join(ROOT, "examples", "qmp.py")
        # launch.py's output goes to a file: fdmon inherits it and keeps it open.
        with open(os.path.join(self.dir.name, "launch.out"), "w+") as out:
            subprocess.run([sys.executable, launch, self.sock, FDMON, "-S",
                            "-chardev", "socket,fd=3,server=on,wait=off,id=mon",
                            "-mon", "chardev=mon,mode=control",
                            "--", "sh", "-c", f"touch {self.marker}; exec sleep 300"],
                           stdout=out, check=True, timeout=TIMEOUT)
            out.seek(0)
            pid = int(out.read())
        # No retry: the socket listens before fdmon even starts.
        out = run(sys.executable, qmp, self.sock, "query-status").stdout
        self.assertEqual(out, '{"status": "prelaunch", "singlestep": false, "running": false}\n')
        self.assertFalse(os.path.exists(self.marker))
        r = run(sys.executable, qmp, self.sock, "cont", "query-status")
        self.assertIn('"event": "RESUME"', r.stderr)
        self.assertIn('"status": "running"', r.stdout)
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(self.marker):
            self.assertLess(time.monotonic(), deadline, "workload did not start")
            time.sleep(0.01)
        r = run(sys.executable, qmp, self.sock, "bogus-command", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, "bogus-command: The command bogus-command has not been found\n")
        r = run(sys.executable, qmp, self.sock, "quit")
        self.assertIn('"reason": "host-qmp-quit"', r.stderr)
        deadline = time.monotonic() + TIMEOUT
        def alive():
            try:
                with open(f"/proc/{pid}/stat") as f:
                    return f.read().split()[2] != "Z"
            except FileNotFoundError:
                return False

        while alive():
            self.assertLess(time.monotonic(), deadline, "fdmon did not exit")
            time.sleep(0.01)

    def qmp_shell(self, *args, stdin):
        """Runs qmp-shell (unchanged, from qemu.qmp) against a fresh fdmon; returns its stdout."""
        shell = os.path.join(os.path.dirname(sys.executable), "qmp-shell")
        if not os.path.exists(shell):
            self.fail(f"qmp-shell is required (qemu.qmp installs it) but {shell} does not exist")
        p = subprocess.Popen([FDMON, "-chardev", f"socket,path={self.sock},server=on,wait=on,id=mon",
                              "-mon", "chardev=mon,mode=control"], stderr=subprocess.PIPE, text=True)
        try:
            p.stderr.readline()  # the "waiting for connection" line: the socket exists now
            return subprocess.run([shell, *args, self.sock], input=stdin,
                                  capture_output=True, text=True, timeout=TIMEOUT).stdout
        finally:
            p.kill()
            p.wait(TIMEOUT)
            p.stderr.close()

    def test_qmp_shell(self):
        out = self.qmp_shell(stdin="query-status\nquery-name\nbogus\n")
        self.assertIn("Connected to QEMU 0.1.0", out)
        self.assertIn('{"return": {"status": "running", "singlestep": false, "running": true}}', out)
        self.assertIn('{"return": {}}', out)
        self.assertIn('"desc": "The command bogus has not been found"', out)

    def test_qmp_shell_hmp_mode(self):
        # -H sends human-monitor-command with "cpu-index": 0, which fdmon accepts.
        out = self.qmp_shell("-H", stdin="info status\nstop\ninfo status\n")
        self.assertIn("VM status: running", out)
        self.assertIn("VM status: paused", out)


if __name__ == "__main__":
    unittest.main()
