"""Style sheets (one photo in many styles) and interpolation strips, made with the engine."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from collections.abc import Callable

from dinstyle import builtin_styles
from dinstyle.events import Event
from dinstyle.config import STYLIZE
from dinstyle.engine import Stylizer
from dinstyle.styles import Style
from dinstyle.errors import InputError, OptionError
from dinstyle.io.grid import compose_grid
from dinstyle.io.images import IMAGE_EXTS, fit_size, read_image, resize_rgb
from dinstyle.packs import PACK_EXT
from dinstyle.palette import Palette
from dinstyle.styles import blend


def collect_styles(items: list[str]) -> list[Path | str]:
    """Style images and packs from files and folders, and built-in style names, in order."""
    out: list[Path | str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith(".")
                          and (f.suffix.lower() in IMAGE_EXTS or f.suffix.lower() == PACK_EXT))
        elif builtin_styles.resolve(item) is not None:
            out.append(str(item))
        elif p.exists():
            out.append(p)
        else:
            raise InputError(builtin_styles.not_found(item))
    if not out:
        raise InputError("no style images or packs found")
    return out


def _photo(photo: str | Path, max_size: int) -> np.ndarray:
    rgb = read_image(photo).rgb
    return resize_rgb(rgb, fit_size(rgb.shape[1], rgb.shape[0], max_size))


def make_sheet(st: Stylizer, photo: str | Path, styles: list[str], *, cell: int = STYLIZE.sheet_cell,
               cols: int | None = None, max_size: int = STYLIZE.sheet_max_size, style_size: int = STYLIZE.style_size,
               mode: str | None = None, strength: float = STYLIZE.strength,
               palette: float = STYLIZE.palette) -> np.ndarray:
    """The photo, then the photo in every style, as a labelled grid."""
    rgb = _photo(photo, max_size)
    cells = [(rgb, "original")]
    for path in collect_styles(styles):
        sty = st.load_style([path], mode=mode, style_size=style_size)
        cells.append((st.stylize([rgb], sty, strength=strength, palette=palette)[0], sty.label))
    return compose_grid(cells, cols=cols, cell=cell)


def make_builtin_sheet(st: Stylizer, photo: str | Path, *, cell: int = STYLIZE.sheet_cell,
                       max_size: int = STYLIZE.sheet_max_size, mode: str = "standard",
                       palette: float = STYLIZE.palette,
                       on_event: Callable[[Event], None] | None = None) -> np.ndarray:
    """The photo, then the photo in every built-in style (by name, whatever files lie around);
    a "progress" event after each style."""
    rgb = _photo(photo, max_size)
    cells = [(rgb, "original")]
    for i, name in enumerate(builtin_styles.STYLES, 1):
        cells.append((st.stylize([rgb], st.builtin_style(name, mode), palette=palette)[0], name))
        if on_event:
            on_event(Event("progress", input=name, step=i, steps=len(builtin_styles.STYLES)))
    return compose_grid(cells, cell=cell)


def interpolate(a: Style, b: Style, t: float) -> Style:
    """DIN-parameter interpolation: t = 0 is ``a``, t = 1 is ``b``; the palette is mixed alike."""
    if a.mode != b.mode:
        raise OptionError("both styles of a strip must use the same --mode")
    if t <= 0.0:
        params, palette = a.params, a.palette
    elif t >= 1.0:
        params, palette = b.params, b.palette
    else:
        params = blend([(a.params, 1.0 - t), (b.params, t)])
        palette = None if a.palette is None or b.palette is None else \
            Palette.mix([(a.palette, 1.0 - t), (b.palette, t)])
    return Style(params=params, label=f"{a.label}->{b.label} {t:.2f}", palette=palette)


def make_strip(st: Stylizer, photo: str | Path, styles: list[str], *, steps: int = STYLIZE.strip_steps,
               max_size: int = STYLIZE.sheet_max_size, style_size: int = STYLIZE.style_size,
               mode: str | None = None, palette: float = STYLIZE.palette) -> list[tuple[np.ndarray, str]]:
    """One style: strength 0 -> 1 in ``steps``; two styles: style A -> style B. Returns labelled frames."""
    if steps < 2:
        raise OptionError(f"--steps {steps}: must be at least 2")
    if not 1 <= len(styles) <= 2:
        raise OptionError("a strip takes one style (content -> style) or two (style A -> style B)")
    rgb = _photo(photo, max_size)
    ts = [i / (steps - 1) for i in range(steps)]
    loaded = [st.load_style([s], mode=mode, style_size=style_size) for s in styles]
    if len(loaded) == 1:
        return [(st.stylize([rgb], loaded[0], strength=t, palette=palette)[0], f"strength {t:.2f}") for t in ts]
    return [(st.stylize([rgb], interpolate(loaded[0], loaded[1], t), palette=palette)[0], f"{t:.2f}") for t in ts]
