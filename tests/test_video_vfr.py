"""Variable-frame-rate video (issue 24): every source frame is stylized once and written at its
source timestamp, so frame count (exactly), duration and timing are kept, with or without audio,
on the streamed path, with sequence statistics, with a mask video; constant rate stays constant.

The clips are made here with ffmpeg: frames of a moving test pattern given uneven timestamps by
``setpts`` (a steady start, a long gap, a burst at 100 fps, a frozen frame held 1.44 s, short
uneven gaps), encoded with ``-fps_mode passthrough`` so every frame keeps its time.
"""
import json
import re
import subprocess
from fractions import Fraction

import imageio_ffmpeg
import numpy as np
import pytest
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.io.video import (Timing, VideoWriter, has_audio, measure_video, probe_frames, read_timed_video,
                               read_video)

runner = CliRunner()
FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()

# milliseconds: steady 25 fps, a 0.92 s gap, a burst at 100 fps, a frame frozen for 1.44 s, uneven short gaps
UNEVEN_MS = [0, 40, 80, 1000, 1010, 1020, 1030, 1040, 1050, 1060, 2500, 2520, 2533, 2600, 2640, 2680, 2720,
             2760, 2800, 3300]


def make_vfr_clip(path, pts_ms=UNEVEN_MS, size=(64, 48), audio=False, pattern="testsrc2"):
    """A clip whose frame i is shown at pts_ms[i] (the last lasts 10 ms); with ``audio``, an AAC sine
    as long as the video."""
    w, h = size
    expr = "+".join(f"eq(N,{i})*{t}" for i, t in enumerate(pts_ms))
    cmd = [FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", f"{pattern}=size={w}x{h}:rate=100"]
    if audio:
        cmd += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={pts_ms[-1] / 1000 + 0.01}"]
    cmd += ["-vf", f"settb=1/1000,setpts='({expr})/1000/TB'", "-frames:v", str(len(pts_ms)),
            "-fps_mode", "passthrough", "-enc_time_base", "1/1000", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    cmd += ["-c:a", "aac", "-map", "0:v", "-map", "1:a"] if audio else []
    subprocess.run(cmd + [str(path)], check=True, timeout=120)
    return path


def timestamps(path) -> list[float]:
    _, frames = read_timed_video(path)
    try:
        return [float(fr.pts) for fr in frames]
    finally:
        frames.close()


def ffmpeg_listing(path) -> tuple[list[float], float]:
    """(every video packet's presentation timestamp, sorted; the container's duration) as ffmpeg's
    demuxer lists them (``-c copy -f framecrc``; the ``Duration:`` of its header): figures
    independent of our decoder's."""
    r = subprocess.run([FFMPEG, "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0",
                        "-c", "copy", "-f", "framecrc", "-"],
                       capture_output=True, text=True, timeout=120, check=True)
    tb = Fraction(re.search(r"#tb 0: (\d+/\d+)", r.stdout)[1])
    pts = sorted(float(int(line.split(",")[2]) * tb) for line in r.stdout.splitlines() if line.startswith("0,"))
    m = re.search(r"Duration: (\d+):(\d+):([\d.]+)", r.stderr)
    return pts, int(m[1]) * 3600 + int(m[2]) * 60 + float(m[3])


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def style(images):
    return images("style.png", (48, 48), seed=7)


def assert_same_timing(src, out):
    """Frame count exactly, duration within one frame, every frame at its source timestamp (within a
    millisecond): by our decoder, and by ffmpeg's demuxer (packet count and timestamps); the output's
    header declares the duration it plays. (The generated inputs' own headers can be off: x264 packet
    durations there are those of the 100 fps source, so the input is measured by its frames.)"""
    t_in, t_out = measure_video(src), measure_video(out)
    assert t_out.frames == t_in.frames, (t_in, t_out)
    frame = 1 / 25
    assert abs(t_out.seconds - t_in.seconds) <= frame, (t_in.seconds, t_out.seconds)
    assert probe_frames(out)[0] == probe_frames(src)[0] == t_in.frames  # imageio-ffmpeg's packet count
    (pts_in, _), (pts_out, declared) = ffmpeg_listing(src), ffmpeg_listing(out)
    assert len(pts_out) == len(pts_in) == t_in.frames and np.allclose(pts_out, pts_in, atol=0.001)
    assert abs(declared - t_out.seconds) <= frame, (declared, t_out.seconds)  # the file says how long it plays
    ts_in, ts_out = timestamps(src), timestamps(out)
    assert np.allclose(ts_out, ts_in, atol=0.001), (ts_in, ts_out)
    return t_in, t_out


def test_the_test_clip_is_strongly_variable(tmp_path):
    src = make_vfr_clip(tmp_path / "vfr.mp4")
    t = measure_video(src)
    assert t.frames == len(UNEVEN_MS) and t.variable
    assert np.allclose(timestamps(src), np.array(UNEVEN_MS) / 1000, atol=0.001)
    assert t.min_gap == Fraction(1, 100) and t.max_gap == Fraction(144, 100)


@pytest.mark.parametrize("audio", [False, True])
def test_vfr_video_keeps_every_frame_at_its_time(tmp_path, style, tiny_weights, audio):
    src = make_vfr_clip(tmp_path / "vfr.mp4", audio=audio)
    assert has_audio(src) == audio
    out = tmp_path / "out.mp4"
    r = run("video", src, "-s", style, "-w", tiny_weights, "-o", out, "--style-size", "48")
    assert r.exit_code == 0, r.output
    t_in, t_out = assert_same_timing(src, out)
    assert t_out.variable
    assert has_audio(out) == audio
    line = r.stderr.strip().splitlines()[-1]
    assert f"{len(UNEVEN_MS)} frames over" in line and "variable frame rate" in line, line
    assert "every frame kept at its source timestamp" in line
    assert ("audio copied" if audio else "no audio") in line


def test_vfr_json_record_frame_stats_and_batches(tmp_path, style, tiny_weights):
    """--stats frame with odd batches (3 does not divide 20), and an odd frame size (padded)."""
    src = make_vfr_clip(tmp_path / "vfr.mp4", size=(66, 50))
    out = tmp_path / "o"
    r = run("video", src, "-s", style, "-w", tiny_weights, "-o", out, "--style-size", "48", "--stats", "frame",
            "--batch-size", "3", "--max-size", "33", "--json")
    assert r.exit_code == 0, r.output
    rec = [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")][0]
    assert rec["frames"] == len(UNEVEN_MS) and rec["vfr"] is True
    assert abs(rec["duration"] - 3.31) < 0.04 and rec["size"] == [34, 26]
    assert_same_timing(src, next(out.glob("*.mp4")))


def test_vfr_sequence_stats_streamed_in_library(tmp_path, tiny_weights, style):
    """The library path with sequence statistics (the default) and automatic batches."""
    from dinstyle.engine import Stylizer
    from dinstyle.frames import stylize_video

    src = make_vfr_clip(tmp_path / "vfr.mp4", audio=True)
    st = Stylizer(weights=tiny_weights, device="cpu")
    events = []
    rec = stylize_video(st, src, st.load_style([style], style_size=48), tmp_path / "o.mp4", stats="sequence",
                        batch_size=0, on_event=events.append)
    assert rec["frames"] == len(UNEVEN_MS) and rec["vfr"] and rec["audio"] and rec["stats"] == "sequence"
    assert events and events[-1].step == len(UNEVEN_MS)
    assert_same_timing(src, tmp_path / "o.mp4")


def test_vfr_mask_video_pairs_frame_by_frame(tmp_path, tiny_weights, two_styles):
    """A mask video with the same uneven timing: each frame takes its own mask (all first style for the
    first 10 frames, then all second), and nothing is duplicated or dropped on either side."""
    src = make_vfr_clip(tmp_path / "in.mp4")
    mask = tmp_path / "mask.mp4"
    expr = "+".join(f"eq(N,{i})*{t}" for i, t in enumerate(UNEVEN_MS))
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=white:size=64x48:rate=100",
                    "-vf", f"geq=lum='if(gte(N,10),255,0)':cb=128:cr=128,settb=1/1000,"
                           f"setpts='({expr})/1000/TB'", "-frames:v", str(len(UNEVEN_MS)), "-fps_mode", "passthrough",
                    "-enc_time_base", "1/1000", "-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv420p", str(mask)],
                   check=True, timeout=120)
    assert measure_video(mask).frames == len(UNEVEN_MS)
    out = tmp_path / "out.mp4"
    r = run("video", src, "-s", tmp_path / "a.png", "-s", tmp_path / "b.png", "--mask", mask, "-w", tiny_weights,
            "-o", out, "--style-size", "48", "--stats", "frame", "--crf", "0")
    assert r.exit_code == 0, r.output
    assert_same_timing(src, out)
    from dinstyle.engine import Stylizer

    st = Stylizer(weights=tiny_weights, device="cpu")
    sa, sb = (st.load_style([tmp_path / n], style_size=48) for n in ("a.png", "b.png"))
    outs = [f.astype(int) for f in read_video(out)[1]]
    for i, fr in enumerate(read_video(src)[1]):
        da = np.abs(outs[i] - st.stylize([fr], sa)[0]).mean()
        db = np.abs(outs[i] - st.stylize([fr], sb)[0]).mean()
        assert (da < db) if i < 10 else (db < da), (i, da, db)


def test_eval_video_scores_a_vfr_pair(tmp_path, style, tiny_weights):
    src = make_vfr_clip(tmp_path / "vfr.mp4")
    out = tmp_path / "out.mp4"
    assert run("video", src, "-s", style, "-w", tiny_weights, "-o", out, "--style-size", "48").exit_code == 0
    r = run("eval-video", src, out, "--json")
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize("fps", [Fraction(30000, 1001), Fraction(25)])
def test_constant_rate_stays_constant(tmp_path, style, tiny_weights, fps):
    src = tmp_path / "cfr.mp4"
    subprocess.run([FFMPEG, "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    f"testsrc2=size=64x48:rate={fps.numerator}/{fps.denominator}", "-frames:v", "15",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src)], check=True, timeout=120)
    out = tmp_path / "out.mp4"
    r = run("video", src, "-s", style, "-w", tiny_weights, "-o", out, "--style-size", "48")
    assert r.exit_code == 0, r.output
    t_in, t_out = assert_same_timing(src, out)
    assert not t_in.variable and not t_out.variable
    assert t_out.min_gap == t_out.max_gap == 1 / fps  # exactly, every frame
    assert read_video(out)[0].fps == fps
    assert f"15 frames at {fps} fps" in r.stderr and "variable" not in r.stderr


def test_writer_keeps_colours_and_timestamps_it_is_given(tmp_path):
    """The Matroska stream the writer pipes to ffmpeg: RGB order, exact timestamps (two frames at one
    time both kept, the later a tick on), the last frame's own duration."""
    out = tmp_path / "w.mkv"
    colours = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]
    times = [Fraction(0), Fraction(7, 10), Fraction(7, 10), Fraction(3, 4)]
    with VideoWriter(out, (16, 16), Fraction(25), time_base=Fraction(1, 1000), codec="ffv1") as w:
        for c, t in zip(colours, times):
            w.write(np.full((16, 16, 3), c, np.uint8), t, Fraction(1, 2))
    assert w.timing.frames == 4 and w.timing.end == Fraction(5, 4)
    got = [(fr.image[8, 8].tolist(), fr.pts) for fr in read_timed_video(out)[1]]
    assert [g[1] for g in got] == [0, Fraction(7, 10), Fraction(701, 1000), Fraction(3, 4)]
    for (rgb, _), c in zip(got, colours):
        assert np.abs(np.array(rgb) - c).max() <= 3, (rgb, c)


def test_timing_says_variable_only_beyond_rounding():
    t = Timing(tick=Fraction(1, 1000))
    for ms in (0, 33, 67, 100, 133, 167):  # 29.97 fps in milliseconds: 33/34 ms
        t.add(Fraction(ms, 1000), Fraction(33, 1000))
    assert not t.variable and t.frames == 6
    t.add(Fraction(300, 1000), Fraction(33, 1000))  # one frame missing: a 133 ms gap
    assert t.variable
