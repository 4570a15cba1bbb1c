"""Options shared by several commands, declared once. Options with a default value default to "not
given" (None) here: the value shown as [default: ...] is the library's (``config.STYLIZE``,
``TrainConfig``, the library calls' keyword defaults), and only what was given is passed on."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from dinstyle.config import STYLIZE


def given(**options) -> dict:
    """The options that were given (not None), to pass over the library's defaults."""
    return {k: v for k, v in options.items() if v is not None}


def stylizer(weights=None, device=None, dtype=None, vgg=None):
    """The model options (--weights, --device, --dtype, --vgg) -> the loaded Stylizer."""
    from dinstyle.engine import Stylizer

    return Stylizer(weights=weights, **given(device=device, dtype=dtype, vgg=vgg))


def with_default(text: str, value) -> str:
    """Help text that shows the library's default of an option that defaults to "not given"."""
    if isinstance(value, (tuple, list)):
        value = ",".join(map(str, value))
    return f"{text} \\[default: {value}]"  # escaped: rich would read [default: ...] as markup


# the model and where it runs
Weights = Annotated[Optional[Path], typer.Option("--weights", "-w", help="Weights folder (default: the shipped weights/, or $DINSTYLE_WEIGHTS).")]
Device = Annotated[Optional[str], typer.Option("--device", help=with_default("auto (CUDA if present, else CPU), cpu, cuda, cuda:N.", "auto"))]
Dtype = Annotated[Optional[str], typer.Option("--dtype", help=with_default("auto (fp16 on GPU, fp32 on CPU), fp32, fp16, bf16.", "auto"))]
Vgg = Annotated[Optional[Path], typer.Option("--vgg", help="VGG-19 weights (.pth or .safetensors) for the style encoder / losses.")]

# styles
Styles = Annotated[list[str], typer.Option("--style", "-s", help="Style image, pack or built-in style name; repeat to blend, with optional weights: -s a.jpg:0.7 -s b.jpg:0.3.", show_default=False)]
Mode = Annotated[Optional[str], typer.Option("--mode", help="DIN kernel: standard, adaptive (spatially-adaptive, for flat-colour art), deformable (if the weights have it) or auto (image command: adaptive for images that are mostly uniform regions). Default: standard, or the pack's mode.")]
StyleSize = Annotated[Optional[int], typer.Option("--style-size", help=with_default("Long side the style image is encoded at (smaller = larger strokes).", STYLIZE.style_size))]
Mask = Annotated[Optional[Path], typer.Option("--mask", help="Region mask: its grey levels, split evenly, pick the --style values in order (dark = first); --style none keeps the content.")]
Feather = Annotated[Optional[float], typer.Option("--feather", help=with_default("Soft edge between mask regions, in pixels.", STYLIZE.feather))]

# how each image is rendered
Strength = Annotated[Optional[float], typer.Option("--strength", help=with_default("Style strength: 0 = none, 1 = full, > 1 exaggerates.", STYLIZE.strength))]
Palette = Annotated[Optional[float], typer.Option("--palette", help=with_default("How far the output's colours move onto the painting's palette: 0 = the network's own colours, 1 = the painting's (scaled down with --strength under 1).", STYLIZE.palette))]
Tone = Annotated[Optional[float], typer.Option("--tone", help=with_default("How far the output's broad light and dark (a Gaussian blur of sigma 8 px) move to the photo's: 0 = the network's own, 1 = the photo's; the strokes stay (scaled down with --strength under 1).", STYLIZE.tone))]
Supersample = Annotated[Optional[float], typer.Option("--supersample", help=with_default("Run the network on the image enlarged this many times and shrink its output back: finer strokes, nearer the painting's texture, at about the square of the time and memory (1 = off, at most 2).", STYLIZE.supersample))]
PreserveColor = Annotated[bool, typer.Option("--preserve-color", help="Keep the content's colours (style luminance only).")]
MaxSize = Annotated[Optional[int], typer.Option("--max-size", help="Downscale inputs so the long side is at most this.")]

# batches
Out = Annotated[Optional[Path], typer.Option("--out", "-o", help=f"Output folder (default ./{STYLIZE.out}), or a file name for one input.")]
Overwrite = Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist (default: skip them).")]
Recursive = Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")]
Json = Annotated[bool, typer.Option("--json", help="Print one JSON record per output on stdout.")]
JsonResult = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]

# sheets
Cell = Annotated[Optional[int], typer.Option("--cell", help=with_default("Long side of each cell in pixels.", STYLIZE.sheet_cell))]
SheetMaxSize = Annotated[Optional[int], typer.Option("--max-size", help=with_default("Long side the photo is stylized at.", STYLIZE.sheet_max_size))]
SheetOut = Annotated[Path, typer.Option("--out", "-o", help="Sheet image to write.")]
