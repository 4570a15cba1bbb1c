#!/usr/bin/env python3
"""Render a reference method (the MicroAST teacher in ../shared/teacher) on the dev set, laid out
for `dinstyle eval --outputs`, so every eval figure can have the teacher beside it:

    python scripts/teacher_eval.py --teacher ../shared/teacher --out runs/teacher-eval
    dinstyle eval --content ../shared/data/eval/content --style ../shared/data/eval/style \
        --max-pairs 96 --outputs runs/teacher-eval

Contents and styles are prepared exactly as `dinstyle eval` prepares them for our model (contents
at long side --size, styles at long side --style-size, the same resizing code), and only the pairs
that `--max-pairs` selects are rendered. The teacher's network needs sides that are multiples of 4:
contents are reflect-padded to that and the output cropped back. A training/eval tool only: the
package never imports the teacher. Needs the teacher's folder (its code and released weights).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from dinstyle.config import STYLIZE, TOOLS
from dinstyle.io.images import fit_size, list_images, read_image, resize_rgb, write_image


def load_teacher(folder: Path):
    sys.path.insert(0, str(folder))
    import render  # the teacher folder's own loader (net_microAST + released weights)

    return render.load_teacher()


def pairs_of(contents: list[Path], styles: list[Path], max_pairs: int | None) -> list[tuple[Path, Path]]:
    """The pairs `dinstyle eval` scores, in its order and subset."""
    pairs = [(c, s) for s in styles for c in contents]
    if max_pairs:
        pairs = pairs[:: max(1, len(pairs) // max_pairs)][:max_pairs]
    return pairs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "teacher")
    ap.add_argument("--content", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/eval/content")
    ap.add_argument("--style", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/eval/style")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=TOOLS.eval_size)
    ap.add_argument("--style-size", type=int, default=STYLIZE.style_size)
    ap.add_argument("--max-pairs", type=int, default=96)
    a = ap.parse_args()
    teacher = load_teacher(a.teacher)
    contents, styles = list_images(a.content), list_images(a.style)
    done = 0
    for cpath, spath in pairs_of(contents, styles, a.max_pairs):
        dest = a.out / spath.stem / f"{cpath.stem}.png"
        if dest.exists():
            continue
        c = read_image(cpath).rgb
        c = resize_rgb(c, fit_size(c.shape[1], c.shape[0], a.size))
        s = read_image(spath).rgb
        s = resize_rgb(s, fit_size(s.shape[1], s.shape[0], a.style_size))
        h, w = c.shape[:2]
        ct = torch.from_numpy(np.ascontiguousarray(c)).permute(2, 0, 1)[None].float() / 255
        st = torch.from_numpy(np.ascontiguousarray(s)).permute(2, 0, 1)[None].float() / 255
        ct = torch.nn.functional.pad(ct, (0, -w % 4, 0, -h % 4), mode="reflect")
        with torch.inference_mode():
            y = teacher(ct, st).clamp(0, 1)[0, :, :h, :w]
        dest.parent.mkdir(parents=True, exist_ok=True)
        write_image(dest, (y.permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
        done += 1
    print(f"{done} outputs rendered into {a.out}")


if __name__ == "__main__":
    main()
