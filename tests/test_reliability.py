"""Crash safety: SIGKILL mid-batch then rerun; property test over odd inputs."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as hs
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def _cmd(inp, style, weights, out):
    return [sys.executable, "-m", "dinstyle", "image", str(inp), "-s", str(style), "-w", str(weights), "-o", str(out),
            "--style-size", "48"]


def test_sigkill_mid_batch_then_rerun_completes_identically(tmp_path, images, tiny_weights):
    for i in range(12):
        images(f"in/img{i:02d}.png", (320, 240), seed=i)
    style = images("style.png", (48, 48), seed=99)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ref = subprocess.run(_cmd(tmp_path / "in", style, tiny_weights, tmp_path / "ref"), env=env, capture_output=True,
                         timeout=300)
    assert ref.returncode == 0, ref.stderr
    out = tmp_path / "out"
    p = subprocess.Popen(_cmd(tmp_path / "in", style, tiny_weights, out), env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("img*.png"))) < 3:
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    partial = sorted(f.name for f in out.glob("img*.png"))
    assert 0 < len(partial) < 12, "the kill should land mid-batch"
    for f in partial:  # whatever exists after the kill is complete
        Image.open(out / f).load()
    again = subprocess.run(_cmd(tmp_path / "in", style, tiny_weights, out), env=env, capture_output=True, timeout=300)
    assert again.returncode == 0, again.stderr
    names = sorted(f.name for f in out.iterdir())
    assert names == sorted(f.name for f in (tmp_path / "ref").iterdir())  # nothing duplicated, no temp files
    for n in names:
        assert np.array_equal(np.asarray(Image.open(out / n)), np.asarray(Image.open(tmp_path / "ref" / n))), n


MODES = ["RGB", "L", "RGBA", "LA", "P", "I;16", "CMYK", "1"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(w=hs.integers(1, 70), h=hs.integers(1, 70), mode=hs.sampled_from(MODES),
       strength=hs.floats(0, 3), batch=hs.integers(1, 3), fmt=hs.sampled_from([None, "png", "jpg", "webp"]))
def test_property_any_image_any_options(tmp_path_factory, tiny_weights, w, h, mode, strength, batch, fmt):
    d = tmp_path_factory.mktemp("prop")
    rng = np.random.default_rng(w * 100 + h)
    im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)
    src = d / ("in.tif" if mode == "CMYK" else "in.png")
    im.save(src)
    st = _stylizer(tiny_weights)
    style = _style(st, tmp_path_factory)
    from dinstyle.batch import run_images

    summary = run_images(st, [str(src)], style, out=d / "out", strength=strength, batch_size=batch, fmt=fmt)
    assert summary.failed == 0 and summary.done == 1
    out = Image.open(summary.events[0].output)
    assert out.size == (w, h)


_cache: dict = {}


def _stylizer(weights):
    from dinstyle.engine import Stylizer

    if "st" not in _cache:
        _cache["st"] = Stylizer(weights=weights, device="cpu")
    return _cache["st"]


def _style(st, factory):
    if "style" not in _cache:
        p = factory.mktemp("style") / "s.png"
        Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(p)
        _cache["style"] = st.load_style([p], style_size=40)
    return _cache["style"]


def _run(*args):
    from typer.testing import CliRunner

    from dinstyle.cli import app

    return CliRunner().invoke(app, [str(a) for a in args])


def test_pack_of_another_version_is_refused(tmp_path, images, tiny_weights):
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open

    from dinstyle.engine import Stylizer

    st = Stylizer(weights=tiny_weights, device="cpu")
    path = st.make_pack(images("s.png", (32, 32)), style_size=32).save(tmp_path / "p.dinpack")
    with safe_open(str(path), "pt") as f:
        meta = dict(f.metadata())
    meta["version"] = "99"
    save_file(load_file(str(path)), str(tmp_path / "v99.dinpack"), metadata=meta)
    r = _run("image", images("c.png"), "-s", tmp_path / "v99.dinpack", "-w", tiny_weights, "-o", tmp_path / "o.png")
    assert r.exit_code == 2 and "version 99" in r.stderr and not (tmp_path / "o.png").exists()


def test_disk_full_leaves_no_partial_file(tmp_path, images, tiny_weights, monkeypatch):
    import errno

    from PIL import Image as PILImage

    content, style = images("c.png"), images("s.png", (32, 32))
    real_save = PILImage.Image.save

    def full(self, fp, *a, **kw):
        real_save(self, fp, *a, **kw)  # bytes reach the temp file, then the disk "fills up"
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PILImage.Image, "save", full)
    r = _run("image", content, "-s", style, "-w", tiny_weights, "-o", tmp_path / "out", "--style-size", "32")
    assert r.exit_code == 2 and "No space left" in r.stderr
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_missing_or_broken_weights_folder(tmp_path, images):
    r = _run("image", images("c.png"), "-s", images("s.png", (32, 32)), "-w", tmp_path / "nowhere", "-o", tmp_path / "o.png")
    assert r.exit_code == 2 and "config.json" in r.stderr
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "config.json").write_text("{not json")
    r = _run("info", "-w", tmp_path / "w")
    assert r.exit_code == 2 and "not valid JSON" in r.stderr


def test_zero_frame_video(tmp_path, images, tiny_weights):
    import imageio_ffmpeg

    src = tmp_path / "zero.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "color=c=black:s=32x32:r=10:d=1", "-frames:v", "0", "-c:v", "libx264", str(src)], check=True)
    r = _run("video", src, "-s", images("s.png", (32, 32)), "-w", tiny_weights, "-o", tmp_path / "o.mp4")
    assert r.exit_code == 2 and "zero.mp4" in r.stderr
    assert not (tmp_path / "o.mp4").exists() and not list(tmp_path.glob(".o.mp4*"))


def test_tiny_images_work(tmp_path, images, tiny_weights):
    for size in ((1, 1), (2, 2), (1, 50)):
        r = _run("image", images(f"t{size}.png", size), "-s", images("s.png", (32, 32)), "-w", tiny_weights,
                 "-o", tmp_path / f"o{size[0]}x{size[1]}.png", "--style-size", "32")
        assert r.exit_code == 0, r.output
        assert Image.open(tmp_path / f"o{size[0]}x{size[1]}.png").size == size


def test_ctrl_c_mid_batch_prints_a_summary_and_exits_130(tmp_path, images, tiny_weights):
    for i in range(12):
        images(f"in/img{i:02d}.png", (320, 240), seed=i)
    style = images("style.png", (48, 48), seed=99)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = tmp_path / "out"
    # a suite started as a background job inherits SIGINT ignored, and Python then keeps it ignored:
    # the child gets the default disposition back, as a command typed in a terminal has
    p = subprocess.Popen(_cmd(tmp_path / "in", style, tiny_weights, out), env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and len(list(out.glob("img*.png"))) < 2:
        time.sleep(0.02)
    p.send_signal(signal.SIGINT)
    _, stderr = p.communicate(timeout=60)
    assert p.returncode == 130, stderr
    assert "interrupted:" in stderr and "written" in stderr and "run the same command again" in stderr
    assert "Traceback" not in stderr
    written = sorted(out.glob("img*.png"))
    assert 0 < len(written) < 12
    for f in written:
        Image.open(f).load()
    assert not list(out.glob(".*"))  # no temp file left behind
