"""End-to-end video benchmark (decode -> stylize -> encode) and temporal stability table.

    python benchmarks/bench_video.py [--weights DIR] [--out benchmarks/results_video.md]

1. fps end to end for synthetic 640x360 and 1080p clips (moving gradient + noise, no audio) on the
   chosen device, with the shipped weights and a style pack;
2. warping error / flicker of --stats frame vs --stats sequence on the real clips in
   ../shared/data/video (and the bundled example), measured by `dinstyle eval-video`'s metric.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import imageio_ffmpeg
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks.common import emit  # noqa: E402


def synthetic_clip(path: Path, w: int, h: int, n: int, fps: int = 30) -> Path:
    gen = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=1, ffmpeg_log_level="error")
    gen.send(None)
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 40, (h, w, 1), dtype=np.uint8)
    for i in range(n):
        frame = np.stack([(xx + 4 * i) % 256, (yy + 2 * i) % 256, ((xx + yy) // 4) % 256], -1).astype(np.uint8)
        gen.send(np.ascontiguousarray(frame // 2 + noise))
    gen.close()
    return path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--style", default=str(ROOT / "examples" / "painting_vangogh_starry_night.jpg"))
    ap.add_argument("--out", default=None)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--palette", type=float, default=None, help="palette transfer amount (default: the tool's)")
    a = ap.parse_args()

    from dinstyle.engine import Stylizer
    from dinstyle.frames import stylize_video
    from dinstyle.io.video import read_video
    from dinstyle.metrics import warping_error
    from dinstyle.timing import machine_name

    st = Stylizer(weights=a.weights, device=a.device)
    style = st.load_style([a.style])
    tmp = Path(tempfile.mkdtemp())
    kw = {} if a.palette is None else {"palette": a.palette}
    lines = [f"Machine: {machine_name(st.device)}; model {st.model_id}; style {Path(a.style).name}"
             + ("" if a.palette is None else f"; --palette {a.palette:g}"), "",
             "| clip | frames | end-to-end frames/s |", "|---|---|---|"]
    for name, (w, h, n) in {"640x360": (640, 360, a.frames), "1080p": (1920, 1080, max(10, a.frames // 3))}.items():
        src = synthetic_clip(tmp / f"{name}.mp4", w, h, n)
        stylize_video(st, src, style, tmp / f"{name}_out.mp4", **kw)  # warm-up run (allocator, kernels)
        rec = stylize_video(st, src, style, tmp / f"{name}_out.mp4", **kw)
        lines.append(f"| synthetic {name} | {rec['frames']} | {rec['frames_per_second']:.1f} |")
    clips = sorted((ROOT.parent / "shared" / "data" / "video").glob("*.mp4")) + [ROOT / "examples" / "video_big_buck_bunny.mp4"]
    lines += ["", "| clip | stats | warping error (lower is steadier) | flicker (output minus input luma change) |",
              "|---|---|---|---|"]
    for clip in clips:
        if not clip.exists():
            continue
        for mode in ("frame", "sequence"):
            out = tmp / f"{clip.stem}_{mode}.mp4"
            stylize_video(st, clip, style, out, stats=mode, crf=12, **kw)
            res = warping_error(read_video(clip)[1], read_video(out)[1])
            lines.append(f"| {clip.name} | {mode} | {res['warping_error']:.3f} | {res['flicker']:+.3f} |")
    emit(lines, a.out)


if __name__ == "__main__":
    main()
