"""Interop: python's qemu.qmp QMPClient (unchanged, from PyPI) drives a real fdmon process.

Run by `make interop` with FDMON pointing at the binary.
"""
import asyncio
import os
import socket
import subprocess
import tempfile
import unittest

from qemu.qmp import ExecuteError, QMPClient

FDMON = os.environ.get("FDMON", "target/debug/fdmon")
TIMEOUT = 20


def spawn(args, pass_fds=()):
    return subprocess.Popen([FDMON, *args], pass_fds=pass_fds, stdin=subprocess.DEVNULL)


class QmpInterop(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory(prefix="fdmon-test-")
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
            p.wait(TIMEOUT)
        self.dir.cleanup()

    def inherited_listener(self, *extra):
        """The seed's flow: the parent creates the listener, fdmon inherits it."""
        path = os.path.join(self.dir.name, "qmp.sock")
        lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        lst.bind(path)
        lst.listen(1)
        fd = lst.fileno()
        os.set_inheritable(fd, True)
        p = spawn(["-chardev", f"socket,fd={fd},server=on,wait=off,id=mon",
                   "-mon", "chardev=mon,mode=control", *extra], pass_fds=[fd])
        lst.close()
        self.procs.append(p)
        return p, path

    def run_async(self, coro):
        return asyncio.run(asyncio.wait_for(coro, TIMEOUT))

    async def session(self, qmp):
        self.assertEqual(qmp.greeting.QMP.version["package"], "fdmon")
        st = await qmp.execute("query-status")
        self.assertEqual(st, {"status": "running", "singlestep": False, "running": True})
        await qmp.execute("stop")
        ev = await qmp.events.get()
        self.assertEqual(ev["event"], "STOP")
        self.assertEqual((await qmp.execute("query-status"))["status"], "paused")
        await qmp.execute("cont")
        ev = await qmp.events.get()
        self.assertEqual(ev["event"], "RESUME")
        with self.assertRaises(ExecuteError) as cm:
            await qmp.execute("no-such-command")
        self.assertEqual(str(cm.exception), "The command no-such-command has not been found")
        self.assertEqual(cm.exception.error.error.class_, "CommandNotFound")
        names = {c["name"] for c in await qmp.execute("query-commands")}
        self.assertTrue({"qmp_capabilities", "query-status", "quit", "getfd"} <= names)
        ver = await qmp.execute("query-version")
        self.assertEqual(ver["package"], "fdmon")
        await qmp.execute("quit")
        ev = await qmp.events.get()
        self.assertEqual(ev["event"], "SHUTDOWN")
        self.assertEqual(ev["data"], {"guest": False, "reason": "host-qmp-quit"})
        try:
            await qmp.disconnect()
        except EOFError:
            pass  # the server closed first, as QEMU does after quit

    def test_inherited_listening_socket(self):
        p, path = self.inherited_listener()

        async def main():
            qmp = QMPClient("interop")
            await qmp.connect(path)  # exactly once: no retry loop
            await self.session(qmp)

        self.run_async(main())
        self.assertEqual(p.wait(TIMEOUT), 0)

    def test_inherited_connected_socketpair(self):
        ours, theirs = socket.socketpair()
        p = spawn(["-chardev", f"socket,fd={theirs.fileno()},id=mon",
                   "-mon", "chardev=mon,mode=control"], pass_fds=[theirs.fileno()])
        theirs.close()
        self.procs.append(p)

        async def main():
            qmp = QMPClient("pair")
            await qmp.connect(ours)
            await self.session(qmp)

        self.run_async(main())
        self.assertEqual(p.wait(TIMEOUT), 0)

    def test_listening_path_socket(self):
        path = os.path.join(self.dir.name, "own.sock")
        p = spawn(["-chardev", f"socket,path={path},server=on,wait=off,id=mon",
                   "-mon", "chardev=mon,mode=control"])
        self.procs.append(p)

        async def main():
            for _ in range(2000):  # fdmon creates this socket itself: the race the seed removes
                if os.path.exists(path):
                    break
                await asyncio.sleep(0.01)
            qmp = QMPClient("path")
            await qmp.connect(path)
            await self.session(qmp)

        self.run_async(main())
        self.assertEqual(p.wait(TIMEOUT), 0)
        self.assertFalse(os.path.exists(path), "fdmon removes the socket it created")

    def test_signal_shutdown_event(self):
        p, path = self.inherited_listener()

        async def main():
            qmp = QMPClient("sig")
            await qmp.connect(path)
            self.assertEqual((await qmp.execute("query-name")), {})
            p.terminate()
            ev = await qmp.events.get()
            self.assertEqual(ev["event"], "SHUTDOWN")
            self.assertEqual(ev["data"], {"guest": False, "reason": "host-signal"})
            try:
                await qmp.disconnect()
            except EOFError:
                pass

        self.run_async(main())
        self.assertEqual(p.wait(TIMEOUT), 0)


    def test_second_monitor_at_run_time(self):
        """The seed's flow continued: pass a fresh listener with send_fd_scm + getfd, make it a
        chardev and a QMP monitor (fdmon's monitor-add), and connect a second client once."""
        p, path = self.inherited_listener()
        path2 = os.path.join(self.dir.name, "second.sock")

        async def main():
            qmp = QMPClient("first")
            await qmp.connect(path)
            lst2 = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            lst2.bind(path2)
            lst2.listen(1)
            qmp.send_fd_scm(lst2.fileno())
            lst2.close()
            await qmp.execute("getfd", {"fdname": "second"})
            await qmp.execute("chardev-add", {"id": "qmp2", "backend": {"type": "socket", "data": {
                "addr": {"type": "fd", "data": {"str": "second"}}, "server": True, "wait": False}}})
            await qmp.execute("monitor-add", {"id": "mon2", "chardev": "qmp2", "mode": "control"})
            second = QMPClient("second")
            await second.connect(path2)  # once: the listener was listening before it was passed
            await self.session(second)  # stop, cont, quit: the first client sees them all
            self.assertEqual((await qmp.events.get())["event"], "STOP")
            self.assertEqual((await qmp.events.get())["event"], "RESUME")
            ev = await qmp.events.get()
            self.assertEqual(ev["event"], "SHUTDOWN")
            self.assertEqual(ev["data"], {"guest": False, "reason": "host-qmp-quit"})
            try:
                await qmp.disconnect()
            except EOFError:
                pass

        self.run_async(main())
        self.assertEqual(p.wait(TIMEOUT), 0)

if __name__ == "__main__":
    unittest.main()
