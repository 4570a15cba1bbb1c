"""The `dinstyle` command. Thin Typer commands: parse options, call the engine, render events.

Every library error is a DinstyleError; only this module turns it into a red line on stderr and an
exit code (2 bad input, 1 some files of a batch failed, 130 Ctrl-C, 143 SIGTERM). --traceback shows more.
"""
from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import warnings
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape

from dinstyle import __version__
from dinstyle.errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_TERMINATED, EXIT_USAGE, DinstyleError, InputError, \
    OutputError
from dinstyle.io.files import check_output_path, q

app = typer.Typer(name="dinstyle", add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fast arbitrary style transfer with Dynamic Instance Normalization (MobileNet-DIN).")
err = Console(stderr=True, highlight=False)
_state = {"traceback": False}

# Options shared by several commands (defaults come from the engine, not a second copy).
from dinstyle.config import STYLIZE_DEFAULTS as DEFAULTS  # noqa: E402  (no torch in this import)

WeightsOpt = Annotated[Optional[Path], typer.Option("--weights", "-w", help="Weights folder (default: the shipped weights/, or $DINSTYLE_WEIGHTS).")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N.")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help="auto (fp16 on GPU, fp32 on CPU), fp32, fp16, bf16.")]
VggOpt = Annotated[Optional[Path], typer.Option("--vgg", help="VGG-19 weights (.pth or .safetensors) for the style encoder / losses.")]
ModeOpt = Annotated[Optional[str], typer.Option("--mode", help="DIN kernel: standard, adaptive (spatially-adaptive, for flat-colour art), deformable (if the weights have it) or auto (image command: adaptive for images that are mostly uniform regions). Default: standard, or the pack's mode.")]
StyleSizeOpt = Annotated[int, typer.Option("--style-size", help="Long side the style image is encoded at (smaller = larger strokes).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON record per output on stdout.")]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dinstyle {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(
    traceback: Annotated[bool, typer.Option("--traceback", help="Show full tracebacks on errors (debugging).")] = False,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version, help="Print the version and exit.")] = False,
) -> None:
    _state["traceback"] = traceback


class Terminated(KeyboardInterrupt):
    """SIGTERM (timeout, systemd, docker stop, batch schedulers), raised in the main thread like
    Ctrl-C, so the same clean-up runs: stop at a boundary, remove temps, end ffmpeg, summarise."""


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # one clean-up; a second SIGTERM cannot break it
    raise Terminated()


def _interrupted(e: BaseException) -> tuple[str, int]:
    return ("terminated", EXIT_TERMINATED) if isinstance(e, Terminated) else ("interrupted", EXIT_INTERRUPTED)


def _clean(text) -> str:
    """``text`` as one printable line: control characters escaped (a newline in a file name cannot
    split a message) and rich markup in it shown as is."""
    return escape("".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in str(text)))


def _error(msg) -> None:
    err.print(f"[red]error:[/red] {_clean(msg)}", soft_wrap=True)


def _say(msg) -> None:
    err.print(_clean(msg), soft_wrap=True)


def _drop_stdout() -> None:
    """After stdout failed (full disk, closed pipe), what is still buffered goes to /dev/null, so
    Python's exit does not print a second error."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError, AttributeError):
        pass


def _echo_json(record, indent: int | None = None) -> None:
    """One JSON record on stdout; a stdout that cannot take it is one clear error."""
    try:
        typer.echo(json.dumps(record, indent=indent))
    except OSError as e:
        _drop_stdout()
        raise OutputError(f"stdout: cannot write the JSON output ({e.strerror or e})") from None


def _fail(msg: str, code: int, json_out: bool) -> None:
    _error(msg)
    if json_out:  # stdout says it too, for scripts reading only it
        with contextlib.suppress(DinstyleError):
            _echo_json({"status": "error", "error": msg, "exit_code": code})
    raise typer.Exit(code)


@contextlib.contextmanager
def _errors(json_out: bool = False):
    """Turn library errors into one stderr line + exit code (and, with --json, an error record on
    stdout); show warnings as one line each."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except DinstyleError as e:
            _show_warnings(caught)
            if _state["traceback"]:
                raise
            _fail(str(e), e.exit_code, json_out)
        except KeyboardInterrupt as e:
            word, code = _interrupted(e)
            err.print(f"[yellow]{word}[/yellow]")
            if json_out:
                with contextlib.suppress(DinstyleError):
                    _echo_json({"status": word, "exit_code": code})
            raise typer.Exit(code) from None
        except (MemoryError, OSError) as e:  # a safety net: the library should have said it in its words
            if _state["traceback"]:
                raise
            if isinstance(e, MemoryError):
                msg = "out of memory; try --max-size (or a smaller --style-size)"
            else:
                msg = f"{q(e.filename)}: {e.strerror}" if e.filename and e.strerror else (e.strerror or str(e))
            _fail(msg, EXIT_USAGE, json_out)
        _show_warnings(caught)


def _show_warnings(caught) -> None:
    seen = set()
    for w in caught:
        msg = str(w.message)
        if msg in seen or issubclass(w.category, (DeprecationWarning, FutureWarning, ResourceWarning)):
            continue
        seen.add(msg)
        err.print(f"[yellow]warning:[/yellow] {_clean(msg)}", soft_wrap=True)


def _report(problems: list[str], files: list | None = None, json_out: bool = False) -> int:
    """Print one error line per problem and return how many; exit 2 if ``files`` is given but empty."""
    for p in problems:
        _error(p)
        if json_out:
            _echo_json({"status": "failed", "error": p})
    if files is not None and not files:
        raise typer.Exit(EXIT_USAGE)
    return len(problems)


def _batch_exit(failed: int, succeeded: int) -> None:
    """Exit 2 when nothing succeeded, 1 when a batch finished with some failures."""
    if failed:
        raise typer.Exit(EXIT_USAGE if succeeded == 0 else EXIT_FAILED)


def _stylizer(weights, device, dtype, vgg=None):
    from dinstyle.engine import Stylizer

    return Stylizer(weights=weights, device=device, dtype=dtype, vgg=vgg)


