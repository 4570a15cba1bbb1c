"""The luma style term: the style loss on grey images, the output's against the painting's.

The tool moves the output's hue and saturation onto the painting's after the network (the palette
transfer, ``dinstyle.palette``) and keeps the network's luma, so what the network alone decides
is light and dark: strokes, hatching, patterns. This term asks for exactly that: the balanced
style distance (``losses.stats_distance``) between the VGG channel statistics of the output's grey
levels and those of the painting's, at relu1_1..relu4_1. It is the training side of the
evaluation's grey distinctness, which ranks outputs by the same distance on grey images.

A style's grey statistics depend only on the image when styles are seen whole (``--style-view``),
so they are computed the first time a style is drawn and kept (1,920 numbers a style): in memory,
and on the CPU in a small file beside the style cache, under a name that says what it holds, so
the next run on the same styles starts with them (a VGG pass at 256 px costs ~0.5 s a style on
two cores: a 1,837-style set is a quarter of an hour, once).

The luma contrast term goes one step further, as the grey distinctness does: among the batch's
paintings, each output's grey statistics should be nearest to its own painting's. It is a
cross-entropy over the batch: the balanced distances (relu2_1..relu4_1, the evaluation's grey taps)
from output i to every painting j in the batch, each painting's column divided by its mean over
the batch's outputs, as logits -d_ij / (s_j * temperature), with i the right answer. It pulls an
output towards its painting's strokes (as the luma style term does) and pushes it away from the
other paintings' until they are clearly farther, so the same etched texture laid under every
painting costs something. A painting drawn twice in a batch is not its own negative.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import Tensor

from dinstyle.io.files import atomic_path

from dinstyle.config import GREY_TAPS, VGG_TAPS
from dinstyle.model.din import calc_mean_std
from dinstyle.model.losses import stats_distance, style_loss_stats

# ITU-R BT.601 luma, as OpenCV's RGB2GRAY (metrics.grey_rgb, what the evaluation ranks)
LUMA = (0.299, 0.587, 0.114)

Stats = dict[str, tuple[Tensor, Tensor]]


def grey(rgb: Tensor) -> Tensor:
    """(N, 3, H, W) RGB in 0..1 -> its grey levels repeated on three channels (the VGG's input)."""
    w = rgb.new_tensor(LUMA).view(1, 3, 1, 1)
    return (rgb * w).sum(1, keepdim=True).expand(-1, 3, -1, -1)


def grey_stats(vgg, rgb: Tensor) -> Stats:
    """Channel statistics of the grey version of a batch of images at every VGG tap (no gradient)."""
    with torch.no_grad():
        feats = vgg(grey(rgb))
    return {t: tuple(v.float() for v in calc_mean_std(feats[t])) for t in VGG_TAPS}


def output_stats(feats: dict[str, Tensor]) -> Stats:
    """Channel statistics of the VGG maps of ``grey(out)`` at every VGG tap, with gradients: computed
    once a step and shared by the luma style and contrast terms."""
    return {t: calc_mean_std(feats[t]) for t in VGG_TAPS}


def luma_style_loss(vgg, out: Tensor, target: Stats, layer_weights: tuple[float, ...] | None = None,
                    stats: Stats | None = None) -> Tensor:
    """The style loss of the output's grey levels against the painting's grey statistics -> (N,)
    (``stats``: the output's ``output_stats`` where they were already computed)."""
    if stats is None:
        return style_loss_stats(vgg(grey(out)), target, layer_weights=layer_weights)
    return stats_distance(stats, target, VGG_TAPS, layer_weights)


def luma_distances(stats: Stats, target: Stats, taps=GREY_TAPS) -> Tensor:
    """(N, N): the balanced style distance from output i's grey statistics (``stats``, see
    ``output_stats``) to painting j's (``target``), at ``taps``."""
    n = stats[taps[0]][0].shape[0]
    # all n x n pairs at once: output i repeated n times against the n paintings, row after row
    a = {t: tuple(v.repeat_interleave(n, 0) for v in stats[t]) for t in taps}
    b = {t: tuple(v.float().repeat(n, 1, 1, 1) for v in target[t]) for t in taps}
    return stats_distance(a, b, taps).view(n, n)


def luma_contrast_loss(stats: Stats, target: Stats, temperature: float,
                       style_ids: Tensor | None = None) -> Tensor:
    """The luma contrast term -> (N,): ``contrast_loss`` of the distances from the outputs' grey
    statistics (``stats``, see ``output_stats``) to the batch's paintings' (``target``).
    The same ``style_ids`` (the paintings' indices in the training set) mark a painting drawn twice;
    without them, identical statistics do (whole styles: the memoised statistics of one painting)."""
    if style_ids is not None:
        ids = style_ids.to(stats[GREY_TAPS[0]][0].device)
        same = ids[:, None] == ids[None, :]
    else:
        m0 = target[GREY_TAPS[-1]][0].flatten(1)
        same = (m0[:, None, :] == m0[None, :, :]).all(-1)  # (N, N): the same painting
    return contrast_loss(luma_distances(stats, target), same, temperature)


def contrast_loss(d: Tensor, same: Tensor, temperature: float) -> Tensor:
    """(N, N) distances output i -> painting j -> (N,): cross-entropy of each output's own painting,
    logits -d_ij / (s_j * ``temperature``), where s_j, the mean distance of the batch's outputs to
    painting j (no gradient), puts every painting on one scale: a painting whose grey statistics no
    output comes near (near-black, or all one texture) would otherwise own the batch's loss and never
    be anyone's nearest. So the term asks how much nearer each output is to its own painting than
    the batch's outputs are. Paintings marked ``same`` as the output's own are left out of its
    negatives. 0 for a batch of one painting."""
    scale = d.detach().mean(0, keepdim=True).clamp_min(1e-8)
    eye = torch.eye(len(d), dtype=torch.bool, device=d.device)
    logits = (-d / scale / temperature).masked_fill(same & ~eye, float("-inf"))
    return -torch.log_softmax(logits, dim=1).diagonal()


class GreyStatsMemo:
    """Grey statistics per style index, computed for the styles not yet seen (``compute`` takes
    the missing indices and returns their ``Stats``) and kept in memory; with ``path``, read from
    and saved to that file (its name must identify the styles and the VGG: see ``cache.cache_key``)."""

    def __init__(self, n: int, device: torch.device, path: Path | None = None):
        self.n, self.device, self.path = n, device, path
        self.valid = torch.zeros(n, dtype=torch.bool)
        self.stats: dict[str, tuple[Tensor, Tensor]] = {}
        self.saved = 0
        if path is not None and Path(path).is_file():
            try:
                data = load_file(str(path))
            except Exception:  # damaged: start afresh
                return
            valid = data.pop("valid", None)
            if valid is None or valid.numel() != n or any(v.shape[0] != n for v in data.values()):
                return
            self.valid = valid.bool()
            taps = sorted({k.rsplit(".", 1)[0] for k in data})
            self.stats = {t: (data[f"{t}.mean"].to(device), data[f"{t}.std"].to(device)) for t in taps}
            self.saved = int(self.valid.sum())

    def save(self) -> None:
        """Write the file (when there is one and new styles were added since the last save)."""
        done = int(self.valid.sum())
        if self.path is None or done == self.saved:
            return
        tensors = {"valid": self.valid.to(torch.uint8)}
        for t, (m, s) in self.stats.items():
            tensors[f"{t}.mean"], tensors[f"{t}.std"] = m.cpu().contiguous(), s.cpu().contiguous()
        with atomic_path(Path(self.path)) as tmp:
            save_file(tensors, str(tmp))
        self.saved = done

    def lookup(self, idx: Tensor, compute: Callable[[Tensor], Stats]) -> Stats:
        idx = idx.cpu()
        missing = torch.unique(idx[~self.valid[idx]])
        if len(missing):
            new = compute(missing)
            for t, (m, s) in new.items():
                if t not in self.stats:
                    shape = (self.n, *m.shape[1:])
                    self.stats[t] = (torch.zeros(shape, device=self.device), torch.zeros(shape, device=self.device))
                self.stats[t][0][missing.to(self.device)] = m.to(self.device)
                self.stats[t][1][missing.to(self.device)] = s.to(self.device)
            self.valid[missing] = True
        d = idx.to(self.device)
        return {t: (m[d], s[d]) for t, (m, s) in self.stats.items()}
