#!/usr/bin/env python3
"""Render a teacher's distillation targets on any device, from a data pack or from folders, laid
out for `dinstyle train --targets`:

    python scripts/teacher_targets.py --teacher ../shared/teacher --pack .gpu/train.pack \
        --out /tmp/distill --pairs 20000 --seed 1 --device cuda

    OUT/content/, OUT/style/   the pack's images under their own names (--pack only)
    OUT/targets/000123.png     the teacher's stylization of pair 123
    OUT/manifest.csv           target,content,style (paths relative to OUT)

The pairs are the teacher folder's own (its render.py: pair i a pure function of (seed, i) over the
sorted file names), so from the same folders this renders the same pairs as render.py does, on a
GPU in seconds instead of hours on a CPU: a one-shot GPU call can render 20 k+ fresh targets before
it trains. Every image is decoded once; each batch gathers its pairs. Targets are PNG (lossless);
existing ones are kept, so a rerun with a larger --pairs renders only the new ones.

A training tool only: the package never imports the teacher. Needs the teacher's folder (its code,
its released weights and render.py).
"""
from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from dinstyle.io.images import read_image, write_image
from dinstyle.runtime import resolve_device

EXTS = {".jpg", ".jpeg", ".png", ".webp"}  # render.py's listing (top level only), so the pairs are its own


def fail(message: str) -> None:
    """Bad input: one line on stderr, exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def load_render(folder: Path):
    """The teacher folder's render.py (its loader and its pair drawing)."""
    if not (folder / "render.py").is_file():
        fail(f"{folder}: no render.py (give the teacher's folder with --teacher)")
    sys.path.insert(0, str(folder))
    import render

    return render


def unpack(pack: Path, out: Path) -> tuple[list[Path], list[Path]]:
    """Write the pack's content and style images into OUT/content and OUT/style under their own
    names (the bytes as packed: Pillow reads them by content, and `train --targets` matches the
    styles to the run's style bank by file name)."""
    from dinstyle.errors import CheckpointError
    from dinstyle.train.datapack import read_data_pack

    try:
        groups = read_data_pack(pack)
    except CheckpointError as e:
        fail(str(e))
    lists = []
    for g in ("content", "style"):
        if g not in groups:
            fail(f"{pack}: no {g} images in the pack")
        (out / g).mkdir(parents=True, exist_ok=True)
        for blob, name in zip(*groups[g]):
            dest = out / g / name
            if not dest.exists() or dest.stat().st_size != len(blob):
                dest.write_bytes(blob)
        lists.append(sorted(out / g / n for n in groups[g][1]))
    return lists[0], lists[1]


def decode_all(paths: list[Path], threads: int) -> list[torch.Tensor]:
    """Each image once, as a (3, H, W) float tensor in [0, 1]."""
    def one(p: Path) -> torch.Tensor:
        return torch.from_numpy(read_image(p).rgb).permute(2, 0, 1).float().div_(255)

    with ThreadPoolExecutor(threads) as ex:
        return list(ex.map(one, paths))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "teacher")
    ap.add_argument("--pack", type=Path, help="a `dinstyle pack-data` file (its content and style groups)")
    ap.add_argument("--content", type=Path, help="folder of content images (instead of --pack)")
    ap.add_argument("--style", type=Path, help="folder of style images (instead of --pack)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--pairs", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="auto", help="auto (CUDA if present), cpu or cuda")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1), help="decode/encode threads")
    a = ap.parse_args()
    if (a.pack is None) == (a.content is None or a.style is None):
        fail("give --pack, or --content and --style")
    if a.pairs < 1 or a.batch < 1:
        fail("--pairs and --batch must be >= 1")
    device = resolve_device(a.device)
    render = load_render(a.teacher)
    if a.pack:
        contents, styles = unpack(a.pack, a.out)
    else:
        contents, styles = ([p for p in sorted(d.iterdir()) if p.suffix.lower() in EXTS] for d in (a.content, a.style))
    if not contents or not styles:
        fail("no content or no style images")
    (a.out / "targets").mkdir(parents=True, exist_ok=True)
    pairs = render.draw_pairs(contents, styles, a.pairs, a.seed)
    target = lambda i: a.out / "targets" / f"{i:06d}.png"  # noqa: E731
    todo = [p for p in pairs if not target(p[0]).exists()]

    t0 = time.perf_counter()
    used_c = sorted({ci for _, ci, _ in todo})
    used_s = sorted({si for _, _, si in todo})
    c_img = dict(zip(used_c, decode_all([contents[i] for i in used_c], a.threads)))
    s_img = dict(zip(used_s, decode_all([styles[i] for i in used_s], a.threads)))
    t_decode = time.perf_counter() - t0
    teacher = render.load_teacher().to(device)
    # batches of one size (the teacher takes any multiple of 4; a pack's images are all one size)
    by_size: dict[tuple, list] = {}
    for p in todo:
        by_size.setdefault((tuple(c_img[p[1]].shape), tuple(s_img[p[2]].shape)), []).append(p)
    writes = []
    with torch.inference_mode(), ThreadPoolExecutor(a.threads) as ex:
        for group in by_size.values():
            for k in range(0, len(group), a.batch):
                chunk = group[k:k + a.batch]
                c = torch.stack([c_img[ci] for _, ci, _ in chunk]).to(device)
                s = torch.stack([s_img[si] for _, _, si in chunk]).to(device)
                y = teacher(c, s).clamp(0, 1).mul(255).add(0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
                writes += [ex.submit(write_image, target(i), img) for (i, _, _), img in zip(chunk, y)]
        for w in writes:
            w.result()
    rel = lambda p: os.path.relpath(p, a.out)  # noqa: E731
    tmp = a.out / "manifest.csv.tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["target", "content", "style"])
        for i, ci, si in pairs:
            w.writerow([rel(target(i)), rel(contents[ci]), rel(styles[si])])
    os.replace(tmp, a.out / "manifest.csv")
    dt = time.perf_counter() - t0
    print(f"teacher_targets: {len(pairs)} pairs in {a.out / 'manifest.csv'} ({len(todo)} rendered now on {device}, "
          f"{dt:.1f} s: decode {t_decode:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