def _progress(total: int, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("eta"), TimeRemainingColumn(), console=err, disable=not enabled, transient=False)


@app.command()
def image(
    paths: Annotated[list[str], typer.Argument(help="Image files, folders or glob patterns.", show_default=False)],
    style: Annotated[list[str], typer.Option("--style", "-s", help="Style image or pack; repeat to blend, with optional weights: -s a.jpg:0.7 -s b.jpg:0.3.", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default ./stylized), or a file name for one input.")] = None,
    mode: ModeOpt = None,
    strength: Annotated[float, typer.Option("--strength", help="Style strength: 0 = none, 1 = full, > 1 exaggerates.")] = DEFAULTS["strength"],
    preserve_color: Annotated[bool, typer.Option("--preserve-color", help="Keep the content's colours (style luminance only).")] = False,
    color_match: Annotated[bool, typer.Option("--color-match", help="Recolour the style to each photo's colour statistics before encoding it (keeps colours, keeps the style's contrast).")] = False,
    max_size: Annotated[Optional[int], typer.Option("--max-size", help="Downscale inputs so the long side is at most this.")] = None,
    style_size: StyleSizeOpt = DEFAULTS["style_size"],
    fmt: Annotated[Optional[str], typer.Option("--format", help="Output format (jpg, png, webp, ...); default: the input's.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Same-size images per forward pass.")] = 1,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist (default: skip them).")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="Descend into sub-folders.")] = False,
    tile: Annotated[Optional[int], typer.Option("--tile", help="Tile size for huge images (0 = never; default: automatic above 4K on CPU). Tiles share whole-image statistics, so no seams.")] = None,
    mask: Annotated[Optional[Path], typer.Option("--mask", help="Region mask: its grey levels, split evenly, pick the --style values in order (dark = first); --style none keeps the content.")] = None,
    feather: Annotated[float, typer.Option("--feather", help="Soft edge between mask regions, in pixels.")] = 4.0,
    json_out: JsonOpt = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    vgg: VggOpt = None,
) -> None:
    """Stylize images (files, folders, globs) with a style image, pack or built-in style name.
    `-` reads one image from stdin; `-o -` writes it to stdout (--format, default png)."""
    with _errors(json_out):
        pipe = "-" in paths or str(out) == "-"
        if pipe:
            _check_pipe(paths, out, fmt, max_size, json_out)
        st = _stylizer(weights, device, dtype, vgg)
        if mask is not None:
            sty = st.load_regions(style, mask, feather=feather, mode=mode, style_size=style_size)
        else:
            sty = st.load_style_auto(style, mode=mode, style_size=style_size)
        if pipe:
            _pipe_image(st, sty, paths[0], out, fmt=fmt, max_size=max_size, overwrite=overwrite, strength=strength,
                        preserve_color=preserve_color, tile=tile, color_match=color_match)
            return
        from dinstyle.engine import expand_inputs

        n = len(expand_inputs(paths, recursive)[0])
        with _progress(n, n > 1 and not json_out) as prog:
            task = prog.add_task("stylizing", total=n)

            def on_event(ev):
                prog.advance(task)
                if ev.status == "failed":
                    _error(ev.error)
                elif ev.status == "skipped" and not json_out:
                    _say(f"skipped {ev.output}: {ev.error}")
                if json_out:
                    rec = {"input": ev.input, "style": sty.label, "mode": ev.mode or sty.mode, "output": ev.output,
                           "status": ev.status, "size": list(ev.size) if ev.size else None,
                           "seconds": round(ev.seconds, 4)}
                    if ev.error:
                        rec["error"] = ev.error
                    _echo_json(rec)

            counts = {"done": 0, "skipped": 0, "failed": 0}
            track = on_event

            def on_event(ev):  # noqa: F811 (wraps the renderer to keep a tally for Ctrl-C)
                counts[ev.status] += 1
                track(ev)

            try:
                summary = st.run_images(paths, sty, out=out, strength=strength, preserve_color=preserve_color,
                                        max_size=max_size, fmt=fmt, batch_size=batch_size, overwrite=overwrite,
                                        recursive=recursive, tile=tile, color_match=color_match, on_event=on_event)
            except KeyboardInterrupt as e:
                err.print(f"{_interrupted(e)[0]}: {counts['done']} written, {counts['skipped']} skipped, "
                          f"{counts['failed']} failed; run the same command again to finish (finished outputs are "
                          "skipped)")
                raise
        if not json_out:
            done = [e for e in summary.events if e.status == "done"]
            if len(done) == 1 and summary.failed == 0:
                _say(f"wrote {done[0].output}")
            else:
                err.print(f"{summary.done} written, {summary.skipped} skipped, {summary.failed} failed")
    _batch_exit(summary.failed, summary.done + summary.skipped)


def _check_pipe(paths: list[str], out: Path | None, fmt: str | None, max_size: int | None, json_out: bool) -> None:
    """`-` (stdin) and `-o -` (stdout) take exactly one image; checked before the model loads."""
    from dinstyle.errors import OptionError
    from dinstyle.io.images import EXT_BY_FORMAT

    if len(paths) != 1:
        raise OptionError("`-` (stdin) and `-o -` (stdout) take one image: give a single input")
    if str(out) == "-" and paths[0] != "-" and not Path(paths[0]).is_file():
        raise InputError(f"{paths[0]}: -o - writes one image to stdout; give an image file (or - for stdin)")
    if str(out) == "-" and json_out:
        raise OptionError("--json and -o - would both write to stdout: drop one")
    if fmt is not None and fmt.lower() not in EXT_BY_FORMAT:
        raise OptionError(f"--format {fmt}: unknown (use {', '.join(sorted(set(EXT_BY_FORMAT)))})")
    if max_size is not None and max_size < 8:
        raise OptionError(f"--max-size {max_size}: must be at least 8")
    if paths[0] == "-" and (sys.stdin is None or sys.stdin.isatty()):
        raise OptionError("-: stdin is a terminal; pipe an image in (dinstyle image - -s STYLE -o - < photo.jpg)")


def _pipe_image(st, sty, src: str, out: Path | None, *, fmt: str | None, max_size: int | None, overwrite: bool,
                **kw) -> None:
    """One image from stdin or a file, to stdout or a file; messages on stderr only."""
    import os

    from dinstyle.engine import plan_outputs
    from dinstyle.errors import OutputError
    from dinstyle.io.images import read_image, write_image
    from dinstyle.io.stream import encode_image, read_image_bytes

    img = read_image_bytes(sys.stdin.buffer.read(), "stdin") if src == "-" else read_image(src)
    if str(out) != "-":
        dest = plan_outputs([Path("stdin.png")], sty, out, fmt)[Path("stdin.png")]
        if dest.exists() and not overwrite:
            err.print(f"skipped {dest}: exists (use --overwrite)")
            return
    res = st.stylize_image(img, sty, max_size=max_size, **kw)
    if str(out) != "-":
        write_image(dest, res.rgb, res.alpha)
        err.print(f"wrote {dest}")
        return
    data = encode_image(res.rgb, res.alpha, fmt or "png")  # whole image first: no partial output
    try:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        raise OutputError("stdout: closed before the whole image was written") from None
    err.print(f"wrote {len(data):,} bytes ({(fmt or 'png').lower()}) to stdout")


@app.command()
def video(
    paths: Annotated[list[str], typer.Argument(help="Video files or folders.", show_default=False)],
    style: Annotated[list[str], typer.Option("--style", "-s", help="Style image or pack (repeat to blend: -s a.jpg:0.7 -s b.jpg:0.3).", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default ./stylized), or a file name for one input.")] = None,
    mode: ModeOpt = None,
    strength: Annotated[float, typer.Option("--strength", help="Style strength: 0 = none, 1 = full, > 1 exaggerates.")] = DEFAULTS["strength"],
    preserve_color: Annotated[bool, typer.Option("--preserve-color", help="Keep the content's colours.")] = False,
    max_size: Annotated[Optional[int], typer.Option("--max-size", help="Downscale frames so the long side is at most this.")] = None,
    style_size: StyleSizeOpt = DEFAULTS["style_size"],
    stats: Annotated[str, typer.Option("--stats", help="Instance-norm statistics: sequence (smoothed over time, steadier) or frame.")] = "sequence",
    crf: Annotated[int, typer.Option("--crf", help="H.264 quality (0 lossless .. 51 worst).")] = 18,
    codec: Annotated[str, typer.Option("--codec", help="ffmpeg video encoder.")] = "libx264",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Frames per forward pass (0 = automatic).")] = 0,
    mask: Annotated[Optional[Path], typer.Option("--mask", help="Region mask (as for images): an image (static) or a video of the same length; grey levels pick the --style values in order.")] = None,
    feather: Annotated[float, typer.Option("--feather", help="Soft edge between mask regions, in pixels.")] = 4.0,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace outputs that already exist.")] = False,
    json_out: JsonOpt = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    vgg: VggOpt = None,
) -> None:
    """Stylize videos, keeping frame rate, frame count and audio; frames are streamed."""
    from dinstyle.io.video import list_videos

    failed = written = skipped = 0
    with _errors(json_out):
        files, problems = list_videos(paths)
        failed += _report(problems, files, json_out)
        st = _stylizer(weights, device, dtype, vgg)
        from dinstyle.io.video import is_video, read_video

        mask_video = mask if mask is not None and is_video(mask) else None
        if mask_video is not None:  # its first frame stands in for the static mask while loading
            frame0 = next(read_video(mask_video)[1], None)
            if frame0 is None:
                raise InputError(f"{q(mask_video)}: the mask video has no frames")
            sty = st.load_regions(style, frame0, feather=feather, mode=mode, style_size=style_size)
        elif mask is not None:
            sty = st.load_regions(style, mask, feather=feather, mode=mode, style_size=style_size)
        else:
            sty = st.load_style(style, mode=mode, style_size=style_size)
        from dinstyle.video import stylize_video, video_output_path

        dests = [video_output_path(f, sty, out, len(files) > 1) for f in files]
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        try:
            for f, dest in zip(files, dests):
                try:
                    if dest.resolve() == f.resolve():
                        raise OutputError(f"{q(dest)}: output would overwrite the input; choose another --out")
                    if dest.exists() and not overwrite:
                        _say(f"skipped {dest}: exists (use --overwrite)")
                        skipped += 1
                        continue
                    # a live bar on a terminal only, gone when done: no stray line before a message
                    with Progress(TextColumn(f"[bold]{escape(f.name)}"), BarColumn(), MofNCompleteColumn(),
                                  TextColumn("{task.fields[fps]} fps"), TextColumn("eta"), TimeRemainingColumn(),
                                  console=err, disable=json_out or not err.is_terminal, transient=True) as prog:
                        task = prog.add_task("frames", total=None, fps="-")
                        rec = stylize_video(st, f, sty, dest, strength=strength, preserve_color=preserve_color,
                                            max_size=max_size, stats=stats, batch_size=batch_size, crf=crf,
                                            codec=codec, mask_video=mask_video,
                                            on_progress=lambda p: prog.update(task, completed=p.frames, total=p.total,
                                                                              fps=f"{p.fps:.1f}"))
                except DinstyleError as e:
                    if len(files) == 1:
                        raise
                    failed += 1
                    _error(e)
                    if json_out:
                        _echo_json({"input": str(f), "output": str(dest), "status": "failed", "error": str(e)})
                    continue
                written += 1
                if json_out:
                    _echo_json(rec)
                else:
                    _say(f"wrote {rec['output']}: {rec['frames']} frames at {rec['fps']} fps, "
                         f"{'audio copied' if rec['audio'] else 'no audio'}, {rec['frames_per_second']} frames/s")
        except KeyboardInterrupt as e:
            err.print(f"{_interrupted(e)[0]}: {written} written, {skipped} skipped, {failed} failed (the video in "
                      "progress was not kept); run the same command again to finish (finished outputs are skipped)")
            raise
    _batch_exit(failed, written + skipped)


@app.command("eval-video")
def eval_video(
    original: Annotated[Path, typer.Argument(help="The input video.")],
    stylized: Annotated[Path, typer.Argument(help="Its stylized version.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Temporal stability: warping error (optical flow on the input) and flicker of a stylized video."""
    with _errors(json_out):
        from dinstyle.io.video import read_video
        from dinstyle.metrics import warping_error

        info_a, a = read_video(original)
        info_b, b = read_video(stylized)
        (wa, ha), (wb, hb) = info_a.size, info_b.size
        if abs(wa / ha - wb / hb) > 0.03 * wa / ha:  # the same picture, maybe scaled (--max-size) or padded
            raise InputError(f"{q(stylized)}: {wb}x{hb} frames, {q(original)}: {wa}x{ha}; not a stylized version "
                             "of it (the pictures differ)")
        counts = [0, 0]

        def counted(frames, i):
            for fr in frames:
                counts[i] += 1
                yield fr

        ca, cb = counted(a, 0), counted(b, 1)
        res = warping_error(ca, cb)
        counts[0] += sum(1 for _ in ca)  # what the shorter clip left unscored
        counts[1] += sum(1 for _ in cb)
        if min(counts) < 2:
            short = original if counts[0] < 2 else stylized
            raise InputError(f"{q(short)}: {min(counts)} frame(s); scoring needs two videos of two or more frames")
        if abs(counts[0] - counts[1]) > 1:
            raise InputError(f"{q(stylized)} has {counts[1]} frames, {q(original)} has {counts[0]}: not a stylized "
                             "version of it (the lengths differ)")
        if json_out:
            _echo_json({"input": str(original), "output": str(stylized), **res})
        else:
            typer.echo(f"{stylized}: warping error {res['warping_error']:.3f}, flicker {res['flicker']:+.3f} "
                       f"(luma change/frame {res['output_luma_change']:.3f}) over {res['pairs']} frame pairs")


@app.command()
def cluster(
    paths: Annotated[list[str], typer.Argument(help="Image files, folders or globs on storage every node sees.", show_default=False)],
    style: Annotated[list[str], typer.Option("--style", "-s", help="Style image or pack (repeat to blend).", show_default=False)],
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Output folder (default ./stylized).")] = None,
    address: Annotated[Optional[str], typer.Option("--address", help="Ray cluster address (default: start a local Ray runtime).")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Actors (default: one per GPU, else one per CPU).")] = None,
    mode: ModeOpt = None,
    strength: Annotated[float, typer.Option("--strength")] = DEFAULTS["strength"],
    style_size: StyleSizeOpt = DEFAULTS["style_size"],
    max_size: Annotated[Optional[int], typer.Option("--max-size")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r")] = False,
    json_out: JsonOpt = False,
    weights: WeightsOpt = None,
    vgg: VggOpt = None,
) -> None:
    """Stylize many files on a Ray cluster: each actor holds the model and the style once."""
    failed = done = 0
    with _errors(json_out):
        from dinstyle.cluster import run_cluster
        from dinstyle.errors import OptionError

        if workers is not None and workers < 1:
            raise OptionError(f"--workers {workers}: must be at least 1")
        st = _stylizer(weights, "cpu", "auto", vgg)  # the driver only encodes the style, once
        sty = st.load_style(style, mode=mode, style_size=style_size)

        def on_record(rec):
            nonlocal failed, done
            if rec["status"] == "failed":
                failed += 1
                _error(rec["error"])
            else:
                done += 1
            if json_out:
                _echo_json({**rec, "style": sty.label})

        run_cluster(paths, sty, out=out, address=address, workers=workers,
                    weights=str(st.weights_dir) if st.info.get("path") else None,
                    options={"strength": strength, "max_size": max_size, "overwrite": overwrite},
                    recursive=recursive, on_record=on_record)
        if not json_out:
            err.print(f"{done} done, {failed} failed")
    _batch_exit(failed, done)


@app.command()
def sheet(
    photo: Annotated[Path, typer.Argument(help="The photo to show in every style.")],
    style: Annotated[list[str], typer.Option("--style", "-s", help="Style images, packs or folders of them.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Sheet image to write.")] = Path("sheet.jpg"),
    strip: Annotated[int, typer.Option("--strip", help="Instead of a sheet: an interpolation strip of N steps (one style: strength 0 -> 1; two styles: A -> B).")] = 0,
    cell: Annotated[int, typer.Option("--cell", help="Long side of each cell in pixels.")] = 256,
    cols: Annotated[Optional[int], typer.Option("--cols", help="Columns (default: about square; a strip is one row).")] = None,
    max_size: Annotated[int, typer.Option("--max-size", help="Long side the photo is stylized at.")] = 512,
    mode: ModeOpt = None,
    style_size: StyleSizeOpt = DEFAULTS["style_size"],
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    vgg: VggOpt = None,
) -> None:
    """A labelled grid of one photo in many styles (how to choose a style), or an interpolation strip."""
    with _errors():
        from dinstyle.io.images import write_image
        from dinstyle.io.sheets import compose_grid
        from dinstyle.sheets import make_sheet, make_strip

        from dinstyle.errors import OptionError

        if cell < 16:
            raise OptionError(f"--cell {cell}: must be at least 16")
        if cols is not None and cols < 1:
            raise OptionError(f"--cols {cols}: must be at least 1")
        if strip < 0 or strip == 1:
            raise OptionError(f"--strip {strip}: must be at least 2 (or 0 for a sheet)")
        if max_size < 16:
            raise OptionError(f"--max-size {max_size}: must be at least 16")
        st = _stylizer(weights, device, "auto", vgg)
        if strip:
            frames = make_strip(st, photo, style, steps=strip, cell=cell, max_size=max_size, style_size=style_size,
                                mode=mode)
            grid = compose_grid(frames, cols=cols or len(frames), cell=cell)
        else:
            grid = make_sheet(st, photo, style, cell=cell, cols=cols, max_size=max_size, style_size=style_size,
                              mode=mode)
        write_image(out, grid)
        err.print(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]})")


@app.command()
def styles(
    sheet_photo: Annotated[Optional[Path], typer.Option("--sheet", help="Render this photo in every built-in style, as one labelled sheet.")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Sheet image to write (with --sheet).")] = Path("sheet.jpg"),
    cell: Annotated[int, typer.Option("--cell", help="Long side of each sheet cell in pixels.")] = 256,
    max_size: Annotated[int, typer.Option("--max-size", help="Long side the photo is stylized at.")] = 512,
    mode: ModeOpt = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the list as JSON.")] = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    vgg: VggOpt = None,
) -> None:
    """The built-in styles (use their names with --style anywhere), or a sheet of a photo in all of them."""
    from dinstyle.builtin_styles import STYLES

    with _errors():
        if sheet_photo is None:
            if json_out:
                typer.echo(json.dumps([s.to_dict() for s in STYLES.values()], indent=2))
                return
            from rich.table import Table

            t = Table(title="built-in styles (dinstyle image photo.jpg --style NAME)")
            for col in ("name", "painter", "work", "year", "licence"):
                t.add_column(col, no_wrap=col in ("name", "year"))
            for s in STYLES.values():
                t.add_row(s.name, s.painter, s.title, s.year, s.licence)
            Console(highlight=False).print(t)
            return
        from dinstyle.io.images import write_image
        from dinstyle.sheets import make_builtin_sheet

        if cell < 16:
            from dinstyle.errors import OptionError

            raise OptionError(f"--cell {cell}: must be at least 16")
        st = _stylizer(weights, device, "auto", vgg)
        with _progress(len(STYLES), True) as prog:
            task = prog.add_task("styles", total=len(STYLES))
            grid = make_builtin_sheet(st, sheet_photo, cell=cell, max_size=max_size, mode=mode or "standard",
                                      on_style=lambda _: prog.advance(task))
        write_image(out, grid)
        err.print(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]})")


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port (0 picks a free one).")] = 8000,
    max_megapixels: Annotated[float, typer.Option("--max-megapixels", help="Largest upload accepted, in megapixels.")] = 50.0,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    vgg: VggOpt = None,
) -> None:
    """A local web page: drop a photo, see it in every built-in style, preview, download."""
    with _errors():
        import socket

        from dinstyle.errors import OptionError

        try:
            import uvicorn

            from dinstyle.web import create_app
        except ImportError as e:
            raise OptionError(f"serve needs the web extras ({e.name} is missing): pip install 'dinstyle[serve]'") from None
        if not 0 <= port <= 65535 or max_megapixels <= 0:
            raise OptionError("--port must be 0..65535 and --max-megapixels > 0")
        try:
            sock = socket.create_server((host, port))
        except OSError as e:
            raise OptionError(f"cannot listen on {host}:{port} ({e.strerror or e})") from None
        app_ = create_app(_stylizer(weights, device, "auto", vgg), max_pixels=int(max_megapixels * 1e6))
        shown = f"[{host}]" if ":" in host else host
        err.print(f"serving on http://{shown}:{sock.getsockname()[1]}/ (Ctrl-C to stop)")
        uvicorn.Server(uvicorn.Config(app_, log_level="warning")).run(sockets=[sock])


@app.command()
def precompute(
    styles: Annotated[list[str], typer.Argument(help="Style images, folders, globs or built-in style names.", show_default=False)],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the .dinpack files.")] = Path("packs"),
    mode: Annotated[str, typer.Option("--mode", help="standard, adaptive or deformable.")] = "standard",
    style_size: StyleSizeOpt = DEFAULTS["style_size"],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace packs that already exist.")] = False,
    json_out: JsonOpt = False,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    vgg: VggOpt = None,
) -> None:
    """Turn style images into style packs (precomputed DIN parameters; skip the style encoder later)."""
    from dinstyle.io.images import expand_inputs
    from dinstyle.packs import PACK_EXT

    from dinstyle.builtin_styles import resolve

    failed = written = 0
    with _errors(json_out):
        files, problems = expand_inputs([str(b.path) if (b := resolve(s)) else s for s in styles])
        failed += _report(problems, files, json_out)
        st = _stylizer(weights, device, "auto", vgg)
        st.check_mode(mode)
        with _progress(len(files), len(files) > 1 and not json_out) as prog:
            task = prog.add_task("encoding styles", total=len(files))
            for f in files:
                dest = out / f"{f.stem}{PACK_EXT}"
                try:
                    if check_output_path(dest).exists() and not overwrite:
                        status = "skipped"
                    else:
                        st.make_pack(f, mode=mode, style_size=style_size).save(dest)
                        status = "done"
                        written += 1
                except DinstyleError as e:
                    failed += 1
                    status = "failed"
                    _error(e)
                    if json_out:
                        _echo_json({"input": str(f), "output": str(dest), "status": status, "error": str(e)})
                if json_out and status != "failed":
                    _echo_json({"input": str(f), "output": str(dest), "status": status, "mode": mode,
                                "style_size": style_size, "model_id": st.model_id})
                elif status == "skipped":
                    _say(f"skipped {dest}: exists (use --overwrite)")
                prog.advance(task)
        if not json_out:
            err.print(f"{written} pack(s) written to {out}, {failed} failed")
    _batch_exit(failed, written)


@app.command()
def info(
    style: Annotated[Optional[Path], typer.Option("--style", "-s", help="A style pack to describe.")] = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Model, weights, parameter count, MACs at 512x512, device; and a style pack's contents."""
    with _errors(json_out):
        from dinstyle.report import describe

        data = describe(weights=weights, device=device, pack=style)
        if json_out:
            _echo_json(data, indent=2)
        else:
            from dinstyle.report import render_info

            render_info(data, Console(highlight=False))


def _floats(text: str | None, n: int, name: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    from dinstyle.errors import OptionError

    try:
        vals = tuple(float(v) for v in text.split(","))
    except ValueError:
        vals = ()
    if len(vals) != n:
        raise OptionError(f"{name} {text}: give {n} comma-separated numbers")
    return vals


@app.command()
def train(
    content: Annotated[Optional[Path], typer.Option("--content", help="Folder of content photos.")] = None,
    style: Annotated[Optional[Path], typer.Option("--style", help="Folder of style images.")] = None,
    data_pack: Annotated[Optional[Path], typer.Option("--data-pack", help="A `dinstyle pack-data` file instead of the folders.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Run folder (checkpoints, log.jsonl, previews).")] = Path("runs/dinstyle"),
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue the run in this folder exactly.")] = None,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start a new run from trained weights (a weights or run folder; a changed decoder keeps what fits).")] = None,
    vgg: VggOpt = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Total steps of the run (sets the schedule) [default: 160000; on --resume: the run's]")] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Stop after this many steps in this call (resume later).")] = None,
    time_budget: Annotated[Optional[float], typer.Option("--time-budget", help="Stop (with a checkpoint) before this many seconds have passed.")] = None,
    checkpoint_minutes: Annotated[Optional[float], typer.Option("--checkpoint-minutes", help="Also checkpoint every this many minutes.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Images per step [default: 8; on --resume: the run's]")] = None,
    crop: Annotated[Optional[int], typer.Option("--crop", help="Content crop size in pixels [default: 256; on --resume: the run's]")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Adam lr of encoder/decoder; the weight/bias nets get 10x [default: 1e-4]")] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", help="Steps of linear lr warm-up from this call's first step [default: 0]")] = None,
    style_weight: Annotated[Optional[float], typer.Option("--style-weight", help="Weight of the style loss (content weight 1).")] = None,
    content_weight: Annotated[Optional[float], typer.Option("--content-weight", help="Weight of the content loss.")] = None,
    style_layers: Annotated[Optional[str], typer.Option("--style-layers", help="Weights of the relu1_1,relu2_1,relu3_1,relu4_1 style terms, e.g. 2,1,1,1.")] = None,
    content_zoom: Annotated[Optional[str], typer.Option("--content-zoom", help="Range of output pixels per photo pixel in content crops, e.g. 1,2.")] = None,
    style_view: Annotated[Optional[int], typer.Option("--style-view", help="See styles whole at this size, as at inference (0: random crops at --style-zoom).")] = None,
    style_zoom: Annotated[Optional[str], typer.Option("--style-zoom", help="Zoom range of style crops when --style-view is 0.")] = None,
    style_cache_dir: Annotated[Optional[Path], typer.Option("--style-cache-dir", help="CPU: keep the styles' VGG-tap cache in this folder (default: the run folder); runs on the same styles share it.")] = None,
    style_texture: Annotated[Optional[float], typer.Option("--style-texture", help="Draw styles in proportion to (texture energy / median) ** this (0: uniformly).")] = None,
    adaptive_prob: Annotated[Optional[float], typer.Option("--adaptive-prob", help="Share of steps trained in the adaptive mode.")] = None,
    deform_kernel: Annotated[Optional[int], typer.Option("--deform-kernel", help="New runs: deformable DIN layers with this k x k kernel (0 = none).")] = None,
    dec_blocks: Annotated[Optional[int], typer.Option("--dec-blocks", help="New runs: residual blocks after each decoder up-step.")] = None,
    deformable_prob: Annotated[Optional[float], typer.Option("--deformable-prob", help="Share of steps trained in the deformable mode.")] = None,
    flat: Annotated[Optional[Path], typer.Option("--flat", help="Folder of flat-colour images mixed into the content stream.")] = None,
    flat_prob: Annotated[Optional[float], typer.Option("--flat-prob", help="Share of flat images in the content stream [default: 0.1 with --flat]")] = None,
    adaptive_flat_prob: Annotated[Optional[float], typer.Option("--adaptive-flat-prob", help="Share of flat images in adaptive-mode steps [default: --flat-prob]")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Threads decoding the images into memory at start-up.")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every")] = None,
    preview_every: Annotated[Optional[int], typer.Option("--preview-every")] = None,
    log_every: Annotated[Optional[int], typer.Option("--log-every", help="Steps between log lines (and loss read-backs from a GPU).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed")] = None,
    device: DeviceOpt = "auto",
    amp: Annotated[Optional[str], typer.Option("--amp", help="auto (bf16 on GPUs and CPUs with bf16 units), bf16, fp16, none.")] = None,
    compile_: Annotated[Optional[str], typer.Option("--compile", help="torch.compile: auto (tried on CUDA, kept if faster), on, off.")] = None,
) -> None:
    """Train MobileNet-DIN (content + BN-statistics style loss on VGG-19); resumable.

    Options left out take the defaults of TrainConfig for a new run; on --resume the run's own
    settings are kept and only the options given replace them from then on."""
    with _errors():
        import dataclasses

        from dinstyle.config import ModelConfig, TrainConfig
        from dinstyle.errors import OptionError
        from dinstyle.runtime import tune_allocator
        from dinstyle.train.loop import train as run_train

        tune_allocator()
        if resume is None and data_pack is None and (content is None or style is None):
            raise OptionError("give --content DIR and --style DIR, --data-pack FILE, or --resume RUN_DIR")
        if resume is not None and init is not None:
            raise OptionError("--init starts a new run; --resume continues one: give one of them")
        if amp is not None and amp not in ("auto", "bf16", "fp16", "none"):
            raise OptionError(f"--amp {amp}: use auto, bf16, fp16 or none")
        if compile_ is not None and compile_ not in ("auto", "on", "off"):
            raise OptionError(f"--compile {compile_}: use auto, on or off")
        for name, v in (("--lr", lr), ("--steps", steps), ("--batch-size", batch_size)):
            if v is not None and v <= 0:
                raise OptionError(f"{name} {v}: must be > 0")
        given = {k: v for k, v in (
            ("batch_size", batch_size), ("crop", crop), ("lr", lr), ("warmup", warmup), ("style_weight", style_weight),
            ("content_weight", content_weight), ("style_layer_weights", _floats(style_layers, 4, "--style-layers")),
            ("content_zoom", _floats(content_zoom, 2, "--content-zoom")), ("style_view", style_view),
            ("style_zoom", _floats(style_zoom, 2, "--style-zoom")), ("style_texture_power", style_texture),
            ("adaptive_prob", adaptive_prob),
            ("deformable_prob", deformable_prob), ("flat_prob", flat_prob), ("adaptive_flat_prob", adaptive_flat_prob),
            ("flat_dir", str(flat) if flat else None), ("data_pack", str(data_pack) if data_pack else None),
            ("seed", seed)) if v is not None}
        if flat and flat_prob is None and resume is None:
            given["flat_prob"] = 0.1
        machine = {k: v for k, v in (("workers", workers), ("checkpoint_every", checkpoint_every),
                                     ("preview_every", preview_every), ("log_every", log_every), ("amp", amp),
                                     ("style_cache_dir", str(style_cache_dir) if style_cache_dir else None),
                                     ("compile", compile_)) if v is not None}
        model_kw = {k: v for k, v in (("deform_kernel", deform_kernel), ("dec_blocks", dec_blocks)) if v is not None}
        if resume is not None and model_kw:
            raise OptionError("--deform-kernel/--dec-blocks shape a new model; they cannot change on --resume")
        base = TrainConfig()
        cfg = dataclasses.replace(base, content_dir=str(content or ""), style_dir=str(style or ""),
                                  vgg=str(vgg) if vgg else None, device=device, steps=steps or base.steps,
                                  model=ModelConfig(**model_kw), **machine, **({} if resume else given))
        run_dir = resume or out
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[losses]}"), TimeRemainingColumn(), console=err) as prog:
            task = prog.add_task("train", total=None, losses="")

            def on_event(ev):
                prog.update(task, completed=ev.step, total=ev.total,
                            losses=f"loss {ev.loss:.3f} (c {ev.content:.3f} s {ev.style:.3f}) {ev.images_per_s:.1f} img/s")

            last = run_train(cfg, run_dir, resume=resume is not None, max_steps=max_steps, on_event=on_event,
                             overrides={**given, **({"steps": steps} if steps else {})} if resume else None,
                             init=init, time_budget=time_budget,
                             checkpoint_seconds=checkpoint_minutes * 60 if checkpoint_minutes else None)
        err.print(f"checkpoint at step {last['step']} in {run_dir} (stopped by {last['stopped_by']})")


@app.command("pack-data")
def pack_data(
    train_dir: Annotated[Path, typer.Argument(help="A folder with content/ and style/ subfolders (e.g. ../shared/data/train).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The pack file to write.")] = Path(".gpu/train.pack"),
    flat: Annotated[Optional[Path], typer.Option("--flat", help="Folder of flat-colour art to include [default: ../flat beside TRAIN_DIR, if present].")] = None,
    max_mb: Annotated[Optional[float], typer.Option("--max-mb", help="Size limit in MiB [default: 64 MiB minus this checkout's tracked files, minus 1 MiB].")] = None,
    size: Annotated[int, typer.Option("--size", help="Square side the images are kept at.")] = 256,
) -> None:
    """Pack a training set into one file that fits a GPU job's transfer limit: original bytes where
    they fit, else WebP at the highest quality that fits (flat art stays lossless), else fewer images."""
    with _errors():
        from dinstyle.errors import OptionError
        from dinstyle.train.data import list_images
        from dinstyle.train.datapack import write_data_pack

        groups = {"content": list_images(train_dir / "content"), "style": list_images(train_dir / "style")}
        flat = flat or (train_dir.parent / "flat" if (train_dir.parent / "flat").is_dir() else None)
        if flat is not None:
            groups["flat"] = list_images(flat)
        if max_mb is None:
            max_mb = 64 - _tracked_mib() - 1
        if max_mb <= 0:
            raise OptionError(f"--max-mb {max_mb:.1f}: must be > 0")
        with _progress(1, True) as prog:
            task = prog.add_task("packing", total=None)
            res = write_data_pack(groups, out, int(max_mb * 2**20), size,
                                  on_progress=lambda msg: prog.update(task, description=f"packing ({msg})"))
        kept = ", ".join(f"{g} {res.counts[g]}/{res.available[g]} ({res.encoding[g]})" for g in res.counts)
        err.print(f"{out}: {res.bytes / 2**20:.1f} MiB (limit {max_mb:.1f} MiB): {kept}")


def _tracked_mib() -> float:
    """Size of this checkout's tracked files (what a GPU job sends besides the pack); 0 outside git."""
    import subprocess

    root = Path(__file__).resolve().parent.parent
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


@app.command()
def bench(
    sizes: Annotated[str, typer.Option("--sizes", help="Comma-separated: 512x512, 1080p, 4K.")] = "512x512,1080p,4K",
    batch_size: Annotated[str, typer.Option("--batch-size", help="Images per forward pass; several comma-separated (1,8,32).")] = "1",
    repeats: Annotated[int, typer.Option("--repeats", help="Timed runs per size (median reported).")] = 5,
    onnx: Annotated[bool, typer.Option("--onnx", help="Also time the exported graph in onnxruntime (CPU).")] = False,
    mode: Annotated[str, typer.Option("--mode", help="DIN mode to measure: standard, adaptive or deformable.")] = "standard",
    compile_: Annotated[bool, typer.Option("--compile", help="Also time a torch.compile'd content path.")] = False,
    cuda_graphs: Annotated[bool, typer.Option("--cuda-graphs", help="Also time the content path replayed as a CUDA graph.")] = False,
    video_stage: Annotated[bool, typer.Option("--video-stage", help="Also time the video path's stylize stage at 1080p (frames/s).")] = False,
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Skip the rows left after this many seconds.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write results: .json or .md.")] = None,
    weights: WeightsOpt = None,
    device: DeviceOpt = "auto",
    dtype: Annotated[str, typer.Option("--dtype", help="auto (fp16 on GPU, fp32 on CPU), fp32, fp16, bf16; several comma-separated.")] = "auto",
) -> None:
    """Parameters, MACs (style and content path at 512²) and median latency per size, batch, dtype
    and speed path, with peak memory."""
    with _errors():
        from dinstyle.bench import run_bench, to_markdown
        from dinstyle.errors import OptionError
        from dinstyle.io.files import atomic_write_bytes
        from dinstyle.runtime import resolve_dtype

        try:
            batches = [int(b) for b in batch_size.split(",") if b.strip()]
        except ValueError:
            batches = []
        if not batches or min(batches) < 1 or repeats < 1:
            raise OptionError("--batch-size (comma-separated) and --repeats must be at least 1")
        names = [d.strip() for d in dtype.split(",") if d.strip()] or ["auto"]
        st = _stylizer(weights, device, names[0])
        dtypes = [resolve_dtype(d, st.device) for d in names]
        variants = ("eager",) + (("compile",) if compile_ else ()) + (("graphs",) if cuda_graphs else ())
        if cuda_graphs and st.device.type != "cuda":
            raise OptionError("--cuda-graphs needs a CUDA device")
        res = run_bench(st, [s.strip() for s in sizes.split(",") if s.strip()], batch=batches, repeats=repeats,
                        onnx=onnx, mode=mode, dtypes=dtypes, variants=variants, video_stage=video_stage,
                        time_limit=time_limit)
        md = to_markdown(res)
        typer.echo(md)
        if out is not None:
            data = json.dumps(res, indent=2) if out.suffix.lower() == ".json" else md
            atomic_write_bytes(out, data.encode())


export_app = typer.Typer(help="Export the model to other runtimes.", no_args_is_help=True)
app.add_typer(export_app, name="export")


@export_app.command("onnx")
def export_onnx_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write.")] = Path("dinstyle.onnx"),
    style: Annotated[Optional[Path], typer.Option("--style", "-s", help="Bake this style (image or pack) into the graph; without it the DIN parameters are graph inputs.")] = None,
    style_size: StyleSizeOpt = DEFAULTS["style_size"],
    opset: Annotated[int, typer.Option("--opset")] = 18,
    weights: WeightsOpt = None,
    vgg: VggOpt = None,
) -> None:
    """Export the content path to ONNX (dynamic height/width) and check it in onnxruntime."""
    with _errors():
        from dinstyle.export import export_onnx

        st = _stylizer(weights, "cpu", "fp32", vgg)
        sty = st.load_style([style], mode="standard", style_size=style_size) if style else None
        res = export_onnx(st, out, sty, opset=opset)
        err.print(f"wrote {res['output']} ({res['bytes'] / 1e6:.1f} MB); onnxruntime matches PyTorch to "
                  f"{res['parity_max_abs_error']:.1e}")


