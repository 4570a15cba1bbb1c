import math
import struct
import subprocess
import wave
from fractions import Fraction

import imageio_ffmpeg
import numpy as np
import pytest
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.io.video import exact_fps, has_audio, probe_frames, read_video
from dinstyle.metrics import warping_error

runner = CliRunner()
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


def _frames(n, w, h, seed=0, moving=True):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h, w * 2, 3), dtype=np.uint8)
    base = np.asarray(base, np.float32)
    for _ in range(2):  # smooth it a little so flow has something to track
        base = (base + np.roll(base, 1, 0) + np.roll(base, 1, 1)) / 3
    base = base.astype(np.uint8)
    for i in range(n):
        x = i % w if moving else 0
        yield np.ascontiguousarray(base[:, x:x + w])


def _wav(path, seconds, rate=22050):
    with wave.open(str(path), "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * t / rate)))
                               for t in range(int(seconds * rate))))
    return path


def make_clip(path, n=12, size=(64, 48), fps=24, audio=None, pix_fmt="yuv420p"):
    w, h = size
    kw = {"audio_path": str(audio), "audio_codec": "aac"} if audio else {}
    gen = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=1, pix_fmt_out=pix_fmt,
                                      ffmpeg_log_level="error", **kw)
    gen.send(None)
    for fr in _frames(n, w, h):
        gen.send(fr)
    gen.close()
    return path


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def style(images):
    return images("style.png", (48, 48), seed=7)


def test_exact_fps():
    assert exact_fps(29.97) == Fraction(30000, 1001)
    assert exact_fps(23.98) == Fraction(24000, 1001)
    assert exact_fps(25.0) == 25


def test_video_keeps_frames_fps_duration_and_audio(tmp_path, style, tiny_weights):
    src = make_clip(tmp_path / "a.mp4", n=24, fps=24, audio=_wav(tmp_path / "s.wav", 1.0))
    assert has_audio(src)
    r = run("video", src, "-s", style, "-w", tiny_weights, "-o", tmp_path / "out.mp4", "--json", "--style-size", "48")
    assert r.exit_code == 0, r.output
    out = tmp_path / "out.mp4"
    assert probe_frames(out)[0] == probe_frames(src)[0] == 24
    info, _ = read_video(out)
    assert info.fps == 24 and abs(info.duration - 1.0) < 0.1
    assert has_audio(out)


def test_odd_rate_and_odd_size_no_audio(tmp_path, style, tiny_weights):
    src = make_clip(tmp_path / "odd.mp4", n=10, size=(33, 25), fps=Fraction(30000, 1001), pix_fmt="yuv444p")
    r = run("video", src, "-s", style, "-w", tiny_weights, "-o", tmp_path / "o", "--style-size", "48",
            "--stats", "frame", "--batch-size", "3")
    assert r.exit_code == 0, r.output
    out = next((tmp_path / "o").glob("*.mp4"))
    info, frames = read_video(out)
    assert info.size == (34, 26) and info.fps == Fraction(30000, 1001)
    assert sum(1 for _ in frames) == 10
    assert not has_audio(out)


def test_streaming_memory_is_bounded(tmp_path, style, tiny_weights, monkeypatch):
    """Frames in flight never exceed the queue bounds, however long the video."""
    import dinstyle.io.video as iov
    import dinstyle.frames as vid
    from dinstyle.engine import Stylizer

    src = make_clip(tmp_path / "long.mp4", n=2, size=(32, 32))
    info, _ = read_video(src)
    counts = {"read": 0, "written": 0, "max_in_flight": 0}

    def fake_read(path, max_size=None):
        def gen():
            for i, fr in enumerate(_frames(300, 32, 32)):
                counts["read"] += 1
                counts["max_in_flight"] = max(counts["max_in_flight"], counts["read"] - counts["written"])
                yield iov.TimedFrame(fr, Fraction(i, 24), Fraction(1, 24))
        return info, gen()

    orig_write = iov.VideoWriter.write

    def write(self, frame, *args):
        counts["written"] += 1
        return orig_write(self, frame, *args)

    monkeypatch.setattr(vid, "read_timed_video", fake_read)
    monkeypatch.setattr(iov.VideoWriter, "write", write)
    st = Stylizer(weights=tiny_weights, device="cpu")
    rec = vid.stylize_video(st, src, st.load_style([style], style_size=48), tmp_path / "o.mp4", batch_size=4)
    assert rec["frames"] == counts["written"] == 300
    assert counts["max_in_flight"] <= 3 * (2 * 4 + 2) + 4


