"""The one-shot GPU command, dry-run on the CPU: pack -> resume -> train in time -> bench -> table."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dinstyle.config import ModelConfig, TrainConfig
from dinstyle.train.data import decode_square
from dinstyle.train.datapack import read_data_pack, write_data_pack
from dinstyle.train.checkpoints import load_checkpoint
from dinstyle.train.loop import train

ROOT = Path(__file__).resolve().parent.parent
TINY = ModelConfig(widths=(8, 8, 16), param_hidden=8)


@pytest.fixture
def train_dir(tmp_path, images):
    for i in range(4):
        images(f"train/content/{i}.png", (48, 48), seed=i)
        images(f"train/style/{i}.png", (48, 40), seed=10 + i)
        images(f"flat/{i}.png", (48, 48), seed=20 + i)
    return tmp_path / "train"


def test_data_pack_round_trips_at_its_encoding(tmp_path, train_dir):
    groups = {g: sorted((train_dir / g).iterdir()) for g in ("content", "style")}
    groups["flat"] = sorted((train_dir.parent / "flat").iterdir())
    big = write_data_pack(groups, tmp_path / "a.pack", 10 * 2**20, size=48)
    assert big.encoding == {"content": "original", "style": "webp-q90", "flat": "original"} or \
        set(big.encoding.values()) <= {"original", "webp-q90"}
    packed = read_data_pack(tmp_path / "a.pack")
    assert [len(packed[g][0]) for g in ("content", "style", "flat")] == [4, 4, 4]
    for g in ("content", "flat"):  # original bytes: the same pixels as decoding the source files
        for blob, f in zip(packed[g][0], groups[g]):
            if big.encoding[g] == "original":
                assert np.array_equal(decode_square(blob, 48), decode_square(f, 48))
    # the styles are 48x40, not square: re-encoded; pixels equal the same re-encoding of the source
    from dinstyle.train.datapack import encode_webp

    q = int(big.encoding["style"].split("q")[1])
    assert packed["style"][0][0] == encode_webp(groups["style"][0], 48, q)
    full = sum(len(b) for g in packed for b in packed[g][0])
    limit = int(full * 0.3) + 5000  # room for about a third of the images at the lowest quality
    small = write_data_pack(groups, tmp_path / "b.pack", limit, size=48)
    assert small.encoding["style"] == "webp-q40" and (tmp_path / "b.pack").stat().st_size <= limit
    assert 3 <= sum(small.counts.values()) < 12 and all(n >= 1 for n in small.counts.values())
    (tmp_path / "bad.pack").write_bytes(b"junk" * 10)
    from dinstyle.errors import CheckpointError

    with pytest.raises(CheckpointError):
        read_data_pack(tmp_path / "bad.pack")


def test_time_budget_is_honoured(tmp_path, train_dir):
    cfg = TrainConfig(content_dir=str(train_dir / "content"), style_dir=str(train_dir / "style"), batch_size=2, crop=32,
                      bank_size=48, model=TINY, steps=100_000, log_every=1, preview_every=0, workers=1)
    last = train(cfg, tmp_path / "run", time_budget=20.0)
    # on a loaded machine start-up alone may take most of the budget: then it stops before the first step
    assert last["stopped_by"] == "time budget" and load_checkpoint(tmp_path / "run")["step"] == last["step"] >= 0


def test_gpu_run_script_dry_run_on_cpu(tmp_path, train_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "2"}
    r = subprocess.run([sys.executable, "-m", "dinstyle", "pack-data", str(train_dir), "-o", str(tmp_path / "t.pack"),
                        "--max-mb", "1", "--size", "48"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "content 4/4" in r.stderr and "flat 4/4" in r.stderr
    # the run to continue: made with another batch size and crop than the GPU command uses
    cfg = TrainConfig(content_dir=str(train_dir / "content"), style_dir=str(train_dir / "style"), batch_size=2, crop=32,
                      bank_size=48, style_view=48, model=TINY, steps=100_000, log_every=1, preview_every=0)
    train(cfg, tmp_path / "start", max_steps=2)
    out = tmp_path / "OUT"
    genv = {**env, "DEVICE": "cpu", "BUDGET": "26", "BENCH": "12", "PACK": str(tmp_path / "t.pack"),
            "RESUME": str(tmp_path / "start"), "BATCH": "3", "CROP": "40", "LR": "1e-4", "WARMUP": "2",
            "CKPT_MINUTES": "0.05", "BENCH_SIZES": "512x512", "BENCH_BATCHES": "1,2", "BENCH_DTYPES": "fp32",
            "BENCH_FLAGS": "--video-stage"}
    teacher = ROOT.parent / "shared" / "teacher"
    if (teacher / "render.py").is_file():  # the teacher renders fresh pairs of the pack first, then training distils
        genv.update(TEACHER=str(teacher), DISTILL_PAIRS="6", DISTILL_ARGS="--distill-weight 10 --distill-prob 0.5")
    r = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_run.sh"), str(out)], env=genv, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert "stopped by time budget" in " ".join((out / "train.txt").read_text().split())  # training gave way to the benchmarks on its own
    state = load_checkpoint(out / "run")
    assert state["step"] > 2
    saved = json.loads(state["config_json"])
    assert saved["batch_size"] == 3 and saved["crop"] == 40 and saved["data_pack"] == str(tmp_path / "t.pack")
    if "TEACHER" in genv:
        assert "6 pairs in" in (out / "targets.txt").read_text() and len(saved["targets"]) == 1
        assert saved["distill_weight"] == 10 and saved["distill_prob"] == 0.5
    bench = json.loads((out / "bench.json").read_text())
    timed = {(row["batch"], row["variant"]) for row in bench["rows"]}
    assert (1, "eager") in timed  # the first row always runs; the rest ran or are listed as skipped for time
    assert (2, "eager") in timed or "512x512 b2 float32 eager" in bench["skipped"]
    summary = (out / "summary.md").read_text()
    assert "pairs/s" in summary and "| 512x512 | 1 | float32 | eager |" in summary
    assert len([p for p in out.rglob("*") if p.is_file()]) <= 9
