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


# -- crafted style packs: validated against the model before anything is allocated ------------------

def _pack(tmp_path, images, tiny_weights, mode="standard"):
    from dinstyle.engine import Stylizer

    st = Stylizer(weights=tiny_weights, device="cpu")
    return st.make_pack(images("s.png", (32, 32)), mode=mode, style_size=32).save(tmp_path / f"{mode}.dinpack")


def _craft(path, dest, meta_changes=None, tensors=None):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    meta.update(meta_changes or {})
    t = load_file(str(path))
    save_file(tensors(t) if tensors else t, str(dest), metadata=meta)
    return dest


@pytest.mark.parametrize("case", ["layers", "mode", "empty_maps", "stray_tensor"])
def test_crafted_pack_is_one_clear_error(tmp_path, images, tiny_weights, case):
    mode = "adaptive" if case == "empty_maps" else "standard"
    good = _pack(tmp_path, images, tiny_weights, mode)
    bad = tmp_path / "bad.dinpack"
    if case == "layers":
        _craft(good, bad, {"layers": "40000000"})
    elif case == "mode":
        _craft(good, bad, {"mode": "bogus"})
    elif case == "empty_maps":
        _craft(good, bad, tensors=lambda t: {k: v[:, :, :0, :0].contiguous() for k, v in t.items()})
    else:
        import torch

        _craft(good, bad, tensors=lambda t: {**t, "din7.weight": torch.zeros(1, 4)})
    assert bad.stat().st_size < 4096
    t0 = time.time()
    r = run("image", images("c.png"), "-s", bad, "-w", tiny_weights, "-o", tmp_path / "o.png")
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "bad.dinpack" in r.stderr and "Traceback" not in r.output
    assert not (tmp_path / "o.png").exists()
    r = run("info", "-s", bad, "-w", tiny_weights)
    assert r.exit_code == 2 and "bad.dinpack" in r.stderr
    assert time.time() - t0 < 60  # the 40M-layer pack used to hang with memory growing


@pytest.fixture
def tiny_fs(tmp_path):
    """A 64 KiB tmpfs (a disk that fills up), or None where the tests cannot mount one."""
    d = tmp_path / "tiny"
    d.mkdir()
    try:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(d)], capture_output=True,
                            timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    yield d if ok else None
    if ok:
        subprocess.run(["umount", "-l", str(d)], capture_output=True, timeout=30)


def test_full_disk_while_writing_a_pack(tmp_path, images, tiny_weights, tiny_fs, monkeypatch):
    import errno

    if tiny_fs is None:  # simulate: the bytes are written, then the disk is full
        def full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr("dinstyle.io.files.os.fsync", full)
    out = tiny_fs or tmp_path / "packs"
    r = run("precompute", images("s.png", (160, 160)), "-o", out, "--mode", "adaptive", "--style-size", "160",
            "-w", tiny_weights)
    assert r.exit_code == 2, r.output
    assert "No space left on device" in r.stderr and "Traceback" not in r.output
    assert not out.exists() or list(out.iterdir()) == []  # no torn pack, no temp


# -- video: variable frame rate, ffmpeg's reasons, SIGTERM ------------------------------------------

def _ffmpeg(*args):
    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *map(str, args)], check=True,
                   timeout=120)


def test_variable_frame_rate_video_keeps_its_duration(tmp_path, images, tiny_weights):
    from dinstyle.io.video import probe_frames

    src = tmp_path / "vfr.mp4"
    # 30 frames at 30 fps, then 30 frames at 5 fps: 60 frames over 7 s (average 8.6 fps, base rate 30)
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=30:duration=2",
            "-vf", "setpts='if(lt(N,30),N,30+(N-30)*6)/30/TB'", "-fps_mode", "vfr", "-c:v", "libx264",
            "-pix_fmt", "yuv420p", src)
    n_in, secs_in = probe_frames(src)
    out = tmp_path / "out.mp4"
    r = run("video", src, "-s", images("s.png", (32, 32)), "-w", tiny_weights, "-o", out, "--style-size", "32")
    assert r.exit_code == 0, r.output
    n_out, secs_out = probe_frames(out)
    assert abs(secs_out - secs_in) < 0.5, (secs_in, secs_out)  # was 22.8 s for 7 s, 210 frames for 60
    assert abs(n_out - n_in) <= 0.15 * n_in, (n_in, n_out)


def test_ffmpeg_failure_is_one_line_with_the_reason(tmp_path, images, tiny_weights):
    src = tmp_path / "clip.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=size=64x48:rate=10:duration=1", "-c:v", "libx264", "-pix_fmt", "yuv420p", src)
    p = subprocess.run([sys.executable, "-m", "dinstyle", "video", str(src), "-s", str(images("s.png", (32, 32))),
                        "-w", str(tiny_weights), "-o", str(tmp_path / "o.mp4"), "--style-size", "32",
                        "--codec", "nonesuch"], env=ENV, capture_output=True, text=True, timeout=300)
    assert p.returncode == 2
    assert p.stderr.strip().splitlines() == [f"error: {tmp_path / 'o.mp4'}: encoding failed (Unknown encoder 'nonesuch')"]
    assert not list(tmp_path.glob(".o.mp4*")) and not (tmp_path / "o.mp4").exists()
