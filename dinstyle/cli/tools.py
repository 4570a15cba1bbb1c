"""The commands around the model: train, pack-data, export-weights, export onnx, bench, eval, eval-video."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from dinstyle.cli import options as o
from dinstyle.cli import render
from dinstyle.cli.app import app, export_app
from dinstyle.cli.options import given, stylizer, with_default
from dinstyle.config import STYLIZE, TOOLS
from dinstyle.config import TrainConfig as T


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
    init: Annotated[Optional[Path], typer.Option("--init", help="Start a new run from trained weights (a weights or run folder; a changed decoder keeps what fits). The model options not given are the source's.")] = None,
    vgg: o.Vgg = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help=with_default("Total steps of the run (sets the schedule)", f"{T.steps}; on --resume: the run's"))] = None,
    max_steps: Annotated[Optional[int], typer.Option("--max-steps", help="Stop after this many steps in this call (resume later).")] = None,
    time_budget: Annotated[Optional[float], typer.Option("--time-budget", help="Stop (with a checkpoint) before this many seconds have passed.")] = None,
    checkpoint_minutes: Annotated[Optional[float], typer.Option("--checkpoint-minutes", help="Also checkpoint every this many minutes.")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help=with_default("Images per step", f"{T.batch_size}; on --resume: the run's"))] = None,
    crop: Annotated[Optional[int], typer.Option("--crop", help=with_default("Content crop size in pixels", f"{T.crop}; on --resume: the run's"))] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help=with_default(f"Adam lr of encoder/decoder; the weight/bias nets get {T.param_lr_mult:g}x", T.lr))] = None,
    warmup: Annotated[Optional[int], typer.Option("--warmup", help=with_default("Steps of linear lr warm-up from this call's first step", T.warmup))] = None,
    style_weight: Annotated[Optional[float], typer.Option("--style-weight", help="Weight of the style loss (content weight 1).")] = None,
    content_weight: Annotated[Optional[float], typer.Option("--content-weight", help="Weight of the content loss.")] = None,
    color_weight: Annotated[Optional[float], typer.Option("--color-weight", help="Weight of the colour term (sliced Wasserstein distance of the output's RGB colours to the style's; 0 = off).")] = None,
    palette_weight: Annotated[Optional[float], typer.Option("--palette-weight", help="Weight of the palette term (each output colour near one of the style's and each style colour somewhere in the output, in any shares; 0 = off).")] = None,
    grey_style_weight: Annotated[Optional[float], typer.Option("--grey-style-weight", help="Weight of the luma style term (the style loss on the output's and the painting's grey levels: strokes and patterns, which the palette transfer leaves to the network; 0 = off).")] = None,
    grey_contrast_weight: Annotated[Optional[float], typer.Option("--grey-contrast-weight", help="Weight of the luma contrast term (each output's grey-level statistics nearest to its own painting's among the batch's paintings: distinct strokes per painting; 0 = off).")] = None,
    grey_contrast_temp: Annotated[Optional[float], typer.Option("--grey-contrast-temp", help=with_default("Temperature of the luma contrast term (smaller: pushes until the other paintings are farther)", T.grey_contrast_temp))] = None,
    targets: Annotated[Optional[list[Path]], typer.Option("--targets", help="Distillation: a folder of a teacher's outputs with manifest.csv (target,content,style); repeat for more.")] = None,
    distill_weight: Annotated[Optional[float], typer.Option("--distill-weight", help=with_default("Weight of the distillation term (pixel L1 + multi-scale gradient L1 against the teacher)", T.distill_weight))] = None,
    distill_features: Annotated[Optional[float], typer.Option("--distill-features", help=with_default("Weight of the feature distillation term (MSE of VGG relu1_1..relu3_1 maps against the teacher's output's)", T.distill_feature_weight))] = None,
    distill_prob: Annotated[Optional[float], typer.Option("--distill-prob", help=with_default("Share of steps drawn from the targets' pairs (the rest: the usual data, VGG losses only)", T.distill_prob))] = None,
    ema: Annotated[Optional[float], typer.Option("--ema", help=with_default("Keep an exponential moving average of the weights with this decay (e.g. 0.998: about the last 500 steps); export-weights writes it; 0 = off", T.ema))] = None,
    style_layers: Annotated[Optional[str], typer.Option("--style-layers", help="Weights of the relu1_1,relu2_1,relu3_1,relu4_1 style terms, e.g. 2,1,1,1.")] = None,
    content_zoom: Annotated[Optional[str], typer.Option("--content-zoom", help="Range of output pixels per photo pixel in content crops, e.g. 1,2.")] = None,
    style_view: Annotated[Optional[int], typer.Option("--style-view", help="See styles whole at this size, as at inference (0: random crops at --style-zoom).")] = None,
    style_zoom: Annotated[Optional[str], typer.Option("--style-zoom", help="Zoom range of style crops when --style-view is 0.")] = None,
    style_cache_dir: Annotated[Optional[Path], typer.Option("--style-cache-dir", help="CPU: keep the styles' VGG-tap cache in this folder (default: the run folder); runs on the same styles share it.")] = None,
    style_texture: Annotated[Optional[float], typer.Option("--style-texture", help="Draw styles in proportion to (texture energy / median) ** this (0: uniformly).")] = None,
    adaptive_prob: Annotated[Optional[float], typer.Option("--adaptive-prob", help="Share of steps trained in the adaptive mode.")] = None,
    deform_kernel: Annotated[Optional[int], typer.Option("--deform-kernel", help="New runs: deformable DIN layers with this k x k kernel (0 = none).")] = None,
    dec_blocks: Annotated[Optional[int], typer.Option("--dec-blocks", help="New runs: residual blocks after each decoder up-step.")] = None,
    dec_fine_blocks: Annotated[Optional[int], typer.Option("--dec-fine-blocks", help="New runs: blocks after the last up-step (1/2 resolution) where they differ from --dec-blocks; 0 = extra capacity at 1/4 resolution only.")] = None,
    texture_kernel: Annotated[Optional[int], typer.Option("--texture-kernel", help="New runs: standard DIN layers with a k x k depthwise filter predicted from the style beside the 1x1 weight (0 = none; odd k).")] = None,
    deformable_prob: Annotated[Optional[float], typer.Option("--deformable-prob", help="Share of steps trained in the deformable mode.")] = None,
    flat: Annotated[Optional[Path], typer.Option("--flat", help="Folder of flat-colour images mixed into the content stream.")] = None,
    flat_prob: Annotated[Optional[float], typer.Option("--flat-prob", help=with_default("Share of flat images in the content stream", f"{T.FLAT_PROB_WITH_FLAT} with --flat"))] = None,
    adaptive_flat_prob: Annotated[Optional[float], typer.Option("--adaptive-flat-prob", help=with_default("Share of flat images in adaptive-mode steps", "--flat-prob"))] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="Threads decoding the images into memory at start-up.")] = None,
    checkpoint_every: Annotated[Optional[int], typer.Option("--checkpoint-every")] = None,
    preview_every: Annotated[Optional[int], typer.Option("--preview-every")] = None,
    log_every: Annotated[Optional[int], typer.Option("--log-every", help="Steps between log lines (and loss read-backs from a GPU).")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed")] = None,
    device: o.Device = None,
    amp: Annotated[Optional[str], typer.Option("--amp", help="auto (bf16 on GPUs and CPUs with bf16 units), bf16, fp16, none.")] = None,
    compile_: Annotated[Optional[str], typer.Option("--compile", help="torch.compile: auto (tried on CUDA, kept if faster), on, off.")] = None,
) -> None:
    """Train MobileNet-DIN (content + BN-statistics style loss on VGG-19); resumable.

    Options left out take the defaults of TrainConfig for a new run; on --resume the run's own
    settings are kept and only the options given replace them from then on."""
    with render.errors():
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from dinstyle.runtime import tune_allocator
        from dinstyle.train.loop import train as run_train
        from dinstyle.train.options import call_config

        def path(p: Path | None) -> str | None:
            return None if p is None else str(p)

        tune_allocator()
        options = dict(
            content_dir=path(content), style_dir=path(style), data_pack=path(data_pack), vgg=path(vgg), steps=steps,
            batch_size=batch_size, crop=crop, lr=lr, warmup=warmup, style_weight=style_weight,
            content_weight=content_weight, color_weight=color_weight, palette_weight=palette_weight,
            grey_style_weight=grey_style_weight, grey_contrast_weight=grey_contrast_weight, grey_contrast_temp=grey_contrast_temp, targets=tuple(str(t) for t in targets) if targets else None, distill_weight=distill_weight, distill_feature_weight=distill_features, distill_prob=distill_prob, ema=ema, style_layer_weights=_floats(style_layers, 4, "--style-layers"),
            content_zoom=_floats(content_zoom, 2, "--content-zoom"), style_view=style_view,
            style_zoom=_floats(style_zoom, 2, "--style-zoom"), style_cache_dir=path(style_cache_dir),
            style_texture_power=style_texture, adaptive_prob=adaptive_prob, deformable_prob=deformable_prob,
            flat_dir=path(flat), flat_prob=flat_prob, adaptive_flat_prob=adaptive_flat_prob, workers=workers,
            checkpoint_every=checkpoint_every, preview_every=preview_every, log_every=log_every, seed=seed,
            device=device, amp=amp, compile=compile_, deform_kernel=deform_kernel, dec_blocks=dec_blocks,
            dec_fine_blocks=dec_fine_blocks, texture_kernel=texture_kernel)
        cfg, overrides = call_config(options, resume=resume is not None, init=init)
        run_dir = resume or out
        with Progress(TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[losses]}"), TimeRemainingColumn(), console=render.err) as prog:
            task = prog.add_task("train", total=None, losses="")

            def on_event(ev):
                prog.update(task, completed=ev.step, total=ev.total,
                            losses=f"loss {ev.loss:.3f} (c {ev.content:.3f} s {ev.style:.3f}"
                                   + ("" if ev.distill != ev.distill else f" d {ev.distill:.3f}") + f") {ev.images_per_s:.1f} img/s")

            last = run_train(cfg, run_dir, resume=resume is not None, max_steps=max_steps, on_event=on_event,
                             overrides=overrides, init=init, time_budget=time_budget,
                             checkpoint_seconds=checkpoint_minutes * 60 if checkpoint_minutes else None)
        render.err.print(f"checkpoint at step {last['step']} in {run_dir} (stopped by {last['stopped_by']})")


@app.command("pack-data")
def pack_data(
    train_dir: Annotated[Path, typer.Argument(help="A folder with content/ and style/ subfolders (e.g. ../shared/data/train).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The pack file to write.")] = Path(".gpu/train.pack"),
    flat: Annotated[Optional[Path], typer.Option("--flat", help="Folder of flat-colour art to include [default: ../flat beside TRAIN_DIR, if present].")] = None,
    max_mb: Annotated[Optional[float], typer.Option("--max-mb", help="Size limit in MiB [default: 64 MiB minus this checkout's tracked files, minus 1 MiB].")] = None,
    size: Annotated[Optional[int], typer.Option("--size", help=with_default("Square side the images are kept at.", TOOLS.data_pack_size))] = None,
) -> None:
    """Pack a training set into one file that fits a GPU job's transfer limit: original bytes where
    they fit, else WebP at the highest quality that fits (flat art stays lossless), else fewer images."""
    with render.errors():
        from dinstyle.train.datapack import pack_training_set

        with render.progress(True) as prog:
            task = prog.add_task("packing", total=None)
            res = pack_training_set(train_dir, out, flat=flat, max_mb=max_mb, **given(size=size),
                                    on_progress=lambda msg: prog.update(task, description=f"packing ({msg})"))
        kept = ", ".join(f"{g} {res.counts[g]}/{res.available[g]} ({res.encoding[g]})" for g in res.counts)
        render.err.print(f"{out}: {res.bytes / 2**20:.1f} MiB (limit {res.limit / 2**20:.1f} MiB): {kept}")


@app.command("export-weights")
def export_weights(
    run_dir: Annotated[Path, typer.Argument(help="A training run folder.")],
    out: Annotated[Path, typer.Option("--out", help="Weights folder to write.")] = Path("weights"),
    vgg: o.Vgg = None,
    note: Annotated[str, typer.Option("--note", help="Free text stored in config.json's 'trained' record.")] = "",
    raw: Annotated[bool, typer.Option("--raw", help="Write the trained weights, not the run's weight average (runs trained with --ema).")] = False,
) -> None:
    """Turn a training checkpoint into shipped weights (config.json + model.safetensors + VGG fp16);
    a run trained with --ema gives its weight average."""
    with render.errors():
        from dinstyle.train.checkpoints import export_weights as run_export

        dest = run_export(run_dir, out, vgg_path=str(vgg) if vgg else None, note=note, raw=raw)
        render.err.print(f"weights written to {dest}")


@export_app.command("onnx")
def export_onnx_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="ONNX file to write.")] = Path("dinstyle.onnx"),
    style: Annotated[Optional[Path], typer.Option("--style", "-s", help="Bake this style (image, pack or built-in name) into the graph; without it the DIN parameters are graph inputs.")] = None,
    style_size: o.StyleSize = None,
    opset: Annotated[Optional[int], typer.Option("--opset", help=with_default("ONNX opset.", TOOLS.opset))] = None,
    weights: o.Weights = None,
    vgg: o.Vgg = None,
) -> None:
    """Export the content path to ONNX (dynamic height/width) and check it in onnxruntime."""
    with render.errors():
        from dinstyle.export import export_onnx

        st = stylizer(weights, "cpu", "fp32", vgg)
        sty = st.load_style([style], mode="standard", **given(style_size=style_size)) if style else None
        res = export_onnx(st, out, sty, **given(opset=opset))
        render.err.print(f"wrote {res['output']} ({res['bytes'] / 1e6:.1f} MB); onnxruntime matches PyTorch to "
                         f"{res['parity_max_abs_error']:.1e}")


@app.command()
def bench(
    sizes: Annotated[Optional[str], typer.Option("--sizes", help=with_default("Comma-separated: 512x512, 1080p, 4K.", TOOLS.bench_sizes))] = None,
    batch_size: Annotated[Optional[str], typer.Option("--batch-size", help=with_default("Images per forward pass; several comma-separated (1,8,32).", TOOLS.bench_batch))] = None,
    repeats: Annotated[Optional[int], typer.Option("--repeats", help=with_default("Timed runs per size (median reported).", TOOLS.bench_repeats))] = None,
    onnx: Annotated[bool, typer.Option("--onnx", help="Also time the exported graph in onnxruntime (CPU).")] = False,
    mode: Annotated[Optional[str], typer.Option("--mode", help=with_default("DIN mode to measure: standard, adaptive or deformable.", "standard"))] = None,
    compile_: Annotated[bool, typer.Option("--compile", help="Also time a torch.compile'd content path.")] = False,
    cuda_graphs: Annotated[bool, typer.Option("--cuda-graphs", help="Also time the content path replayed as a CUDA graph.")] = False,
    video_stage: Annotated[bool, typer.Option("--video-stage", help="Also time the video path's stylize stage at 1080p (frames/s).")] = False,
    time_limit: Annotated[Optional[float], typer.Option("--time-limit", help="Skip the rows left after this many seconds.")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write results: .json or .md.")] = None,
    weights: o.Weights = None,
    device: o.Device = None,
    dtype: Annotated[Optional[str], typer.Option("--dtype", help=with_default("auto (fp16 on GPU, fp32 on CPU), fp32, fp16, bf16; several comma-separated.", "auto"))] = None,
) -> None:
    """Parameters, MACs (style and content path at 512²) and median latency per size, batch, dtype
    and speed path, with peak memory."""
    with render.errors():
        from dinstyle.errors import OptionError
        from dinstyle.io.files import atomic_write_bytes
        from dinstyle.runtime import resolve_dtype
        from dinstyle.timing import run_bench, to_markdown

        def names(text: str | None) -> list[str] | None:
            return None if text is None else [s.strip() for s in text.split(",") if s.strip()]

        try:
            batches = None if batch_size is None else [int(b) for b in names(batch_size)]
        except ValueError:
            batches = []
        if batches is not None and (not batches or min(batches) < 1) or (repeats is not None and repeats < 1):
            raise OptionError("--batch-size (comma-separated) and --repeats must be at least 1")
        dtype_names = names(dtype) or ["auto"]
        st = stylizer(weights, device, dtype_names[0])
        variants = ("eager",) + (("compile",) if compile_ else ()) + (("graphs",) if cuda_graphs else ())
        if cuda_graphs and st.device.type != "cuda":
            raise OptionError("--cuda-graphs needs a CUDA device")
        res = run_bench(st, names(sizes), onnx=onnx, dtypes=[resolve_dtype(d, st.device) for d in dtype_names],
                        variants=variants, video_stage=video_stage, time_limit=time_limit,
                        **given(batch=batches, repeats=repeats, mode=mode))
        md = to_markdown(res)
        typer.echo(md)
        if out is not None:
            data = json.dumps(res, indent=2) if out.suffix.lower() == ".json" else md
            atomic_write_bytes(out, data.encode())


@app.command("eval")
def eval_cmd(
    content: Annotated[Path, typer.Option("--content", help="Folder of content photos.")],
    style: Annotated[Path, typer.Option("--style", help="Folder of style images.")],
    weights: o.Weights = None,
    size: Annotated[Optional[int], typer.Option("--size", help=with_default("Long side contents are stylized at.", TOOLS.eval_size))] = None,
    style_size: o.StyleSize = None,
    mode: Annotated[str, typer.Option("--mode", help="standard, adaptive or deformable; several comma-separated (standard,adaptive) compare modes on the same pairs.")] = "standard",
    contents: Annotated[Optional[str], typer.Option("--content-glob", help="Only content files matching this glob (e.g. 'flat_*').")] = None,
    strength: Annotated[Optional[float], typer.Option("--strength", help=with_default("Style strength (0 scores the network's plain reconstruction).", STYLIZE.strength))] = None,
    palette: Annotated[Optional[float], typer.Option("--palette", help=with_default("Palette transfer onto the painting's colours (0 scores the network's own colours).", STYLIZE.palette))] = None,
    tone: Annotated[Optional[float], typer.Option("--tone", help=with_default("Tone guidance: the outputs' broad light and dark moved that far to the photo's (0 scores the network's own).", STYLIZE.tone))] = None,
    supersample: o.Supersample = None,
    max_pairs: Annotated[Optional[int], typer.Option("--max-pairs", help="Score an evenly spread subset of pairs.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print the result as JSON (a list under \"modes\" when several modes are compared).")] = False,
    outputs: Annotated[Optional[Path], typer.Option("--outputs", help="Score another tool's outputs of the same pairs instead of stylizing: DIR/<style stem>/<content stem>.png at the eval size.")] = None,
    device: o.Device = None,
    vgg: o.Vgg = None,
) -> None:
    """Stylize every content x style pair; report style loss, content loss, SSIM, the share of
    uniform input pixels left flat, the 2-pixel stripe figure (outputs and contents), the colour
    distance to the style (outputs and contents: 8x8x8 RGB histograms, Hellinger), texture
    distinctness over the grid (own style nearest of all, RGB and grey; chance 1/styles) and
    seconds per image — per DIN mode."""
    with render.errors():
        from dinstyle.evaluate import evaluate_modes

        st = stylizer(weights, device, None, vgg)
        with render.progress(not json_out) as prog:
            tasks = {}

            def on_event(ev):
                if ev.input not in tasks:
                    tasks[ev.input] = prog.add_task(f"evaluating {ev.input}", total=None)
                prog.update(tasks[ev.input], completed=ev.step, total=ev.steps)

            rows = evaluate_modes(st, content, style, [m.strip() for m in mode.split(",") if m.strip()],
                                  content_glob=contents, max_pairs=max_pairs, on_event=on_event, outputs=outputs,
                                  **given(size=size, style_size=style_size, strength=strength, palette=palette, tone=tone,
                                          supersample=supersample))
        if json_out:
            typer.echo(json.dumps(rows[0] if len(rows) == 1 else {"modes": rows}, indent=2))
        else:
            render.eval_table(rows, st.model_id)


@app.command("eval-video")
def eval_video(
    original: Annotated[Path, typer.Argument(help="The input video.")],
    stylized: Annotated[Path, typer.Argument(help="Its stylized version.")],
    json_out: o.JsonResult = False,
) -> None:
    """Temporal stability: warping error (optical flow on the input) and flicker of a stylized video."""
    with render.errors(json_out):
        from dinstyle.metrics import video_stability

        res = video_stability(original, stylized)
        if json_out:
            render.echo_json({"input": str(original), "output": str(stylized), **res})
        else:
            typer.echo(f"{stylized}: warping error {res['warping_error']:.3f}, flicker {res['flicker']:+.3f} "
                       f"(luma change/frame {res['output_luma_change']:.3f}) over {res['pairs']} frame pairs")
