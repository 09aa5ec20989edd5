"""One real cachee process for a test; shared by these tests and sdk/crosslang."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

START_TIMEOUT = 60.0


class Server:
    """One cachee process on a socket in a fresh short directory (socket paths are
    limited to 107 bytes), with free ports chosen by the kernel (--port=0) and read back
    from its "serving" log line, and a private segment directory."""

    def __init__(self, binary: str, *args: str, sock: str | None = None) -> None:
        self.binary = binary
        self.args = list(args)
        self.dir = tempfile.mkdtemp(prefix="cachee-py")
        self.sock = sock or os.path.join(self.dir, "c.sock")
        self.shm = os.path.join(self.dir, "shm")
        os.mkdir(self.shm)
        self.logs: list[str] = []
        self.start()

    def start(self, *extra: str) -> None:
        """Starts the process (again, after kill(): on the same socket and segment
        directory), with extra flags besides the first start's."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("CACHEE_", "CACHE_"))}
        self.proc = subprocess.Popen(
            [self.binary, f"--socket={self.sock}", f"--shm={self.shm}", "--port=0", "--http-port=0",
             "--metrics-port=0", "--max-memory=8mb", "--log-format=json", *self.args, *extra],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True,
        )
        self.serving = threading.Event()
        self.tcp = ""
        self.resp = False
        threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
        if not self.serving.wait(START_TIMEOUT):
            self.stop()
            raise RuntimeError("cachee did not start:\n" + "".join(self.logs))

    def kill(self) -> None:
        """SIGKILL, as an OOM kill or a node failure would."""
        self.proc.kill()
        self.proc.wait()

    def pause(self) -> None:
        """SIGSTOP, returning once the process is stopped (state T), so that nothing
        sent after this is answered until resume()."""
        self.proc.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            with open(f"/proc/{self.proc.pid}/stat") as f:
                # The state follows the command name in parentheses.
                if f.read().rsplit(")", 1)[1].split()[0] == "T":
                    return
            if time.monotonic() > deadline:
                raise RuntimeError("cachee did not stop")
            time.sleep(0.001)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def _read(self, proc: subprocess.Popen) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.logs.append(line)
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if rec.get("msg") == "serving":
                self.tcp = "127.0.0.1:" + rec["addr"].rsplit(":", 1)[1]
                self.resp = bool(rec.get("resp"))
                self.serving.set()

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
