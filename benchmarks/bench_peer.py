"""Our content path against the closest published peer (MicroAST), timed in one process, interleaved.

    python benchmarks/bench_peer.py --teacher ../shared/teacher --out benchmarks/results_peer_cpu.md

The peer's code and released weights are the distillation teacher in ``shared/teacher`` (a
benchmark/training tool only; the package never imports it). For each size the two are timed
alternately (one call of each per round, ``--repeats`` rounds after a warm-up), so a noisy machine
slows both alike; the figure is the median. Ours: ``Stylizer.stylize`` on a style loaded once (the
content path as the tool runs it, 64-px margin included). The peer: its whole forward (it has no
separate content path; its style encoder is a small CNN of the same family as its content encoder).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"512x512": (512, 512), "1080p": (1920, 1080), "4K": (3840, 2160)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, default=ROOT.parent / "shared" / "teacher")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--sizes", default="512x512,1080p")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()
    from dinstyle.engine import Stylizer
    from dinstyle.runtime import cpu_name

    sys.path.insert(0, str(a.teacher))
    import render  # the teacher folder's loader (its network code and released weights)

    peer = render.load_teacher()
    st = Stylizer(weights=a.weights)
    style_path = ROOT / "examples" / "painting_vangogh_starry_night.jpg"
    style = st.load_style([style_path])
    from dinstyle.io.images import fit_size, read_image, resize_rgb

    srgb = read_image(style_path).rgb
    srgb = resize_rgb(srgb, fit_size(srgb.shape[1], srgb.shape[0], 256))
    s_t = torch.from_numpy(np.ascontiguousarray(srgb)).permute(2, 0, 1)[None].float() / 255
    rng = np.random.default_rng(0)
    rows = []
    for name in a.sizes.split(","):
        w, h = SIZES[name]
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        c_t = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255

        def ours():
            st.stylize([img], style)

        def theirs():
            with torch.inference_mode():
                peer(c_t, s_t)

        ours(), theirs()  # warm-up
        t_ours, t_peer = [], []
        for _ in range(a.repeats):
            for fn, acc in ((ours, t_ours), (theirs, t_peer)):
                t0 = time.perf_counter()
                fn()
                acc.append(time.perf_counter() - t0)
        mo, mp = statistics.median(t_ours), statistics.median(t_peer)
        rows.append((name, mo, mp))
        print(f"{name}: ours {mo:.3f} s, MicroAST {mp:.3f} s, {mp / mo:.1f}x", flush=True)
    lines = [f"Content path against MicroAST, interleaved in one process, median of {a.repeats} rounds; "
             f"{cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads, torch {torch.__version__}; "
             f"{time.strftime('%Y-%m-%d')}; model {st.model_id}, standard mode, fp32, batch 1", "",
             "| size | dinstyle content path s | MicroAST forward s | MicroAST / dinstyle |", "|---|---|---|---|"]
    lines += [f"| {n} | {mo:.3f} | {mp:.3f} | {mp / mo:.1f}x |" for n, mo, mp in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
