"""What `dinstyle bench` measures: parameters, MACs and median latency of the content path, with
peak memory (benchmarks/ holds the scripts that compare it with other networks)."""
from __future__ import annotations

import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dinstyle.config import TOOLS
from dinstyle.engine import Stylizer
from dinstyle.model import DinParams
from dinstyle.model.vgg import PARAMETERS as VGG19_TO_RELU4_1_PARAMS
from dinstyle.runtime import cpu_name

SIZES = {"512x512": (512, 512), "1080p": (1080, 1920), "4K": (2160, 3840)}


def machine_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{cpu_name()}, {torch.get_num_threads()} threads"


def random_params(st: Stylizer, n: int = 1, mode: str = "standard") -> DinParams:
    """The parameters of a random style (the same every time), for a batch of ``n``, on the model's device."""
    g = torch.Generator().manual_seed(0)
    feats = {t: torch.rand(1, din.style_channels, 16, 16, generator=g) * 50
             for t, din in zip(st.model.cfg.style_taps, st.model.dins)}
    with torch.inference_mode(), st.on_device("cpu") as model:
        params = model.style_params(feats, mode)
    return params.to(st.device).expand(n)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_content_path(model, params, h: int, w: int, *, batch: int = 1, repeats: int = 5, warmup: int = 1,
                      device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32,
                      variant: str = "eager") -> float:
    """Median seconds of one forward pass of the content path on (batch, 3, h, w).

    ``variant``: "eager"; "compile" (torch.compile, warm-up compiles); "graphs" (CUDA graph of the
    whole forward, replayed: no per-kernel launch cost)."""
    x = torch.rand(batch, 3, h, w, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    reduced = device.type == "cuda" and dtype != torch.float32

    def amp():
        return torch.autocast("cuda", dtype=dtype, enabled=reduced, cache_enabled=variant != "graphs")

    fn = model
    if variant == "compile":
        fn = torch.compile(model, dynamic=False)
        warmup = max(warmup, 2)
    with torch.inference_mode():
        if variant == "graphs":
            if device.type != "cuda":
                raise ValueError("CUDA graphs need a CUDA device")
            side = torch.cuda.Stream(device)
            side.wait_stream(torch.cuda.current_stream(device))
            with torch.cuda.stream(side), amp():
                for _ in range(2):
                    model(x, params)
            torch.cuda.current_stream(device).wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph), amp():
                model(x, params)

            def run():
                graph.replay()
        else:
            def run():
                with amp():
                    fn(x, params)
        ts = []
        for i in range(warmup + repeats):
            _sync(device)
            t0 = time.perf_counter()
            run()
            _sync(device)
            if i >= warmup:
                ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def time_video_stage(st: Stylizer, style, h: int, w: int, batch: int, repeats: int = 5) -> float:
    """Median seconds of the video path's stylize stage for one batch of uint8 frames: upload,
    content path, download — ``Stylizer.stylize`` exactly as ``dinstyle video`` calls it."""
    import numpy as np

    frames = [np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8) for i in range(batch)]
    ts = []
    for i in range(1 + repeats):
        _sync(st.device)
        t0 = time.perf_counter()
        st.stylize(frames, style, tile=0)
        _sync(st.device)
        if i:
            ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bench(st: Stylizer, sizes: list[str] | None = None, *, batch: int | list[int] = TOOLS.bench_batch,
              repeats: int = TOOLS.bench_repeats, onnx: bool = False,
              mode: str = "standard", dtypes: list[torch.dtype] | None = None, variants: tuple[str, ...] = ("eager",),
              video_stage: bool = False, time_limit: float | None = None) -> dict:
    """Latency rows for every size x batch x dtype x variant (``variants``: eager, compile, graphs).
    An optional variant that fails is recorded with its error and the bench goes on; rows past
    ``time_limit`` seconds are skipped (and listed)."""
    from dinstyle.errors import OptionError

    t_start = time.perf_counter()
    sizes = list(TOOLS.bench_sizes) if sizes is None else sizes
    st.check_mode(mode)
    for name in sizes:
        if name not in SIZES:
            raise OptionError(f"--sizes: unknown size {name} (use {', '.join(SIZES)})")
    batches = [batch] if isinstance(batch, int) else list(batch)
    dtypes = dtypes or [st.dtype]
    model = st.model
    macs_c = st.content_macs(mode)
    macs_s = st.style_macs(mode)
    onnx = onnx and mode == "standard"
    rows, skipped = [], []
    onnx_path = None
    if onnx:
        from dinstyle.styles import Style
        from dinstyle.export import export_onnx

        onnx_path = Path(tempfile.mkdtemp()) / "bench.onnx"
        export_onnx(st, onnx_path, Style(params=random_params(st, 1, mode), label="bench"), check=False)
    params_by_batch = {b: random_params(st, b, mode) for b in batches}

    def over(label: str) -> bool:  # the first row always runs
        if rows and time_limit is not None and time.perf_counter() - t_start > time_limit:
            skipped.append(label)
            return True
        return False

    def timed_row(variant: str, name: str, b: int, dt: torch.dtype) -> None:
        h, w = SIZES[name]
        if over(f"{name} b{b} {str(dt).replace('torch.', '')} {variant}"):
            return
        if st.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(st.device)
        row = {"size": name, "batch": b, "dtype": str(dt).replace("torch.", ""), "variant": variant}
        try:
            sec = time_content_path(model, params_by_batch[b], h, w, batch=b, repeats=repeats, device=st.device,
                                    dtype=dt, variant=variant)
        except Exception as e:  # an optional speed path (or a batch too large) must not end the bench
            if variant == "eager" and not isinstance(e, torch.OutOfMemoryError):
                raise
            row["error"] = f"{type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''}"
            rows.append(row)
            return
        row.update(seconds=sec, images_per_s=b / sec, peak_memory_mb=peak_memory_mb(st.device))
        if onnx_path is not None and b == 1 and variant == "eager":
            from dinstyle.export import time_onnx

            row["onnxruntime_seconds"] = time_onnx(onnx_path, h, w, repeats)
        rows.append(row)

    # the plain figures first, then the video stage, then the optional speed paths
    for name in sizes:
        for b in batches:
            for dt in dtypes:
                timed_row("eager", name, b, dt)
    video = []
    if video_stage:
        from dinstyle.styles import Style

        style = Style(params=random_params(st, 1, mode), label="bench")
        for b in batches:
            if over(f"video stage 1080p b{b}"):
                continue
            try:
                sec = time_video_stage(st, style, *SIZES["1080p"], b, repeats)
                video.append({"size": "1080p", "batch": b, "seconds": sec, "frames_per_s": b / sec})
            except torch.OutOfMemoryError:
                video.append({"size": "1080p", "batch": b, "error": "out of memory"})
    for variant in variants:
        if variant == "eager":
            continue
        for name in sizes:
            for b in batches:
                for dt in dtypes:
                    timed_row(variant, name, b, dt)
    counts = st.parameter_counts()
    return {"machine": machine_name(st.device), "device": str(st.device), "dtype": str(st.dtype).replace("torch.", ""),
            "torch": torch.__version__, "model_id": st.model_id, "mode": mode,
            "params": {"content_path": counts["content_path"], "weight_bias_nets": counts["weight_bias_nets"],
                       "style_encoder": VGG19_TO_RELU4_1_PARAMS},
            "macs_512": {"content_path": macs_c["total"], "style_path": macs_s["total"]}, "rows": rows,
            "video_stage": video, "skipped": skipped}


