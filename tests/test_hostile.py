"""Issue 15, "a hostile afternoon": temp clean-up that must not delete users' files, crafted packs,
memory bombs, variable-frame-rate video, SIGTERM, full disks and misleading messages."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dinstyle.cli import app

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


# -- stale temps: only a dead dinstyle writer's own files -------------------------------------------

def test_cleanup_keeps_users_hidden_files(tmp_path, images, tiny_weights):
    from dinstyle.io.files import _HOST

    content, style = images("c.png"), images("s.png", (32, 32))
    out = tmp_path / "out"
    out.mkdir()
    mine = [out / ".c_s.png.swp", out / ".c_s.png.orig", out / ".c_s.png.x1y2z3w4.png",
            out / f".c_s.png.dinstyle-{_HOST}-{os.getppid()}-abcd1234.png",  # a live process's temp
            out / f".c_s.png.dinstyle-0123abcd-{_dead_pid()}-abcd1234.png"]  # another machine's
    for p in mine:
        p.write_bytes(b"keep me")
    stale = out / f".c_s.png.dinstyle-{_HOST}-{_dead_pid()}-abcd1234.png"
    stale.write_bytes(b"half a png")
    r = run("image", content, "-s", style, "-w", tiny_weights, "-o", out, "--style-size", "32")
    assert r.exit_code == 0, r.output
    assert all(p.read_bytes() == b"keep me" for p in mine)
    assert not stale.exists()
    (out / "c_s.png").unlink()
    (out / "c_s.png").write_bytes(b"existing output")  # skipped outputs: same rule
    r = run("image", content, "-s", style, "-w", tiny_weights, "-o", out, "--style-size", "32")
    assert r.exit_code == 0 and all(p.exists() for p in mine)


def test_concurrent_overwrite_keeps_the_other_runs_temp(tmp_path, images, tiny_weights):
    content, style = images("c.png"), images("s.png", (32, 32))
    dest = tmp_path / "out" / "c_s.png"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys
        from dinstyle.io.files import atomic_path
        with atomic_path({str(dest)!r}) as tmp:
            tmp.write_bytes(b"first run")
            print(tmp, flush=True)
            sys.stdin.readline()  # still encoding...
        """)], env=ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        tmp = Path(holder.stdout.readline().strip())
        assert tmp.exists() and tmp.parent == dest.parent
        r = run("image", content, "-s", style, "-w", tiny_weights, "-o", dest.parent, "--style-size", "32",
                "--overwrite")
        assert r.exit_code == 0, r.output
        assert tmp.exists(), "the second run deleted the first run's in-progress temp"
    finally:
        holder.communicate("\n", timeout=60)
    assert holder.returncode == 0
    assert dest.read_bytes() == b"first run"  # the first run finished (last rename wins)
