"""Many inputs: planning (output names, skip / overwrite / refuse) and running batches of images,
videos and style packs, reporting each input as an ``Event``.

Planning is pure (``plan_outputs``, ``plan_video_outputs``, ``pack_outputs``, ``target_problem``);
running takes a loaded ``Stylizer`` and calls ``on_event`` once per input (and with "progress"
events inside a long one, e.g. a video's frames). One bad input is reported and the batch goes on.
"""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from dinstyle import builtin_styles
from dinstyle.config import STYLIZE
from dinstyle.errors import DinstyleError, InputError, OptionError, OutputError, ResourceError
from dinstyle.events import Event
from dinstyle.io.files import check_output_path, q, remove_stale_temps
from dinstyle.io.images import EXT_BY_FORMAT, FORMAT_BY_EXT, LoadedImage, expand_inputs, read_image, write_image
from dinstyle.io.video import VIDEO_EXTS
from dinstyle.packs import PACK_EXT
from dinstyle.runner import check_render_options

if TYPE_CHECKING:
    from dinstyle.engine import Stylizer
    from dinstyle.styles import AnyStyle


@dataclass
class Summary:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    events: list[Event] = field(default_factory=list)

    def add(self, ev: Event) -> None:
        if ev.status in ("done", "skipped", "failed"):
            self.events.append(ev)
            setattr(self, ev.status, getattr(self, ev.status) + 1)


def _emitter(summary: Summary, on_event: Callable[[Event], None] | None) -> Callable[[Event], None]:
    def emit(ev: Event) -> None:
        summary.add(ev)
        if on_event:
            on_event(ev)
    return emit


# -- planning ------------------------------------------------------------------------------------

def output_label(style: "AnyStyle") -> str:
    """The style's part of an output name: its label made file-safe, plus the mode unless standard."""
    label = "".join(c if c.isalnum() or c in "+-." else "_" for c in style.label)
    return label if style.mode == "standard" else f"{label}_{style.mode}"


def plan_outputs(files: list[Path], style: "AnyStyle", out: str | Path | None, fmt: str | None) -> dict[Path, Path]:
    """Output path for every input image: ``<out>/<stem>_<style>.<ext>``, or ``out`` itself for one file.

    Inputs that share a stem get ``-2``, ``-3`` ... so no output is written twice."""
    out_path = check_output_path(Path(out) if out is not None else Path(STYLIZE.out))
    single_file = out is not None and out_path.suffix.lower() in FORMAT_BY_EXT and not out_path.is_dir()
    if single_file and len(files) > 1:
        raise OptionError(f"--out {q(out_path)}: a file name takes one input; give a folder for {len(files)} inputs")
    if single_file and fmt and FORMAT_BY_EXT[out_path.suffix.lower()] != FORMAT_BY_EXT.get(EXT_BY_FORMAT.get(fmt.lower(), "")):
        raise OptionError(f"--format {fmt} conflicts with --out {q(out_path)}: the file name's extension sets the "
                          "format; give one of them")
    if out_path.exists() and not out_path.is_dir() and not single_file:
        raise OutputError(f"--out {q(out_path)}: exists and is not a folder")
    plan: dict[Path, Path] = {}
    used: set[str] = set()
    label = output_label(style)
    for f in files:
        if single_file:
            plan[f] = out_path
            continue
        if fmt:
            ext = EXT_BY_FORMAT[fmt.lower()]
        else:
            ext = f.suffix.lower() if f.suffix.lower() in FORMAT_BY_EXT else ".png"
            ext = ".png" if ext == ".gif" else ext
        plan[f] = out_path / unique_name(f.stem, f"_{label}{ext}", used)
    return plan


def unique_name(stem: str, tail: str, used: set[str]) -> str:
    """``<stem><tail>``, or ``<stem>-2<tail>``, ``-3`` ... when an earlier input of the same call took
    that name (compared without case); the name is added to ``used``."""
    name, k = f"{stem}{tail}", 1
    while name.lower() in used:
        k += 1
        name = f"{stem}-{k}{tail}"
    used.add(name.lower())
    return name


def plan_video_outputs(files: list[Path], style: "AnyStyle", out: str | Path | None) -> dict[Path, Path]:
    """Output path for every input video: ``<out>/<stem>_<style>.mp4``, or ``out`` itself (a video
    file name) for one input. Inputs that share a stem get ``-2``, ``-3`` ..."""
    plan = {}
    used: set[str] = set()
    for src in files:
        name = unique_name(src.stem, f"_{output_label(style)}.mp4", used)
        if out is None:
            plan[src] = check_output_path(Path(STYLIZE.out) / name)
            continue
        dest = check_output_path(out)
        if dest.suffix.lower() in VIDEO_EXTS and not dest.is_dir():
            if len(files) > 1:
                raise OptionError(f"--out {q(dest)}: a file name takes one input video; give a folder")
            plan[src] = dest
        else:
            plan[src] = check_output_path(dest / name)
    return plan


