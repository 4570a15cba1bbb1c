"""Labelled image grids (style sheets, interpolation strips) with Pillow."""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

LABEL_H = 28


def fit_cell(rgb: np.ndarray, cell: int) -> Image.Image:
    im = Image.fromarray(rgb)
    im.thumbnail((cell, cell), Image.Resampling.LANCZOS)
    return im


def compose_grid(cells: list[tuple[np.ndarray, str]], cols: int | None = None, cell: int = 256,
                 gap: int = 4) -> np.ndarray:
    """Cells (image, label) -> one (H, W, 3) uint8 grid; each cell is ``cell`` px on its long side
    with its label underneath. ``cols`` None makes the grid about square."""
    n = len(cells)
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    thumbs = [fit_cell(rgb, cell) for rgb, _ in cells]
    cw = max(t.width for t in thumbs)
    ch = max(t.height for t in thumbs) + LABEL_H
    sheet = Image.new("RGB", (cols * cw + (cols + 1) * gap, rows * ch + (rows + 1) * gap), "white")
    draw = ImageDraw.Draw(sheet)
    try:
        font = ImageFont.load_default(size=14)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    for i, (thumb, (_, label)) in enumerate(zip(thumbs, cells)):
        r, c = divmod(i, cols)
        x, y = gap + c * (cw + gap), gap + r * (ch + gap)
        sheet.paste(thumb, (x + (cw - thumb.width) // 2, y))
        text = label if len(label) <= 40 else label[:37] + "..."
        tw = draw.textlength(text, font=font)
        draw.text((x + max(0, (cw - tw) / 2), y + ch - LABEL_H + 6), text, fill="black", font=font)
    return np.asarray(sheet)
