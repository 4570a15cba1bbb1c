"""What the finishing stages (tone guidance, then the palette transfer) cost on top of the content
path (CPU, shipped weights, fp32, batch 1).

    python benchmarks/bench_palette.py [--out benchmarks/results_palette_cpu.md]

For each size, one photo (examples/photo_coffee.jpg, resized) is stylized with --palette 0 --tone 0
(the network alone) and with the defaults (the network, tone guidance, the transfer) alternately,
and each stage alone (tone guidance; palette fit; palette lookup) is timed on the network's output;
medians after a warm-up.
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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=None, help="write a Markdown table here")
    a = ap.parse_args()

    import torch

    from dinstyle.config import STYLIZE
    from dinstyle.io.images import resize_rgb
    from dinstyle.palette import PaletteMap
    from dinstyle.timing import machine_name
    from dinstyle.tone import guide_tone

    st, style, photo = example_setup(a.weights)
    rows = []
    for name, size in SIZES.items():
        img = resize_rgb(photo, size)
        tile = None
        st.stylize([img], style, palette=0.0, tone=0.0, tile=tile)  # warm-up
        net, both, tone, fit, look = [], [], [], [], []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            raw = st.stylize([img], style, palette=0.0, tone=0.0, tile=tile)[0]
            t1 = time.perf_counter()
            st.stylize([img], style, tile=tile)
            t2 = time.perf_counter()
            guided = guide_tone(raw, img, STYLIZE.tone)
            t3 = time.perf_counter()
            m = PaletteMap.fit(guided, style.palette)
            t4 = time.perf_counter()
            m.apply(guided)
            t5 = time.perf_counter()
            for acc, dt in zip((net, both, tone, fit, look), (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                acc.append(dt)
        med = statistics.median
        rows.append((name, med(net), med(both), med(tone), med(fit), med(look)))
        print(f"{name}: network {med(net):.4f} s, with the finishing stages {med(both):.4f} s "
              f"(tone {med(tone):.4f} s, fit {med(fit):.4f} s, lookup {med(look):.4f} s)", file=sys.stderr)
    lines = [f"Machine: {machine_name(st.device)}, torch {torch.__version__}; model {st.model_id}",
             "", "| size | network s | network + tone + palette s | tone guidance s | palette fit s "
             "| palette lookup s | added |",
             "|---|---|---|---|---|---|---|"]
    for name, n, b, tn, f, lk in rows:
        lines.append(f"| {name} | {n:.4f} | {b:.4f} | {tn:.4f} | {f:.4f} | {lk:.4f} | {100 * (b - n) / n:+.0f} % |")
    emit(lines, a.out)


if __name__ == "__main__":
    main()
