"""`dinstyle bench`: parameters, MACs and median latency of the content path, with peak memory."""
from __future__ import annotations

import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import torch

from dinstyle.engine import Stylizer

SIZES = {"512x512": (512, 512), "1080p": (1080, 1920), "4K": (2160, 3840)}


def machine_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or "CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


def random_params(model, n: int = 1, device="cpu", mode: str = "standard") -> list[dict]:
    g = torch.Generator().manual_seed(0)
    feats = {t: torch.rand(1, din.weight_net.conv1.in_channels, 16, 16, generator=g) * 50
             for t, din in zip(model.cfg.style_taps, model.dins)}
    with torch.inference_mode():
        params = model.cpu().style_params(feats, mode)
    return [{k: v.to(device).expand(n, *v.shape[1:]) for k, v in p.items()} for p in params]


def time_content_path(model, params, h: int, w: int, *, batch: int = 1, repeats: int = 5, warmup: int = 1,
                      device: torch.device = torch.device("cpu"), dtype: torch.dtype = torch.float32) -> float:
    """Median seconds of one forward pass of the content path on (batch, 3, h, w)."""
    x = torch.rand(batch, 3, h, w, device=device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    amp = torch.autocast("cuda", dtype=dtype, enabled=device.type == "cuda" and dtype != torch.float32)
    ts = []
    with torch.inference_mode(), amp:
        for i in range(warmup + repeats):
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x, params)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if i >= warmup:
                ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_bench(st: Stylizer, sizes: list[str], *, batch: int = 1, repeats: int = 5, onnx: bool = False,
              mode: str = "standard") -> dict:
    from dinstyle.model.macs import content_path_macs, style_path_macs

    st.check_mode(mode)
    model = st.model
    macs_c = content_path_macs(model.cpu(), mode=mode)
    macs_s = style_path_macs(model, st.vgg.cpu(), mode=mode)
    model.to(st.device)
    st.vgg.to(st.device)
    params = random_params(model, batch, st.device, mode)
    onnx = onnx and mode == "standard"
    rows = []
    onnx_path = None
    if onnx:
        from dinstyle.export import export_onnx
        from dinstyle.engine import Style

        onnx_path = Path(tempfile.mkdtemp()) / "bench.onnx"
        export_onnx(st, onnx_path, Style(params=[{k: v[:1].cpu() for k, v in p.items()} for p in params], label="bench",
                                         mode="standard"), check=False)
        model.to(st.device)
    for name in sizes:
        if name not in SIZES:
            from dinstyle.errors import OptionError

            raise OptionError(f"--sizes: unknown size {name} (use {', '.join(SIZES)})")
        h, w = SIZES[name]
        if st.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(st.device)
        sec = time_content_path(model, params, h, w, batch=batch, repeats=repeats, device=st.device, dtype=st.dtype)
        row = {"size": name, "batch": batch, "seconds": sec, "images_per_s": batch / sec,
               "peak_memory_mb": peak_memory_mb(st.device)}
        if onnx_path is not None and batch == 1:
            from dinstyle.export import time_onnx

            row["onnxruntime_seconds"] = time_onnx(onnx_path, h, w, repeats)
        rows.append(row)
    p_content = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("dins.") or "offset_net" in n)
    p_nets = sum(p.numel() for n, p in model.named_parameters() if n.startswith("dins.") and "offset_net" not in n)
    return {"machine": machine_name(st.device), "device": str(st.device), "dtype": str(st.dtype).replace("torch.", ""),
            "torch": torch.__version__, "model_id": st.model_id, "mode": mode,
            "params": {"content_path": p_content, "weight_bias_nets": p_nets, "style_encoder": 3_505_728},
            "macs_512": {"content_path": macs_c["total"], "style_path": macs_s["total"]}, "rows": rows}


def to_markdown(r: dict) -> str:
    lines = [f"Machine: {r['machine']} ({r['device']}, {r['dtype']}, torch {r['torch']}); model {r['model_id']}, "
             f"mode {r['mode']}", "",
             f"Parameters: content path {r['params']['content_path']:,}, weight/bias nets "
             f"{r['params']['weight_bias_nets']:,}, style encoder {r['params']['style_encoder']:,}. "
             f"MACs at 512²: content path {r['macs_512']['content_path'] / 1e9:.2f} G, "
             f"style path {r['macs_512']['style_path'] / 1e9:.1f} G (once per style).", "",
             "| size | batch | median s / batch | images/s | peak memory MB | onnxruntime s |", "|---|---|---|---|---|---|"]
    for row in r["rows"]:
        ort = f"{row['onnxruntime_seconds']:.3f}" if "onnxruntime_seconds" in row else "-"
        lines.append(f"| {row['size']} | {row['batch']} | {row['seconds']:.3f} | {row['images_per_s']:.1f} | "
                     f"{row['peak_memory_mb']:.0f} | {ort} |")
    return "\n".join(lines) + "\n"
