"""`dinstyle pack-data`: a training set in one file, small enough to travel with a job.

A GPU job may be sent with a size limit (the repository plus its data). The pack keeps every
image's encoded bytes — the original files where they already fit, otherwise re-encoded as WebP at
the highest quality that fits, and only as a last resort fewer images — in one safetensors file:

    {group}.bytes    uint8, the encoded images of the group back to back
    {group}.offsets  int64 (n + 1), where each image starts and ends
    metadata         format, version, encoding per group, image side, names per group (JSON)

Groups: "content" (photos), "style" (artworks), "flat" (flat-colour art, optional). Decoding
happens once at the start of training (``ImageBank.decode``), on the training machine.
"""
from __future__ import annotations

import dataclasses
import io
import json
import subprocess
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dinstyle.config import TOOLS
from dinstyle.errors import CheckpointError, OptionError
from dinstyle.io.files import atomic_path
from dinstyle.io.images import list_images
from dinstyle.train.data import decode_square

FORMAT = "dinstyle-data-pack"
VERSION = "1"
QUALITIES = (90, 85, 80, 75, 70, 65, 60, 50, 40)
TRANSFER_LIMIT_MIB = 64  # what a GPU job may send: the checkout's tracked files plus the pack
SIZE = TOOLS.data_pack_size  # square side the images are kept at


@dataclass
class PackSummary:
    path: Path
    bytes: int
    encoding: dict[str, str]
    counts: dict[str, int]
    available: dict[str, int]
    limit: int = 0  # bytes the pack was allowed


def tracked_mib(root: Path = Path(__file__).resolve().parents[2]) -> float:
    """Size of the checkout's tracked files (what a GPU job sends besides the pack); 0 outside git."""
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return 0.0
    total = 0
    for n in names.split(b"\0"):
        if n:
            p = root / n.decode(errors="replace")
            total += p.stat().st_size if p.is_file() else 0
    return total / 2**20


def pack_training_set(train_dir: str | Path, dest: str | Path, *, flat: str | Path | None = None,
                      max_mb: float | None = None, size: int = SIZE,
                      on_progress: Callable[[str], None] | None = None) -> PackSummary:
    """Pack ``train_dir``/content and ``train_dir``/style (and flat-colour art: ``flat``, or ../flat
    beside ``train_dir`` if present) within ``max_mb`` MiB (default: the transfer limit minus the
    checkout's tracked files, minus 1 MiB)."""
    train_dir = Path(train_dir)
    groups = {"content": list_images(train_dir / "content"), "style": list_images(train_dir / "style")}
    flat = flat or (train_dir.parent / "flat" if (train_dir.parent / "flat").is_dir() else None)
    if flat is not None:
        groups["flat"] = list_images(flat)
    if max_mb is None:
        max_mb = TRANSFER_LIMIT_MIB - tracked_mib() - 1
    if max_mb <= 0:
        raise OptionError(f"--max-mb {max_mb:.1f}: must be > 0")
    res = write_data_pack(groups, dest, int(max_mb * 2**20), size, on_progress=on_progress)
    return dataclasses.replace(res, limit=int(max_mb * 2**20))


