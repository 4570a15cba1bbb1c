"""Distillation: a teacher's stylizations of (content, style) pairs as regression targets.

A target folder holds ``manifest.csv`` (``target,content,style``, paths relative to the manifest)
and the images it names, e.g. as written by a teacher's render script. Each training pair is the
student's output for (content, style) against the teacher's output for the same pair; this costs
one pass of the student and no VGG pass, so a CPU sees many more pairs per hour than with the
perceptual losses alone.

The terms: ``distill_loss``, pixel L1 plus L1 of the horizontal and vertical differences at full,
1/2 and 1/4 resolution (the differences carry what a pixel L1 blurs away, the teacher's strokes and
edges; the coarser scales carry the larger marks); and ``feature_distill_loss``, the MSE of the
VGG maps at relu1_1..relu3_1 of the output against the teacher's, each tap balanced as the
perceptual losses are. A pixel L1 rewards a student that cannot yet place the teacher's marks for
a cautious, photo-like average; the feature term rewards marks of the right kind near the right
place, at the cost of one VGG pass on the target (the output's maps are shared with the style loss).

Content and target are cropped and flipped together at the target's own scale (zoom 1: a zoomed
target would not be what the teacher paints on a zoomed photo); the style is seen whole as in the
rest of training.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from dinstyle.errors import InputError
from dinstyle.model.losses import content_loss
from dinstyle.train.data import ImageBank

MANIFEST = "manifest.csv"
GRAD_SCALES = 3  # difference terms at 1, 1/2 and 1/4 resolution
FEATURE_TAPS = ("relu1_1", "relu2_1", "relu3_1")  # texture and structure; relu4_1 is the content term's


def distill_loss(out: Tensor, target: Tensor, grad_weight: float = 1.0) -> Tensor:
    """L1 of the pixels plus ``grad_weight`` x L1 of the x/y differences at ``GRAD_SCALES``
    scales, per sample -> (N,). ``out`` and ``target`` are (N, 3, H, W) in [0, 1]."""
    o, t = out.float(), target.float()
    total = (o - t).abs().mean((1, 2, 3))
    for s in range(GRAD_SCALES):
        if s:
            o, t = F.avg_pool2d(o, 2), F.avg_pool2d(t, 2)
        for dim in (-1, -2):
            total = total + grad_weight * (o.diff(dim=dim) - t.diff(dim=dim)).abs().mean((1, 2, 3))
    return total


def feature_distill_loss(out_feats: dict[str, Tensor], target_feats: dict[str, Tensor],
                         taps: tuple[str, ...] = FEATURE_TAPS) -> Tensor:
    """MSE of the VGG maps of the output against the teacher's target at ``taps``, each divided by
    the tap's squared mean activation (as the content loss), summed over taps, per sample -> (N,)."""
    return sum(content_loss(out_feats, target_feats, tap=t) for t in taps)


@dataclass
class Pairs:
    """The pairs of one or more target folders: image files and, per pair, what to read."""

    targets: list[Path]
    contents: list[Path]  # unique content files
    styles: list[Path]  # unique style files
    content_idx: np.ndarray  # (P,) into contents
    style_idx: np.ndarray  # (P,) into styles

    def __len__(self) -> int:
        return len(self.targets)


def read_manifests(folders: list[str | Path]) -> Pairs:
    """Read the manifests of ``folders`` (each a folder holding ``manifest.csv``, or the file
    itself). Every named file must exist; errors name the manifest and the line."""
    targets, contents, styles = [], {}, {}
    c_idx, s_idx = [], []
    for folder in folders:
        path = Path(folder)
        manifest = path / MANIFEST if path.is_dir() else path
        if not manifest.is_file():
            raise InputError(f"{folder}: no {MANIFEST} (a targets folder holds manifest.csv: target,content,style)")
        root = manifest.parent
        with open(manifest, newline="") as f:
            rows = list(csv.reader(f))
        if not rows or [h.strip() for h in rows[0]] != ["target", "content", "style"]:
            raise InputError(f"{manifest}: the first line must be target,content,style")
        for n, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            if len(row) != 3:
                raise InputError(f"{manifest}:{n}: expected 3 fields (target,content,style), got {len(row)}")
            t, c, s = (root / x.strip() for x in row)
            for p in (t, c, s):
                if not p.is_file():
                    raise InputError(f"{manifest}:{n}: {p} is not a file")
            targets.append(t)
            c_idx.append(contents.setdefault(c.resolve(), len(contents)))
            s_idx.append(styles.setdefault(s.resolve(), len(styles)))
    if not targets:
        raise InputError(f"{', '.join(map(str, folders))}: the manifests list no pairs")
    return Pairs(targets, list(contents), list(styles), np.asarray(c_idx, np.int64), np.asarray(s_idx, np.int64))


class TargetSet:
    """Decoded pairs: the content and target images as uint8 banks, and for each pair the index of
    its style in the run's style bank (styles the bank lacks are appended to it)."""

    def __init__(self, contents: ImageBank, targets: ImageBank, content_idx: Tensor, style_idx: Tensor):
        self.contents, self.targets = contents, targets
        self.content_idx, self.style_idx = content_idx, style_idx

    @classmethod
    def load(cls, folders: list[str | Path], style_bank: ImageBank, size: int, threads: int = 2
             ) -> tuple["TargetSet", ImageBank]:
        """Decode the pairs of ``folders`` at ``size`` x ``size``; returns the set and the style bank
        (``style_bank`` itself, or it with the pairs' other styles appended). Styles are matched to
        the bank by file name."""
        pairs = read_manifests(folders)
        by_name = {n: i for i, n in enumerate(style_bank.names)}
        missing = [p for p in pairs.styles if p.name not in by_name]
        if missing:
            extra = ImageBank.decode(missing, style_bank.size, [p.name for p in missing], threads)
            style_bank = ImageBank(torch.cat([style_bank.images, extra.images.to(style_bank.images.device)]),
                                   style_bank.names + extra.names)
            by_name = {n: i for i, n in enumerate(style_bank.names)}
        style_of = np.asarray([by_name[p.name] for p in pairs.styles], np.int64)
        contents = ImageBank.decode(pairs.contents, size, [p.name for p in pairs.contents], threads)
        targets = ImageBank.decode(pairs.targets, size, [p.name for p in pairs.targets], threads)
        return cls(contents, targets, torch.from_numpy(pairs.content_idx),
                   torch.from_numpy(style_of[pairs.style_idx])), style_bank

    def __len__(self) -> int:
        return len(self.targets)

    def to(self, device: torch.device) -> "TargetSet":
        return TargetSet(self.contents.to(device), self.targets.to(device), self.content_idx, self.style_idx)


def draw_pairs(step: int, *, seed: int, batch_size: int, n_pairs: int, prob: float, rank: int = 0) -> Tensor | None:
    """The pairs step ``step`` trains on, or None when it is a step of the other losses alone
    (drawn with probability 1 - ``prob``). A pure function of its arguments, on its own random
    stream (the rest of the step's plan is drawn as without targets)."""
    if prob <= 0 or n_pairs <= 0:
        return None
    if prob < 1 and np.random.default_rng([seed, int(step), 0xD15]).random() >= prob:  # same on every rank
        return None
    rng = np.random.default_rng([seed, int(step), 0xD15, rank])
    return torch.from_numpy(rng.integers(0, n_pairs, batch_size))


def unzoomed(view: Tensor) -> Tensor:
    """Crop views (zoom, y, x, flip) at zoom 1: targets are cropped at their own scale."""
    view = view.clone()
    view[:, 0] = 1.0
    return view