def to_markdown(r: dict) -> str:
    lines = [f"Machine: {r['machine']} ({r['device']}, {r['dtype']}, torch {r['torch']}); model {r['model_id']}, "
             f"mode {r['mode']}", "",
             f"Parameters: content path {r['params']['content_path']:,}, weight/bias nets "
             f"{r['params']['weight_bias_nets']:,}, style encoder {r['params']['style_encoder']:,}. "
             f"MACs at 512²: content path {r['macs_512']['content_path'] / 1e9:.2f} G, "
             f"style path {r['macs_512']['style_path'] / 1e9:.1f} G (once per style).", "",
             "| size | batch | dtype | variant | median s / batch | images/s | peak memory MB | onnxruntime s |",
             "|---|---|---|---|---|---|---|---|"]
    for row in r["rows"]:
        head = f"| {row['size']} | {row['batch']} | {row.get('dtype', r['dtype'])} | {row.get('variant', 'eager')} |"
        if "error" in row:
            lines.append(f"{head} failed: {row['error']} | - | - | - |")
            continue
        ort = f"{row['onnxruntime_seconds']:.3f}" if "onnxruntime_seconds" in row else "-"
        lines.append(f"{head} {row['seconds']:.4f} | {row['images_per_s']:.1f} | {row['peak_memory_mb']:.0f} | {ort} |")
    if r.get("video_stage"):
        lines += ["", "Video stylize stage (uint8 frames in and out, as `dinstyle video` runs it):", "",
                  "| size | batch | s / batch | frames/s |", "|---|---|---|---|"]
        for v in r["video_stage"]:
            if "error" in v:
                lines.append(f"| {v['size']} | {v['batch']} | {v['error']} | - |")
            else:
                lines.append(f"| {v['size']} | {v['batch']} | {v['seconds']:.4f} | {v['frames_per_s']:.1f} |")
    if r.get("skipped"):
        lines += ["", f"Skipped (time limit): {', '.join(r['skipped'])}"]
    return "\n".join(lines) + "\n"