def encode_webp(src: Path | bytes, size: int, quality: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(decode_square(src, size)).save(buf, "WEBP", quality=quality, method=4)
    return buf.getvalue()


def _fits_as_is(path: Path, size: int) -> bool:
    with Image.open(path) as im:
        return im.size == (size, size) and im.format in ("WEBP", "JPEG", "PNG")


def write_data_pack(groups: dict[str, Sequence[Path]], dest: str | Path, max_bytes: int, size: int = SIZE,
                    lossless_groups: Sequence[str] = ("flat",), threads: int = 2,
                    on_progress: Callable[[str], None] | None = None) -> PackSummary:
    """Pack the images of ``groups`` into ``dest`` within ``max_bytes``. Preference, in order:
    original bytes (files already ``size`` x ``size``); WebP re-encoded at the highest quality in
    QUALITIES (groups in ``lossless_groups`` keep their bytes: flat colours suffer most from lossy
    coding); the lowest quality with an even share of each group's images dropped."""
    dest = Path(dest)
    if not groups.get("content") or not groups.get("style"):
        raise OptionError("a data pack needs content and style images")
    originals: dict[str, list[bytes]] = {}
    for g, files in groups.items():
        if all(_fits_as_is(Path(f), size) for f in files):
            originals[g] = [Path(f).read_bytes() for f in files]
    names = {g: [Path(f).name for f in files] for g, files in groups.items()}

    def total(blobs: dict[str, list[bytes]]) -> int:
        return sum(len(b) for bs in blobs.values() for b in bs) + 8 * sum(len(bs) + 1 for bs in blobs.values()) + 4096 + \
            len(json.dumps(names))

    encoding = {g: "original" for g in groups}
    blobs = {g: originals[g] for g in originals}
    if len(blobs) == len(groups) and total(blobs) <= max_bytes:
        return _write(dest, blobs, names, encoding, size, {g: len(f) for g, f in groups.items()})
    kept = {g: originals[g] for g in lossless_groups if g in originals}
    lossy = [g for g in groups if g not in kept]
    best = None
    with ThreadPoolExecutor(max(1, threads)) as pool:
        for q in QUALITIES:
            if on_progress:
                on_progress(f"WebP quality {q}")
            trial = dict(kept)
            for g in lossy:
                trial[g] = list(pool.map(lambda f, q=q: encode_webp(Path(f), size, q), groups[g]))
            best = (q, trial)
            if total(trial) <= max_bytes:
                break
    q, blobs = best
    for g in lossy:
        encoding[g] = f"webp-q{q}"
    counts = {g: len(groups[g]) for g in groups}
    over = total(blobs) - max_bytes
    if over > 0:  # still too big: drop an even share of every group's images, as few as possible
        size_all = sum(len(b) for bs in blobs.values() for b in bs)
        keep_frac = max(0.0, 1.0 - over / size_all - 0.002)
        for g in blobs:
            n = len(blobs[g])
            idx = np.unique(np.linspace(0, n - 1, max(1, int(n * keep_frac))).round().astype(int))
            blobs[g] = [blobs[g][i] for i in idx]
            names[g] = [names[g][i] for i in idx]
        while total(blobs) > max_bytes and all(len(b) > 1 for b in blobs.values()):
            g = max(blobs, key=lambda k: len(blobs[k]))
            blobs[g].pop()
            names[g].pop()
        if total(blobs) > max_bytes:
            raise OptionError(f"--max-mb {max_bytes / 2**20:.1f}: too small for even one image per group")
    return _write(dest, blobs, names, encoding, size, counts)


def _write(dest: Path, blobs: dict[str, list[bytes]], names: dict[str, list[str]], encoding: dict[str, str],
           size: int, available: dict[str, int]) -> PackSummary:
    tensors = {}
    for g, bs in blobs.items():
        lens = torch.tensor([0] + [len(b) for b in bs], dtype=torch.int64)
        tensors[f"{g}.offsets"] = torch.cumsum(lens, 0)
        tensors[f"{g}.bytes"] = torch.frombuffer(bytearray(b"".join(bs)), dtype=torch.uint8)
    meta = {"format": FORMAT, "version": VERSION, "size": str(size), "encoding": json.dumps(encoding),
            "names": json.dumps({g: names[g] for g in blobs})}
    with atomic_path(dest) as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return PackSummary(dest, dest.stat().st_size, {g: encoding[g] for g in blobs}, {g: len(b) for g, b in blobs.items()},
                       available)


def read_data_pack(path: str | Path) -> dict[str, tuple[list[bytes], list[str]]]:
    """{group: (encoded images, names)} of a pack written by ``write_data_pack``."""
    path = Path(path)
    try:
        from safetensors import safe_open

        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
    except (FileNotFoundError, IsADirectoryError):
        raise CheckpointError(f"{path}: no such data pack") from None
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"{path}: not a data pack ({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: not a dinstyle data pack (version {VERSION})")
    try:
        names = json.loads(meta["names"])
        out = {}
        for g, ns in names.items():
            data, off = tensors[f"{g}.bytes"], tensors[f"{g}.offsets"].tolist()
            if len(off) != len(ns) + 1 or off[0] != 0 or off[-1] != data.numel() or any(b < a for a, b in zip(off, off[1:])):
                raise ValueError(g)
            raw = data.numpy().tobytes()
            out[g] = ([raw[a:b] for a, b in zip(off, off[1:])], list(ns))
    except (KeyError, ValueError, TypeError, json.JSONDecodeError):
        raise CheckpointError(f"{path}: damaged data pack (index does not match the data)") from None
    return out
