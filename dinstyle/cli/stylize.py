"""The stylizing commands: image, video, cluster, sheet, styles, precompute, serve, info.

Each one parses its options, calls the library, and hands the events and results to ``render``.
Torch and the model are imported inside the commands, so `dinstyle --help` is instant.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from dinstyle.cli import options as o
from dinstyle.cli import render
from dinstyle.cli.app import app
from dinstyle.cli.options import given, stylizer, with_default
from dinstyle.config import STYLIZE, TOOLS


@app.command()
def image(
    paths: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.", show_default=False)],
    style: o.Styles,
    out: o.Out = None,
    mode: o.Mode = None,
    strength: o.Strength = None,
    palette: o.Palette = None,
    tone: o.Tone = None,
    supersample: o.Supersample = None,
    preserve_color: o.PreserveColor = False,
    color_match: Annotated[bool, typer.Option("--color-match", help="Recolour the style to each photo's colour statistics before encoding it (keeps colours, keeps the style's contrast).")] = False,
    max_size: o.MaxSize = None,
    style_size: o.StyleSize = None,
    fmt: Annotated[Optional[str], typer.Option("--format", help="Output format (jpg, png, webp, ...); default: the input's.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help=with_default("Same-size images per forward pass.", STYLIZE.batch_size))] = None,
    overwrite: o.Overwrite = False,
    recursive: o.Recursive = False,
    tile: Annotated[Optional[int], typer.Option("--tile", help="Tile size for huge images, in the network's pixels (0 = never; default: automatic above 4K on CPU, counted after --supersample). Tiles share whole-image statistics, so no seams.")] = None,
    mask: o.Mask = None,
    feather: o.Feather = None,
    json_out: o.Json = False,
    weights: o.Weights = None,
    device: o.Device = None,
    dtype: o.Dtype = None,
    vgg: o.Vgg = None,
) -> None:
    """Stylize images (files, folders, globs) with a style image, pack or built-in style name.
    `-` reads one image from stdin; `-o -` writes it to stdout (--format, default png)."""
    render_opts = dict(preserve_color=preserve_color, tile=tile, **given(strength=strength, palette=palette, tone=tone, supersample=supersample))
    with render.errors(json_out):
        from dinstyle import batch

        pipe = "-" in paths or str(out) == "-"
        if pipe:
            _check_pipe(paths, out, fmt, max_size, json_out)
        st = stylizer(weights, device, dtype, vgg)
        sty = st.load(style, color_match=color_match, **given(mode=mode, style_size=style_size, mask=mask,
                                                              feather=feather))
        if pipe:
            return _pipe_image(st, sty, paths[0], out, fmt=fmt, max_size=max_size, overwrite=overwrite, **render_opts)
        plan = batch.plan_images(paths, sty, out=out, fmt=fmt, recursive=recursive)
        with render.ImageView(len(plan.files), json_out) as view:
            try:
                summary = batch.run_images(st, plan, sty, max_size=max_size, fmt=fmt, overwrite=overwrite,
                                           on_event=view, **render_opts, **given(batch_size=batch_size))
            except KeyboardInterrupt as e:
                view.interrupted(e)
                raise
        view.summary(summary)
    render.batch_exit(summary.failed, summary.done + summary.skipped)


def _check_pipe(paths: list[str], out: Path | None, fmt: str | None, max_size: int | None, json_out: bool) -> None:
    """`-` (stdin) and `-o -` (stdout) take exactly one image; checked before the model loads."""
    from dinstyle.batch import check_image_options
    from dinstyle.errors import InputError, OptionError

    if len(paths) != 1:
        raise OptionError("`-` (stdin) and `-o -` (stdout) take one image: give a single input")
    if str(out) == "-" and paths[0] != "-" and not Path(paths[0]).is_file():
        raise InputError(f"{paths[0]}: -o - writes one image to stdout; give an image file (or - for stdin)")
    if str(out) == "-" and json_out:
        raise OptionError("--json and -o - would both write to stdout: drop one")
    check_image_options(max_size=max_size, fmt=fmt)
    if paths[0] == "-" and (sys.stdin is None or sys.stdin.isatty()):
        raise OptionError("-: stdin is a terminal; pipe an image in (dinstyle image - -s STYLE -o - < photo.jpg)")


def _pipe_image(st, sty, src: str, out: Path | None, *, fmt: str | None, max_size: int | None, overwrite: bool,
                **kw) -> None:
    """One image from stdin or a file, to stdout or a file; messages on stderr only."""
    import os

    from dinstyle.batch import plan_outputs, target_problem
    from dinstyle.errors import OutputError
    from dinstyle.io.images import read_image, write_image
    from dinstyle.io.stream import encode_image, read_image_bytes

    img = read_image_bytes(sys.stdin.buffer.read(), "stdin") if src == "-" else read_image(src)
    if str(out) != "-":
        dest = plan_outputs([Path("stdin.png")], sty, out, fmt)[Path("stdin.png")]
        why = target_problem(Path("-"), dest, overwrite=overwrite, inputs=set())
        if why is not None:
            render.err.print(f"skipped {dest}: {why[1]}")
            return
    res = st.stylize_image(img, sty, max_size=max_size, **kw)
    if str(out) != "-":
        write_image(dest, res.rgb, res.alpha)
        render.err.print(f"wrote {dest}")
        return
    data = encode_image(res.rgb, res.alpha, fmt or "png")  # whole image first: no partial output
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        raise OutputError("stdout: closed before the whole image was written") from None
    render.err.print(f"wrote {len(data):,} bytes ({(fmt or 'png').lower()}) to stdout")


@app.command()
def video(
    paths: Annotated[list[str], typer.Argument(help="Video files or folders.", show_default=False)],
    style: o.Styles,
    out: o.Out = None,
    mode: o.Mode = None,
    strength: o.Strength = None,
    palette: o.Palette = None,
    tone: o.Tone = None,
    supersample: o.Supersample = None,
    preserve_color: o.PreserveColor = False,
    max_size: Annotated[Optional[int], typer.Option("--max-size", help="Downscale frames so the long side is at most this.")] = None,
    style_size: o.StyleSize = None,
    stats: Annotated[Optional[str], typer.Option("--stats", help=with_default("Instance-norm statistics: sequence (smoothed over time, steadier) or frame.", STYLIZE.stats))] = None,
    crf: Annotated[Optional[int], typer.Option("--crf", help=with_default("H.264 quality (0 lossless .. 51 worst).", STYLIZE.crf))] = None,
    codec: Annotated[Optional[str], typer.Option("--codec", help=with_default("ffmpeg video encoder.", STYLIZE.codec))] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help=with_default("Frames per forward pass (0 = automatic).", STYLIZE.video_batch_size))] = None,
    mask: Annotated[Optional[Path], typer.Option("--mask", help="Region mask (as for images): an image (static) or a video of the same length; grey levels pick the --style values in order.")] = None,
    feather: o.Feather = None,
    overwrite: o.Overwrite = False,
    json_out: o.Json = False,
    weights: o.Weights = None,
    device: o.Device = None,
    dtype: o.Dtype = None,
    vgg: o.Vgg = None,
) -> None:
    """Stylize videos, keeping every frame at its source time (a variable frame rate too) and the audio; frames are streamed."""
    from dinstyle.io.video import list_videos

    view = None
    with render.errors(json_out):
        files, problems = list_videos(paths)
        failed = render.report_problems(problems, files, json_out)
        st = stylizer(weights, device, dtype, vgg)
        sty = st.load(style, video=True, **given(mode=mode, style_size=style_size, mask=mask, feather=feather))
        from dinstyle.batch import run_videos

        with render.VideoView(len(files), json_out) as view:
            view.counts["failed"] = failed
            try:
                run_videos(st, files, sty, out=out, overwrite=overwrite, on_event=view, preserve_color=preserve_color,
                           **given(strength=strength, palette=palette, tone=tone, supersample=supersample, max_size=max_size, stats=stats, batch_size=batch_size, crf=crf,
                                   codec=codec))
            except KeyboardInterrupt as e:
                view.interrupted(e, " (the video in progress was not kept)")
                raise
    render.batch_exit(view.counts["failed"], view.counts["done"] + view.counts["skipped"])


@app.command()
def cluster(
    paths: Annotated[list[str], typer.Argument(help="Image files, folders or globs on storage every node sees.", show_default=False)],
    style: o.Styles,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help=f"Output folder (default ./{STYLIZE.out}).")] = None,
    address: Annotated[Optional[str], typer.Option("--address", help="Ray cluster address (default: start a local Ray runtime).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Actors (default: one per GPU, else one per CPU).")] = None,
    mode: o.Mode = None,
    strength: o.Strength = None,
    palette: o.Palette = None,
    tone: o.Tone = None,
    supersample: o.Supersample = None,
    style_size: o.StyleSize = None,
    max_size: o.MaxSize = None,
    overwrite: o.Overwrite = False,
    recursive: o.Recursive = False,
    json_out: o.Json = False,
    weights: o.Weights = None,
    vgg: o.Vgg = None,
) -> None:
    """Stylize many files on a Ray cluster: each actor holds the model and the style once."""
    view = None
    with render.errors(json_out):
        from dinstyle.cluster import run_cluster
        from dinstyle.errors import OptionError

        if workers is not None and workers < 1:
            raise OptionError(f"--workers {workers}: must be at least 1")
        from dinstyle.runner import check_render_options

        check_render_options(**given(strength=strength, palette=palette, tone=tone, supersample=supersample))
        st = stylizer(weights, "cpu", None, vgg)  # the driver only encodes the style, once
        sty = st.load_style(style, **given(mode=mode, style_size=style_size))
        view = render.ClusterView(json_out, sty.label)
        run_cluster(paths, sty, out=out, address=address, workers=workers,
                    weights=str(st.weights_dir) if st.info.get("path") else None,
                    options={"max_size": max_size, "overwrite": overwrite, **given(strength=strength, palette=palette, tone=tone, supersample=supersample)},
                    recursive=recursive, on_event=view)
        if not json_out:
            render.err.print(f"{view.counts['done']} done, {view.counts['failed']} failed")
    render.batch_exit(view.counts["failed"], view.counts["done"])


@app.command()
def sheet(
    photo: Annotated[Path, typer.Argument(help="The photo to show in every style.")],
    style: Annotated[list[str], typer.Option("--style", "-s", help="Style images, packs, built-in names or folders of them.", show_default=False)],
    out: o.SheetOut = Path("sheet.jpg"),
    strip: Annotated[int, typer.Option("--strip", help="Instead of a sheet: an interpolation strip of N steps (one style: strength 0 -> 1; two styles: A -> B).")] = 0,
    cell: o.Cell = None,
    cols: Annotated[Optional[int], typer.Option("--cols", help="Columns (default: about square; a strip is one row).")] = None,
    max_size: o.SheetMaxSize = None,
    mode: o.Mode = None,
    style_size: o.StyleSize = None,
    palette: o.Palette = None,
    weights: o.Weights = None,
    device: o.Device = None,
    vgg: o.Vgg = None,
) -> None:
    """A labelled grid of one photo in many styles (how to choose a style), or an interpolation strip."""
    with render.errors():
        from dinstyle.errors import OptionError
        from dinstyle.io.grid import compose_grid
        from dinstyle.io.images import write_image
        from dinstyle.sheets import make_sheet, make_strip

        cell = STYLIZE.sheet_cell if cell is None else cell
        if cell < 16:
            raise OptionError(f"--cell {cell}: must be at least 16")
        if cols is not None and cols < 1:
            raise OptionError(f"--cols {cols}: must be at least 1")
        if strip < 0 or strip == 1:
            raise OptionError(f"--strip {strip}: must be at least 2 (or 0 for a sheet)")
        if max_size is not None and max_size < 16:
            raise OptionError(f"--max-size {max_size}: must be at least 16")
        from dinstyle.runner import check_render_options

        check_render_options(**given(palette=palette))
        st = stylizer(weights, device, None, vgg)
        kw = given(max_size=max_size, style_size=style_size, mode=mode, palette=palette)
        if strip:
            frames = make_strip(st, photo, style, steps=strip, **kw)
            grid = compose_grid(frames, cols=cols or len(frames), cell=cell)
        else:
            grid = make_sheet(st, photo, style, cell=cell, cols=cols, **kw)
        write_image(out, grid)
        render.err.print(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]})")


@app.command()
def styles(
    sheet_photo: Annotated[Optional[Path], typer.Option("--sheet", help="Render this photo in every built-in style, as one labelled sheet.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Sheet image to write (with --sheet).")] = Path("sheet.jpg"),
    cell: Annotated[Optional[int], typer.Option("--cell", help=with_default("Long side of each sheet cell in pixels.", STYLIZE.sheet_cell))] = None,
    max_size: o.SheetMaxSize = None,
    mode: o.Mode = None,
    palette: o.Palette = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
    weights: o.Weights = None,
    device: o.Device = None,
    vgg: o.Vgg = None,
) -> None:
    """The built-in styles (use their names with --style anywhere), or a sheet of a photo in all of them."""
    from dinstyle.builtin_styles import STYLES

    with render.errors():
        if sheet_photo is None:
            if json_out:
                render.echo_json([s.to_dict() for s in STYLES.values()], indent=2)
            else:
                render.styles_table(STYLES.values())
            return
        from dinstyle.errors import OptionError
        from dinstyle.io.images import write_image
        from dinstyle.sheets import make_builtin_sheet

        if cell is not None and cell < 16:
            raise OptionError(f"--cell {cell}: must be at least 16")
        from dinstyle.runner import check_render_options

        check_render_options(**given(palette=palette))
        st = stylizer(weights, device, None, vgg)
        with render.progress(True) as prog:
            task = prog.add_task("styles", total=len(STYLES))
            grid = make_builtin_sheet(st, sheet_photo, **given(cell=cell, max_size=max_size, mode=mode, palette=palette),
                                      on_event=lambda ev: prog.update(task, completed=ev.step))
        write_image(out, grid)
        render.err.print(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]})")


@app.command()
def serve(
    host: Annotated[Optional[str], typer.Option("--host", help=with_default("Address to listen on (127.0.0.1: this machine only).", TOOLS.host))] = None,
    port: Annotated[Optional[int], typer.Option("--port", "-p", help=with_default("Port (0 picks a free one).", TOOLS.port))] = None,
    max_megapixels: Annotated[Optional[float], typer.Option("--max-megapixels", help=with_default("Largest upload accepted, in megapixels.", TOOLS.max_megapixels))] = None,
    weights: o.Weights = None,
    device: o.Device = None,
    vgg: o.Vgg = None,
) -> None:
    """A local web page: drop a photo, see it in every built-in style, preview, download."""
    with render.errors():
        from dinstyle.errors import OptionError

        try:
            import uvicorn  # noqa: F401

            from dinstyle.web import serve as run_server
        except ImportError as e:
            raise OptionError(f"serve needs the web extras ({e.name} is missing): pip install 'dinstyle[serve]'") from None
        run_server(lambda: stylizer(weights, device, None, vgg),
                   on_listening=lambda url: render.err.print(f"serving on {url} (Ctrl-C to stop)"),
                   **given(host=host, port=port, max_megapixels=max_megapixels))


@app.command()
def precompute(
    styles: Annotated[list[str], typer.Argument(help="Style images, folders, globs or built-in style names.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the .dinpack files.")] = Path("packs"),
    mode: Annotated[Optional[str], typer.Option("--mode", help=with_default("standard, adaptive or deformable.", "standard"))] = None,
    style_size: o.StyleSize = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace packs that already exist.")] = False,
    json_out: o.Json = False,
    weights: o.Weights = None,
    device: o.Device = None,
    vgg: o.Vgg = None,
) -> None:
    """Turn style images into style packs (precomputed DIN parameters; skip the style encoder later)."""
    from dinstyle import batch

    with render.errors(json_out):
        files, problems = batch.style_files(styles)
        failed = render.report_problems(problems, files, json_out)
        st = stylizer(weights, device, None, vgg)
        with render.PackView(len(files), json_out) as view:
            summary = batch.run_packs(st, files, out=out, overwrite=overwrite, on_event=view,
                                      **given(mode=mode, style_size=style_size))
        failed += summary.failed
        if not json_out:
            render.err.print(f"{summary.done} pack(s) written to {out}, {failed} failed")
    render.batch_exit(failed, summary.done)


@app.command()
def info(
    style: Annotated[Optional[Path], typer.Option("--style", "-s", help="A style pack to describe.")] = None,
    weights: o.Weights = None,
    device: o.Device = None,
    json_out: o.JsonResult = False,
) -> None:
    """Model, weights, parameter count, MACs at 512x512, device; and a style pack's contents."""
    with render.errors(json_out):
        from rich.console import Console

        from dinstyle.report import describe

        data = describe(weights=weights, pack=style, **given(device=device))
        if json_out:
            render.echo_json(data, indent=2)
        else:
            render.info_table(data, Console(highlight=False))