def test_warping_error_static_clip_is_zero_and_noise_ranks_worse(tiny_weights, style):
    from dinstyle.engine import StatsSmoother, Stylizer

    st = Stylizer(weights=tiny_weights, device="cpu")
    sty = st.load_style([style], style_size=48)
    static = list(_frames(6, 48, 32, moving=False))
    sm = StatsSmoother()
    outs = [st.stylize([f], sty, stats_hook=sm)[0] for f in static]
    assert warping_error(static, outs)["warping_error"] == 0.0
    moving = list(_frames(8, 48, 32))
    clean = [st.stylize([f], sty)[0] for f in moving]
    rng = np.random.default_rng(0)
    noisy = [np.clip(o.astype(int) + rng.integers(-40, 40, o.shape), 0, 255).astype(np.uint8) for o in clean]
    assert warping_error(moving, noisy)["warping_error"] > warping_error(moving, clean)["warping_error"] + 5


@pytest.mark.parametrize("case", ["missing", "text", "truncated", "audio_only", "folder_empty", "bad_stats", "bad_crf"])
def test_bad_video_inputs(tmp_path, style, tiny_weights, case):
    extra = []
    src = tmp_path / "in.mp4"
    if case == "text":
        src.write_text("not a video at all")
    elif case == "truncated":
        good = make_clip(tmp_path / "good.mp4", n=12).read_bytes()
        src.write_bytes(good[: len(good) // 3])
    elif case == "audio_only":
        wav = _wav(tmp_path / "a.wav", 0.5)
        subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-i", str(wav), "-c:a", "aac", str(src)], check=True)
    elif case == "folder_empty":
        src = tmp_path / "empty_dir"
        src.mkdir()
    elif case in ("bad_stats", "bad_crf"):
        make_clip(src, n=4)
        extra = ["--stats", "weird"] if case == "bad_stats" else ["--crf", "99"]
    out = tmp_path / "out"
    r = run("video", src, "-s", style, "-w", tiny_weights, "-o", out, "--style-size", "48", *extra)
    assert r.exit_code == 2, (case, r.output)
    assert "Traceback" not in r.output and "error" in r.stderr
    assert not out.exists() or not any(out.iterdir())
    assert not list(tmp_path.rglob(".*.mp4"))


def test_eval_video_cli(tmp_path):
    src = make_clip(tmp_path / "a.mp4", n=6)
    r = run("eval-video", src, src, "--json")
    assert r.exit_code == 0, r.output
    assert '"warping_error"' in r.stdout


def test_mask_video_moves_the_regions(tmp_path, tiny_weights, two_styles):
    """A mask video whose white half moves: the output follows it frame by frame."""
    src = make_clip(tmp_path / "in.mp4", n=6, size=(64, 48))
    gen = imageio_ffmpeg.write_frames(str(tmp_path / "mask.mp4"), (64, 48), fps=24, macro_block_size=1,
                                      ffmpeg_log_level="error")
    gen.send(None)
    for i in range(6):
        m = np.zeros((48, 64, 3), np.uint8)
        m[:, : 64 if i >= 3 else 0] = 255  # all first style for 3 frames, then all second
        gen.send(m)
    gen.close()
    r = run("video", src, "-s", tmp_path / "a.png", "-s", tmp_path / "b.png", "--mask", tmp_path / "mask.mp4",
            "-w", tiny_weights, "-o", tmp_path / "out.mp4", "--style-size", "48", "--stats", "frame", "--crf", "0")
    assert r.exit_code == 0, r.output
    frames = [f.astype(int) for f in read_video(tmp_path / "out.mp4")[1]]
    assert len(frames) == 6
    from dinstyle.engine import Stylizer

    st = Stylizer(weights=tiny_weights, device="cpu")
    sa, sb = (st.load_style([tmp_path / n], style_size=48) for n in ("a.png", "b.png"))
    for i, fr in enumerate(read_video(src)[1]):
        da = np.abs(frames[i] - st.stylize([fr], sa)[0]).mean()
        db = np.abs(frames[i] - st.stylize([fr], sb)[0]).mean()
        assert (da < db) if i < 3 else (db < da), (i, da, db)


def test_video_with_frames_over_the_size_limit_is_refused(tmp_path, style, tiny_weights, monkeypatch):
    import dinstyle.io.video as vio

    src = make_clip(tmp_path / "big.mp4", n=4, size=(64, 48))
    monkeypatch.setattr(vio, "MAX_VIDEO_PIXELS", 64 * 48 - 1)  # as if the clip declared 9000x9000 frames
    r = run("video", src, "-s", style, "-w", tiny_weights, "-o", tmp_path / "out", "--style-size", "48")
    assert r.exit_code == 2 and "too large (use --max-size)" in r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    r = run("video", src, "-s", style, "-w", tiny_weights, "-o", tmp_path / "out", "--style-size", "48",
            "--max-size", "32")  # the way out the message names
    assert r.exit_code == 0, r.output
