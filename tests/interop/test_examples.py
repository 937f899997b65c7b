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

    def readme_makefile(self):
        """The README's Makefile block, pointed at this checkout's fdmon."""
        with open(os.path.join(ROOT, "README.md")) as f:
            text = f.read()
        start = text.index("```make\n") + len("```make\n")
        block = text[start:text.index("```", start)]
        self.assertIn("FDMON = fdmon\n", block)
        self.assertNotIn("python", block)
        block = block.replace("FDMON = fdmon\n", f"FDMON = {FDMON}\n", 1)
        path = os.path.join(self.dir.name, "Makefile")
        with open(path, "w") as f:
            f.write(block)
        return path

    def write_script(self, name, body):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(body)
        return path

    def run_readme_make(self, client_ok):
        """Runs `make check-server` from the README with a fake server and client tests;
        returns (make's result, fdmon's pid, the server's pid)."""
        self.readme_makefile()
        # The daemon keeps the working directory; the server's parent is fdmon.
        server = self.write_script("server.sh", "echo $$ > server.pid; echo $PPID > fdmon.pid; touch started; exec sleep 300\n")
        client = self.write_script("client.sh", (
            "i=0; while [ ! -e started ]; do i=$((i+1)); [ $i -gt 400 ] && exit 3; sleep 0.05; done\n"
            + ("exit 0\n" if client_ok else "exit 1\n")))
        r = subprocess.run(["make", "--no-print-directory", "check-server",
                            f"SERVER=sh {server}", f"CLIENT_TESTS=sh {client}"],
                           cwd=self.dir.name, capture_output=True, text=True, timeout=TIMEOUT * 2)
        with open(os.path.join(self.dir.name, "fdmon.pid")) as f:
            fdmon_pid = int(f.read())
        with open(os.path.join(self.dir.name, "server.pid")) as f:
            server_pid = int(f.read())
        return r, fdmon_pid, server_pid

    def wait_gone(self, pid, what):
        deadline = time.monotonic() + TIMEOUT
        while True:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                        return
            except FileNotFoundError:
                return
            self.assertLess(time.monotonic(), deadline, f"{what} (pid {pid}) is still running")
            time.sleep(0.01)

    def test_readme_quick_start(self):
        """The README's quick start, with this checkout's fdmon first in PATH."""
        with open(os.path.join(ROOT, "README.md")) as f:
            text = f.read()
        start = text.index("```sh\n", text.index("## Quick start")) + len("```sh\n")
        lines = text[start:text.index("```", start)].splitlines()
        self.assertTrue(lines[0].startswith("cargo build --release"), lines[0])
        script = "set -e\n" + "\n".join(lines[1:]) + "\n"
        env = dict(os.environ, PATH=os.path.dirname(os.path.abspath(FDMON)) + os.pathsep + os.environ["PATH"])
        r = subprocess.run(["sh", "-c", script], cwd=self.dir.name, env=env, capture_output=True, text=True,
                           timeout=TIMEOUT)
        self.assertEqual((r.returncode, r.stderr), (0, ""))
        out = r.stdout.splitlines()
        self.assertEqual(out[0], '{"status": "running", "singlestep": false, "running": true}')
        self.assertEqual(out[1], "{}")
        self.assertTrue(out[2].startswith("workload: sleep, pid "), out)
        self.assertEqual(out[-1], "{}")
        deadline = time.monotonic() + TIMEOUT
        while os.path.exists(os.path.join(self.dir.name, "demo.sock")):
            self.assertLess(time.monotonic(), deadline, "fdmon did not exit and remove demo.sock")
            time.sleep(0.01)

    def test_readme_makefile_passes_and_cleans_up(self):
        r, fdmon_pid, server_pid = self.run_readme_make(client_ok=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.wait_gone(fdmon_pid, "fdmon")
        self.wait_gone(server_pid, "the server")
        # fdmon removed the socket it created.
        self.assertFalse(os.path.exists(os.path.join(self.dir.name, "mon.sock")))

    def test_readme_makefile_cleans_up_when_a_step_fails(self):
        r, fdmon_pid, server_pid = self.run_readme_make(client_ok=False)
        self.assertNotEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("Error 1", r.stderr)
        self.wait_gone(fdmon_pid, "fdmon")
        self.wait_gone(server_pid, "the server")

    def test_launch_refuses_to_replace_anything_but_a_stale_socket(self):
        launch = os.path.join(ROOT, "examples", "launch.py")
        marker = os.path.join(self.dir.name, "ran")
        with open(self.sock, "w") as f:
            f.write("precious\n")
        r = run(sys.executable, launch, self.sock, "touch", marker, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stderr, f"launch.py: refusing to replace {self.sock}: it is not a socket\n")
        with open(self.sock) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertFalse(os.path.exists(marker))
        os.unlink(self.sock)
        import socket
        live = socket.socket(socket.AF_UNIX)
        live.bind(self.sock)
        live.listen(1)
        try:
            r = run(sys.executable, launch, self.sock, "touch", marker, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(r.stderr, f"launch.py: refusing to replace {self.sock}: a process is listening on it\n")
            self.assertTrue(os.path.exists(self.sock))
        finally:
            live.close()
        # Now stale (nothing listens): replaced, and the command runs.
        r = run(sys.executable, launch, self.sock, "touch", marker)
        deadline = time.monotonic() + TIMEOUT
        while not os.path.exists(marker):
            self.assertLess(time.monotonic(), deadline, "the command did not run")
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
