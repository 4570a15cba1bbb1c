"""CPU benchmark of the content path (encoder + DIN + decoder), fp32, batch 1.

    python benchmarks/bench_cpu.py [--weights DIR] [--out benchmarks/results.md]

Every size runs in its own subprocess so peak RSS is per size. Reports median latency after
warm-up, MACs, parameters, and the same for a paper-layout network (full-resolution 9x9 stem,
widths 16/32/64, no pixel unshuffle) as an in-repo baseline.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

SIZES = {"512x512": (512, 512), "1080p": (1080, 1920), "4K": (2160, 3840)}


def _one(config_json: str, h: int, w: int, repeats: int) -> dict:
    import resource

    import torch

    from dinstyle.config import ModelConfig
    from dinstyle.model import DinStyleNet
    from dinstyle.model.macs import content_path_macs
    from dinstyle.runtime import tune_allocator

    tune_allocator()
    torch.manual_seed(0)
    model = DinStyleNet(ModelConfig.from_dict(json.loads(config_json))).eval()
    feats = {t: torch.rand(1, c, 16, 16) * 50 for t, c in {"relu2_1": 128, "relu3_1": 256, "relu4_1": 512}.items()}
    with torch.inference_mode():
        params = model.style_params(feats)
        x = torch.rand(1, 3, h, w)
        model(x, params)
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x, params)
            ts.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(ts), "min_s": min(ts),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "macs_512": content_path_macs(model)["total"],
            "params_content": sum(p.numel() for n, p in model.named_parameters() if not n.startswith("dins."))}


def run(config: dict, sizes: list[str], repeats: int, timeout: float = 240) -> dict:
    out: dict = {}
    for name in sizes:
        h, w = SIZES[name]
        code = (f"import json,sys; sys.path.insert(0, {str(Path(__file__).resolve().parent.parent)!r}); "
                f"from benchmarks.bench_cpu import _one; print(json.dumps(_one({json.dumps(json.dumps(config))}, {h}, {w}, {repeats})))")
        try:
            p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            out[name] = None  # reported as "> timeout"; larger sizes are skipped
            break
        if p.returncode != 0:
            raise SystemExit(p.stderr)
        out[name] = json.loads(p.stdout.strip().splitlines()[-1])
    return out


def machine() -> str:
    import torch

    from dinstyle.runtime import cpu_name

    return f"{cpu_name()}, {torch.get_num_threads()} threads, torch {torch.__version__}, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default=None)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--sizes", default="512x512,1080p,4K")
    ap.add_argument("--out", default=None, help="write a Markdown table here")
    a = ap.parse_args()
    from dinstyle.checkpoint import default_weights_dir, read_config
    from dinstyle.config import ModelConfig

    wdir = Path(a.weights) if a.weights else default_weights_dir()
    ours = read_config(wdir)["model"] if (wdir / "config.json").exists() else ModelConfig().to_dict()
    paper = {**ModelConfig().to_dict(), "unshuffle": 1, "stem_kernel": 9, "widths": [16, 32, 64]}
    sizes = a.sizes.split(",")
    res = {"dinstyle (shipped config)": run(ours, sizes, a.repeats),
           "paper layout, eager (9x9 stem, full-res, 16/32/64)": run(paper, sizes, 3, timeout=120)}

    def cell(r, s, key, fmt):
        v = r.get(s)
        return "n/a (> 2 min)" if v is None and s in r else ("skipped" if v is None else format(v[key], fmt))
    lines = [f"Machine: {machine()}", "",
             "| network | params (content path) | MACs @512² | " + " | ".join(f"{s} s" for s in sizes) + " | "
             + " | ".join(f"{s} peak RSS MB" for s in sizes) + " |",
             "|---|---|---|" + "---|" * (2 * len(sizes))]
    for name, r in res.items():
        first = r[sizes[0]]
        lines.append(f"| {name} | {first['params_content']:,} | {first['macs_512'] / 1e9:.2f} G | "
                     + " | ".join(cell(r, s, "median_s", ".3f") for s in sizes) + " | "
                     + " | ".join(cell(r, s, "peak_rss_mb", ".0f") for s in sizes) + " |")
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