@app.command("export-weights")
def export_weights(
    run_dir: Annotated[Path, typer.Argument(help="A training run folder.")],
    out: Annotated[Path, typer.Option("--out", help="Weights folder to write.")] = Path("weights"),
    vgg: VggOpt = None,
    note: Annotated[str, typer.Option("--note", help="Free text stored in config.json's 'trained' record.")] = "",
) -> None:
    """Turn a training checkpoint into shipped weights (config.json + model.safetensors + VGG fp16)."""
    with _errors():
        from dinstyle.train.loop import export_weights as run_export

        dest = run_export(run_dir, out, vgg_path=str(vgg) if vgg else None, note=note)
        err.print(f"weights written to {dest}")


@app.command("eval")
def eval_cmd(
    content: Annotated[Path, typer.Option("--content", help="Folder of content photos.")],
    style: Annotated[Path, typer.Option("--style", help="Folder of style images.")],
    weights: WeightsOpt = None,
    size: Annotated[int, typer.Option("--size", help="Long side contents are stylized at.")] = 512,
    style_size: StyleSizeOpt = DEFAULTS["style_size"],
    mode: Annotated[str, typer.Option("--mode", help="standard, adaptive or deformable; several comma-separated (standard,adaptive) compare modes on the same pairs.")] = "standard",
    contents: Annotated[Optional[str], typer.Option("--content-glob", help="Only content files matching this glob (e.g. 'flat_*').")] = None,
    strength: Annotated[float, typer.Option("--strength", help="Style strength (0 scores the network's plain reconstruction).")] = 1.0,
    max_pairs: Annotated[Optional[int], typer.Option("--max-pairs", help="Score an evenly spread subset of pairs.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON (a list under \"modes\" when several modes are compared).")] = False,
    device: DeviceOpt = "auto",
    vgg: VggOpt = None,
) -> None:
    """Stylize every content x style pair; report style loss, content loss, SSIM, the share of
    uniform input pixels left flat, the 2-pixel stripe figure (outputs and contents) and seconds
    per image — per DIN mode."""
    with _errors():
        from dinstyle.evaluate import evaluate

        st = _stylizer(weights, device, "auto", vgg)
        modes = [st.check_mode(m.strip()) for m in mode.split(",") if m.strip()]
        rows = []
        with _progress(1, not json_out) as prog:
            for m in modes:
                task = prog.add_task(f"evaluating {m}", total=None)
                res = evaluate(st, content, style, size=size, style_size=style_size, mode=m, max_pairs=max_pairs,
                               content_glob=contents, strength=strength,
                               on_pair=lambda i, n, task=task: prog.update(task, completed=i, total=n))
                rows.append({"weights": st.info.get("path"), "model_id": st.model_id, "mode": m,
                             "size": size, "style_size": style_size, **res.to_dict()})
        if json_out:
            typer.echo(json.dumps(rows[0] if len(rows) == 1 else {"modes": rows}, indent=2))
        else:
            from rich.table import Table

            t = Table(title=f"dinstyle eval ({rows[0]['pairs']} pairs, model {st.model_id})")
            for col in ("mode", "style loss", "content loss", "SSIM", "flat kept flat", "stripe (contents)", "s / image"):
                t.add_column(col, justify="right")
            for r in rows:
                flat = "n/a" if r["flat_const"] is None else f"{r['flat_const']:.3f}"
                t.add_row(r["mode"], f"{r['style_loss']:.3f}", f"{r['content_loss']:.3f}", f"{r['ssim']:.3f}", flat,
                          f"{r['stripe']:.2f} ({r['content_stripe']:.2f})",
                          f"{r['seconds_per_image']:.3f}")
            Console().print(t)


def main() -> None:
    signal.signal(signal.SIGTERM, _on_sigterm)
    code = 0
    try:
        app()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
    except KeyboardInterrupt as e:
        word, code = _interrupted(e)
        err.print(f"[yellow]{word}[/yellow]")
    try:
        sys.stdout.flush()  # --json to a full disk: the last records fail here, not silently at exit
    except OSError as e:
        _drop_stdout()
        _error(f"stdout: cannot write the output ({e.strerror or e})")
        code = code or EXIT_USAGE
    sys.exit(code)


if __name__ == "__main__":
    main()
