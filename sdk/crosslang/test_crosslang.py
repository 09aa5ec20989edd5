"""A value set from each language is read back identically from every other language,
and through RESP when the binary serves it. Run by `make test-crosslang`, after each
SDK's own tests have built its driver:

- Python: the cachee package, in this process;
- TypeScript: sdk/typescript/dist/test/xl.js (node);
- Java: com.cachee.client.Xl in sdk/java's test classes;
- Rust: sdk/rust's example `xl`.

Each driver takes `set KEY HEX` or `get KEY...` and finds the server the way an
application does, through $CACHEE_SOCKET.
"""

from __future__ import annotations

import os
import pathlib
import socket
import subprocess
import sys

import pytest

SDK = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(SDK / "python" / "tests"))

import cachee  # noqa: E402
from cachee_server import Server  # noqa: E402


def _java_cmd() -> list[str]:
    java = SDK / "java"
    cp = [str(java / "target" / "classes"), str(java / "target" / "test-classes")]
    cp += (java / "target" / "classpath.txt").read_text().strip().split(os.pathsep)
    return ["java", "-cp", os.pathsep.join(cp), "com.cachee.client.Xl"]


DRIVERS = {
    "typescript": lambda: ["node", str(SDK / "typescript" / "dist" / "test" / "xl.js")],
    "java": _java_cmd,
    "rust": lambda: [str(SDK / "rust" / "target" / "debug" / "examples" / "xl")],
}
LANGUAGES = ["python", *DRIVERS]


@pytest.fixture(scope="module")
def server():
    s = Server(os.environ["CACHEE_BIN"])
    yield s
    s.stop()


def value_of(writer: str) -> bytes:
    # Every byte value, NULs and invalid UTF-8 included, then some multi-byte UTF-8.
    return bytes(range(256)) + f"written by {writer}: naïve café ✓".encode()


def key_of(writer: str) -> str:
    return f"xl:{writer}:{os.getpid()}"


def env_for(server: Server) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CACHE_", "CACHEE_"))}
    env["CACHEE_SOCKET"] = server.sock
    return env


def run(lang: str, server: Server, *args: str) -> list[str]:
    out = subprocess.run(
        [*DRIVERS[lang](), *args], env=env_for(server), capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, f"{lang} {args[0]}: {out.stderr}"
    return out.stdout.split()


def write(lang: str, server: Server, key: str, value: bytes) -> None:
    if lang == "python":
        with cachee.Client(server.sock) as c:
            assert c.set(key, value)
    else:
        run(lang, server, "set", key, value.hex())


def read(lang: str, server: Server, keys: list[str]) -> list[bytes | None]:
    if lang == "python":
        with cachee.Client(server.sock) as c:
            return c.get_many(keys)
    return [None if h == "-" else bytes.fromhex(h) for h in run(lang, server, "get", *keys)]


def test_every_language_reads_every_language(server):
    for writer in LANGUAGES:
        write(writer, server, key_of(writer), value_of(writer))
    keys = [key_of(w) for w in LANGUAGES] + [f"xl:absent:{os.getpid()}"]
    want = [value_of(w) for w in LANGUAGES] + [None]
    for reader in LANGUAGES:
        got = read(reader, server, keys)
        for writer, g, w in zip(LANGUAGES + ["(absent)"], got, want):
            assert g == w, f"{reader} read {writer}'s value differently"


class Resp:
    """Just enough of RESP2 for GET and SET over the Unix socket."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""

    def command(self, *args: bytes) -> bytes | None:
        req = b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)
        self.sock.sendall(req)
        line = self._line()
        if line[:1] in (b"+", b"-"):
            return line
        if line in (b"$-1", b"_"):
            return None
        assert line[:1] == b"$", line
        n = int(line[1:])
        while len(self.buf) < n + 2:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n + 2 :]
        return data

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def close(self) -> None:
        self.sock.close()


def test_resp_reads_and_writes_every_language(server):
    if not server.resp:
        pytest.skip("RESP leg skipped: this cachee build does not serve RESP yet (its serving log line says resp=false)")
    r = Resp(server.sock)
    try:
        # The server says it serves RESP: a closed connection here is a failure.
        assert r.command(b"PING") == b"+PONG"
        for writer in LANGUAGES:
            write(writer, server, key_of(writer) + ":resp", value_of(writer))
            assert r.command(b"GET", (key_of(writer) + ":resp").encode()) == value_of(writer), writer
        key = f"xl:resp:{os.getpid()}"
        assert r.command(b"SET", key.encode(), value_of("resp")) == b"+OK"
    finally:
        r.close()
    for reader in LANGUAGES:
        assert read(reader, server, [key]) == [value_of("resp")], reader
