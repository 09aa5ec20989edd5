"""Runs the README's first example, as a user would, against a real cachee."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example(server):
    example = re.search(r"## Example\n\n```python\n(.*?)```", README.read_text(), re.S).group(1)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CACHE_", "CACHEE_"))}
    env["CACHEE_SOCKET"] = server.sock
    out = subprocess.run([sys.executable, "-c", example], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "b'{\"name\":\"Ada\"}'\n"