def pack_outputs(files: list[Path], out: str | Path) -> dict[Path, Path]:
    """``<out>/<stem>.dinpack`` for every style image; styles that share a stem get ``-2``, ``-3`` ..."""
    used: set[str] = set()
    return {src: check_output_path(Path(out) / unique_name(src.stem, PACK_EXT, used)) for src in files}


def target_problem(src: Path, dst: Path, *, overwrite: bool, inputs: set[Path] | None = None) -> tuple[str, str] | None:
    """Why ``src`` -> ``dst`` is not run: ("failed", reason) when the output would overwrite an
    input, ("skipped", reason) when it exists and ``overwrite`` is off; None: run it."""
    inputs = inputs if inputs is not None else {src.resolve()}
    if dst.resolve() in inputs:
        return "failed", f"{q(dst)}: output would overwrite an input; choose another --out"
    if dst.exists() and not overwrite:
        return "skipped", "exists (use --overwrite)"
    return None


def check_image_options(*, max_size: int | None = None, fmt: str | None = None, batch_size: int = 1) -> None:
    if batch_size < 1:
        raise OptionError(f"--batch-size {batch_size}: must be at least 1")
    if max_size is not None and max_size < 8:
        raise OptionError(f"--max-size {max_size}: must be at least 8")
    if fmt is not None and fmt.lower() not in EXT_BY_FORMAT:
        raise OptionError(f"--format {fmt}: unknown (use {', '.join(sorted(set(EXT_BY_FORMAT)))})")


@dataclass
class ImagePlan:
    """The images of a batch: the files found (in order), the inputs that were not, and each file's output."""

    files: list[Path]
    problems: list[str]
    outputs: dict[Path, Path]


def plan_images(inputs: list[str], style: "AnyStyle", *, out: str | Path | None = None, fmt: str | None = None,
                recursive: bool = False) -> ImagePlan:
    """Files, folders and globs -> an ImagePlan; InputError when no image is found at all."""
    check_image_options(fmt=fmt)
    files, problems = expand_inputs(inputs, recursive=recursive)
    if not files:
        raise InputError(problems[0] if problems else "no input images given")
    return ImagePlan(files, problems, plan_outputs(files, style, out, fmt))


def style_files(specs: list[str]) -> tuple[list[Path], list[str]]:
    """Style images from files, folders, globs and built-in style names (precompute's inputs)."""
    return expand_inputs([str(b.path) if (b := builtin_styles.resolve(s)) else s for s in specs])


# -- running -------------------------------------------------------------------------------------

def run_images(st: "Stylizer", inputs: list[str] | ImagePlan, style: "AnyStyle", *, out: str | Path | None = None,
               strength: float = STYLIZE.strength, palette: float = STYLIZE.palette, tone: float = STYLIZE.tone,
               supersample: float = STYLIZE.supersample, preserve_color: bool = False, max_size: int | None = None,
               fmt: str | None = None, batch_size: int = STYLIZE.batch_size, overwrite: bool = False,
               recursive: bool = False, tile: int | None = None,
               on_event: Callable[[Event], None] | None = None) -> Summary:
    """Stylize files, folders and globs (or an ``ImagePlan`` of them) into ``out``; one bad file is
    reported and skipped. Images of one size that get the same parameters run together,
    ``batch_size`` at a time."""
    check_image_options(max_size=max_size, fmt=fmt, batch_size=batch_size)
    check_render_options(strength, palette, tone, supersample)
    if not isinstance(inputs, ImagePlan):
        inputs = plan_images(inputs, style, out=out, fmt=fmt, recursive=recursive)
    files, problems, plan = inputs.files, inputs.problems, inputs.outputs
    total = len(files) + len(problems)
    summary = Summary()
    emit = _emitter(summary, on_event)

    def item(status: str, idx: int, src, dst, error: str | None = None, seconds: float = 0.0, size=None,
             mode: str | None = None) -> None:
        rec = {"input": str(src), "style": style.label, "mode": mode or style.mode,
               "output": None if dst is None else str(dst), "status": status, "size": list(size) if size else None,
               "seconds": round(seconds, 4)}
        if error:
            rec["error"] = error
        emit(Event(status, idx, total, str(src), None if dst is None else str(dst), seconds, size, error, mode, rec))

    for i, msg in enumerate(problems):
        item("failed", i, msg.split(":")[0], None, error=msg)
    # a batch: same size and same parameters (--mode auto and --color-match decide per image, once)
    pending: list[tuple[int, Path, Path, LoadedImage]] = []
    batch_style = None

    def flush() -> None:
        if not pending:
            return
        t0 = time.perf_counter()
        try:
            outs = st.runner.stylize_resilient([p[3].rgb for p in pending], batch_style, strength=strength,
                                               palette=palette, tone=tone, supersample=supersample,
                                               preserve_color=preserve_color, tile=tile)
        except ResourceError as e:  # this image is too large here; the others may still fit
            for idx, src, dst, _ in pending:
                item("failed", idx, src, dst, error=f"{q(src)}: {e}")
            pending.clear()
            return
        per = (time.perf_counter() - t0) / len(pending)
        for (idx, src, dst, img), rgb in zip(pending, outs):
            t1 = time.perf_counter()
            try:
                write_image(dst, rgb, img.alpha)
            except DinstyleError as e:
                item("failed", idx, src, dst, error=str(e))
                continue
            item("done", idx, src, dst, seconds=per + time.perf_counter() - t1, size=(rgb.shape[1], rgb.shape[0]),
                 mode=batch_style.mode)
        pending.clear()

    inputs_set = {f.resolve() for f in files}
    remove_stale_temps(plan.values())  # what a killed earlier run of this batch left behind
    for idx, src in enumerate(files, start=len(problems)):
        dst = plan[src]
        try:
            check_output_path(dst)
        except OutputError as e:
            item("failed", idx, src, dst, error=str(e))
            continue
        why = target_problem(src, dst, overwrite=overwrite, inputs=inputs_set)
        if why is not None:
            item(why[0], idx, src, dst, error=why[1])
            continue
        try:
            img = read_image(src, max_size=max_size)  # downscaled while decoding (no full-size copy)
        except InputError as e:
            item("failed", idx, src, None, error=str(e))
            continue
        try:
            chosen = style.for_image(img.rgb)
        except ResourceError as e:  # --color-match re-encodes the style for this image
            item("failed", idx, src, dst, error=f"{q(src)}: {e}")
            continue
        if pending and (pending[0][3].rgb.shape != img.rgb.shape or chosen is not batch_style
                        or len(pending) >= batch_size):
            flush()
        batch_style = chosen
        pending.append((idx, src, dst, img))
        if len(pending) >= batch_size:
            flush()
    flush()
    return summary


