"""Training throughput before/after, at the same crop and batch, on this machine.

    python benchmarks/bench_train.py --before-ref 6c6a8dd --steps 60 --out benchmarks/results_train_cpu.md

"before" runs `dinstyle train` of an older commit (checked out into a temporary git worktree);
"after" runs this checkout in several configurations. Every run starts from scratch in a temporary
folder with the same data, crop and batch size; images/s is the median of the log lines after the
first ``--skip`` steps (start-up and first-call costs excluded). The whole-view style runs use the
first ``--styles`` style images so their VGG taps are cached within the measured window: over a
long run every style is cached after its first use, which this steady state stands for.

The distillation rows (``--targets``, the teacher's outputs in ``shared/data/distill``) use the
pairs whose style is among the same few styles, so they too measure the cached steady state; with
content and style weights 0 no VGG runs on the outputs. ``--before-ref none`` skips the old commit.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def run_train(pythonpath: Path, args: list[str], out: Path, steps: int, skip: int, env_extra: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(pythonpath), **(env_extra or {})}
    cmd = [sys.executable, "-m", "dinstyle", "train", "--out", str(out), "--max-steps", str(steps),
           "--preview-every", "0", "--checkpoint-every", "100000", *args]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{p.stderr[-2000:]}")
    recs = [json.loads(x) for x in (out / "log.jsonl").read_text().splitlines()]
    rates = [r["images_per_s"] for r in recs if r["step"] > skip]
    return {"images_per_s": statistics.median(rates), "wall_s": wall, "log_lines": len(rates)}


def few_targets(distill: Path, styles: set[str], dest: Path) -> Path | None:
    """A manifest of the teacher's pairs whose style is one of ``styles`` (absolute paths)."""
    if not (distill / "manifest.csv").is_file():
        return None
    with open(distill / "manifest.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    keep = [[str((distill / x).resolve()) for x in r] for r in rows if Path(r[2]).name in styles]
    if not keep:
        return None
    dest.mkdir(parents=True, exist_ok=True)
    with open(dest / "manifest.csv", "w", newline="") as f:
        csv.writer(f).writerows([["target", "content", "style"], *keep])
    return dest


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before-ref", default="6c6a8dd", help="commit of the 'before' pipeline")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--skip", type=int, default=20, help="log lines up to this step are not counted")
    ap.add_argument("--crop", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--styles", type=int, default=48, help="styles of the cached runs (and of the distillation pairs)")
    ap.add_argument("--out", type=Path, default=None, help="write the table here (.md)")
    a = ap.parse_args()
    content, style = DATA / "train" / "content", DATA / "train" / "style"
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    few = tmp / "styles"
    few.mkdir()
    for f in sorted(style.iterdir())[: a.styles]:
        (few / f.name).symlink_to(f)
    common = ["--crop", str(a.crop), "--batch-size", str(a.batch_size), "--log-every", "10"]
    rows = []
    if a.before_ref != "none":
        wt = tmp / "before"
        subprocess.run(["git", "worktree", "add", "--detach", str(wt), a.before_ref], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            old_common = [c for c in common if c not in ("--log-every", "10")]
            r = run_train(wt, ["--content", str(content), "--style", str(style), "--workers", "1", *old_common],
                          tmp / "r_before", a.steps, a.skip)
            rows.append((f"before ({a.before_ref}): files decoded by a worker, fp32, style crops", r))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=ROOT, capture_output=True)
    cached = ["--content", str(content), "--style", str(few), "--amp", "bf16", "--style-view", "256"]
    configs = [
        ("after: in-memory banks, bf16 VGG, style crops",
         ["--content", str(content), "--style", str(style), "--amp", "bf16", "--style-view", "0"]),
        ("after: in-memory banks, bf16 VGG, whole styles at 256, cached taps (steady state) = the VGG recipe", cached),
    ]
    targets = few_targets(DATA / "distill", {f.name for f in few.iterdir()}, tmp / "targets")
    if targets is not None:
        distill = [*cached, "--targets", str(targets)]
        configs += [
            ("distillation only (no VGG on the outputs), same crop", [*distill, "--content-weight", "0", "--style-weight", "0"]),
            ("distillation only, crop 256 (whole 256-px pairs; 4x the pixels a step)",
             [*distill, "--content-weight", "0", "--style-weight", "0", "--crop", "256"]),
            ("distillation + VGG losses on every step", distill),
            ("feature distillation (relu1_1-relu3_1 of output and target) + VGG losses, no pixel term",
             [*distill, "--distill-weight", "0", "--distill-features", "1"]),
        ]
    for i, (name, args) in enumerate(configs):
        rows.append((name, run_train(ROOT, [*common, *args], tmp / f"r{i}", a.steps, a.skip)))
    base = rows[0][1]["images_per_s"]
    recipe = next(r for n, r in rows if "the VGG recipe" in n)["images_per_s"]
    from dinstyle.runtime import cpu_name

    cpu = cpu_name()
    lines = [f"Training throughput, crop {a.crop}, batch {a.batch_size}, {a.steps} steps per run "
             f"(median of log lines after step {a.skip}); {cpu}, {os.cpu_count()} cores; "
             f"{time.strftime('%Y-%m-%d')}", "",
             f"| pipeline | images/s | x {'before' if a.before_ref != 'none' else 'first row'} | x VGG recipe |",
             "|---|---|---|---|"]
    for name, r in rows:
        lines.append(f"| {name} | {r['images_per_s']:.2f} | {r['images_per_s'] / base:.2f} | "
                     f"{r['images_per_s'] / recipe:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
