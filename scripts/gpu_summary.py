"""Print the one-shot GPU run's table: training throughput and losses, then the bench rows.

    python scripts/gpu_summary.py RESULTS_DIR [SINCE]     (SINCE: epoch seconds the run started)
"""
from __future__ import annotations

import json
import sys
from pathlib import Path


def main(out: Path, since: float = 0.0) -> None:
    lines = [f"# One-shot run: {out}", ""]
    log = out / "run" / "log.jsonl"
    recs = [json.loads(x) for x in log.read_text().splitlines() if x.strip()] if log.exists() else []
    recs = [r for r in recs if r.get("time", 0) >= since]  # this call's lines (the log continues a run)
    if recs:
        first, last = recs[0], recs[-1]
        rate = sorted(r["images_per_s"] for r in recs[1:] or recs)[len(recs[1:] or recs) // 2]
        lines += ["| training | value |", "|---|---|",
                  f"| device / precision | {last.get('device')} / {last.get('amp', '-')} |",
                  f"| steps this call (log lines) | {first['step']} -> {last['step']} ({len(recs)}) |",
                  f"| pairs/s (median over log lines) | {rate:.0f} |",
                  f"| losses first / last log line | total {first['loss']:.3f} -> {last['loss']:.3f}, "
                  f"content {first['content']:.3f} -> {last['content']:.3f}, style {first['style']:.3f} -> {last['style']:.3f} |",
                  f"| torch.compile | {last.get('compile', 'not tried')} |", ""]
    else:
        lines += ["training: no log", ""]
    bench = out / "bench.json"
    if bench.exists():
        r = json.loads(bench.read_text())
        lines += [f"Bench on {r['machine']} (torch {r['torch']}), content path:", "",
                  "| size | batch | dtype | variant | s / batch | images/s | peak MB |", "|---|---|---|---|---|---|---|"]
        for row in r["rows"]:
            if "error" in row:
                lines.append(f"| {row['size']} | {row['batch']} | {row['dtype']} | {row['variant']} | failed: {row['error']} | | |")
            else:
                lines.append(f"| {row['size']} | {row['batch']} | {row['dtype']} | {row['variant']} | {row['seconds']:.4f} | "
                             f"{row['images_per_s']:.1f} | {row['peak_memory_mb']:.0f} |")
        for v in r.get("video_stage", []):
            lines.append(f"| video stage {v['size']} | {v['batch']} | | | {v.get('seconds', 0):.4f} | "
                         f"{v.get('frames_per_s', 0):.1f} fps | |")
        if r.get("skipped"):
            lines.append(f"\nskipped for time: {', '.join(r['skipped'])}")
    else:
        lines.append("bench: no results")
    print("\n".join(lines))


if __name__ == "__main__":
    main(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
