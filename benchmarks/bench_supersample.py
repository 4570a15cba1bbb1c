"""What `--supersample` costs (CPU, shipped weights, fp32, batch 1, the default finishing stages).

    python benchmarks/bench_supersample.py [--out benchmarks/results_supersample_cpu.md]

For each size, one photo (examples/photo_coffee.jpg, resized) is stylized through the engine with
each factor in turn, round after round, so the machine's noise falls on all alike; medians after a
warm-up. The network runs on the image enlarged by the factor (tiled above the automatic tiling
threshold), the finishing stages at the image's own size.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks.common import emit, example_setup  # noqa: E402
SIZES = {"512x512": (512, 512), "1080p": (1920, 1080), "4K": (3840, 2160)}
FACTORS = (1.0, 1.25, 1.5, 2.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--sizes", default=",".join(SIZES), help="comma-separated, of " + ", ".join(SIZES))
    ap.add_argument("--out", default=None, help="write a Markdown table here")
    a = ap.parse_args()

    import torch

    from dinstyle.io.images import resize_rgb
    from dinstyle.timing import machine_name

    st, style, photo = example_setup(a.weights)
    rows = []
    for name in a.sizes.split(","):
        img = resize_rgb(photo, SIZES[name])
        times: dict[float, list[float]] = {f: [] for f in FACTORS}
        for f in FACTORS:
            st.stylize([img], style, supersample=f)  # warm-up
        for _ in range(a.repeats):
            for f in FACTORS:
                t0 = time.perf_counter()
                st.stylize([img], style, supersample=f)
                times[f].append(time.perf_counter() - t0)
        med = {f: statistics.median(v) for f, v in times.items()}
        rows.append((name, med))
        print(f"{name}: " + ", ".join(f"x{f:g} {s:.3f} s" for f, s in med.items()), file=sys.stderr)
    head = " | ".join(f"x{f:g} s" for f in FACTORS)
    lines = [f"Machine: {machine_name(st.device)}, torch {torch.__version__}; model {st.model_id}", "",
             f"| size | {head} | x1.5 / x1 |", "|---|" + "---|" * (len(FACTORS) + 1)]
    for name, med in rows:
        lines.append(f"| {name} | " + " | ".join(f"{med[f]:.3f}" for f in FACTORS) + f" | {med[1.5] / med[1.0]:.2f}x |")
    emit(lines, a.out)


if __name__ == "__main__":
    main()