def run_videos(st: "Stylizer", files: list[Path], style: "AnyStyle", *, out: str | Path | None = None,
               overwrite: bool = False, on_event: Callable[[Event], None] | None = None, **options) -> Summary:
    """Stylize videos one after another (``options``: those of ``frames.stylize_video``). With one
    input its error is raised; with several, reported and the next one goes on."""
    from dinstyle.frames import stylize_video

    plan = plan_video_outputs(files, style, out)
    summary = Summary()
    emit = _emitter(summary, on_event)
    for idx, src in enumerate(files):
        dest = plan[src]
        common = dict(index=idx, total=len(files), input=str(src), output=str(dest))
        try:
            why = target_problem(src, dest, overwrite=overwrite)
            if why is not None and why[0] == "failed":
                raise OutputError(f"{q(dest)}: output would overwrite the input; choose another --out")
            if why is not None:
                emit(Event("skipped", error=why[1], **common))
                continue
            rec = stylize_video(st, src, style, dest, **options,
                                on_event=lambda ev: emit(dataclasses.replace(ev, index=idx, total=len(files))))
        except DinstyleError as e:
            if len(files) == 1:
                raise
            emit(Event("failed", error=str(e), record={"input": str(src), "output": str(dest), "status": "failed",
                                                       "error": str(e)}, **common))
            continue
        emit(Event("done", seconds=rec["seconds"], size=tuple(rec["size"]), mode=rec["mode"], record=rec, **common))
    return summary


def run_packs(st: "Stylizer", files: list[Path], *, out: str | Path, mode: str = "standard",
              style_size: int = STYLIZE.style_size, overwrite: bool = False,
              on_event: Callable[[Event], None] | None = None) -> Summary:
    """Encode style images into style packs ``<out>/<stem>.dinpack``."""
    st.check_mode(mode)
    summary = Summary()
    emit = _emitter(summary, on_event)
    plan = pack_outputs(files, out)
    for idx, src in enumerate(files):
        dest = plan[src]
        try:
            if dest.exists() and not overwrite:
                status = "skipped"
            else:
                st.make_pack(src, mode=mode, style_size=style_size).save(dest)
                status = "done"
        except DinstyleError as e:
            emit(Event("failed", idx, len(files), str(src), str(dest), error=str(e), mode=mode,
                       record={"input": str(src), "output": str(dest), "status": "failed", "error": str(e)}))
            continue
        emit(Event(status, idx, len(files), str(src), str(dest), mode=mode,
                   error="exists (use --overwrite)" if status == "skipped" else None,
                   record={"input": str(src), "output": str(dest), "status": status, "mode": mode,
                           "style_size": style_size, "model_id": st.model_id}))
    return summary
