"""Distillation from a teacher's outputs: the term, the manifests, the batches and a training run."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from dinstyle.config import ModelConfig, TrainConfig
from dinstyle.errors import InputError, OptionError
from dinstyle.train.data import ImageBank
from dinstyle.train.distill import FEATURE_TAPS, TargetSet, distill_loss, draw_pairs, feature_distill_loss, read_manifests
from dinstyle.train.loop import train

TINY = ModelConfig(widths=(8, 8, 16), param_hidden=8)


def _img(path: Path, seed: int, size: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)
    return path


def _targets(root: Path, pairs: list[tuple[str, str]], *, target_is_content: bool = False) -> Path:
    """A targets folder in the render script's layout: targets/i.png + manifest.csv (relative paths)."""
    (root / "targets").mkdir(parents=True, exist_ok=True)
    with open(root / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["target", "content", "style"])
        for i, (c, s) in enumerate(pairs):
            t = root / "targets" / f"{i:06d}.png"
            if target_is_content:
                Image.open(c).save(t)
            else:
                _img(t, 100 + i)
            w.writerow([f"targets/{t.name}", Path(c).resolve().as_posix(), Path(s).resolve().as_posix()])
    return root


@pytest.fixture
def data(tmp_path):
    cs = [_img(tmp_path / "c" / f"{i}.png", i) for i in range(3)]
    ss = [_img(tmp_path / "s" / f"{i}.png", 10 + i) for i in range(3)]
    return tmp_path / "c", tmp_path / "s", cs, ss


def test_distill_term_is_zero_on_the_target_and_sees_what_pixel_l1_blurs():
    g = torch.Generator().manual_seed(0)
    t = torch.rand(2, 3, 32, 32, generator=g)
    assert torch.equal(distill_loss(t, t), torch.zeros(2))
    # a blurred copy is close in pixels but loses the strokes: the gradient terms carry most of its loss
    blurred = F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), 3, 1)
    pixel_only = distill_loss(blurred, t, grad_weight=0.0)
    full = distill_loss(blurred, t)
    assert (full > 2 * pixel_only).all()
    # per sample, and a gradient that moves the output towards the target
    x = torch.rand(2, 3, 32, 32, generator=g, requires_grad=True)
    loss = distill_loss(x, t)
    assert loss.shape == (2,)
    loss.sum().backward()
    with torch.no_grad():
        assert distill_loss(x - 0.01 * x.grad.sign(), t).sum() < loss.sum()


def test_feature_term_compares_the_early_vgg_maps_with_the_teachers(vgg):
    g = torch.Generator().manual_seed(1)
    t = torch.rand(2, 3, 32, 32, generator=g)
    with torch.no_grad():
        tf = vgg(t, taps=FEATURE_TAPS)
    assert set(tf) == {"relu1_1", "relu2_1", "relu3_1"}
    assert torch.equal(feature_distill_loss(tf, tf), torch.zeros(2))
    # relu4_1, the content term's tap, plays no part
    assert torch.equal(feature_distill_loss({**tf, "relu4_1": torch.ones(2, 1, 1, 1)}, tf), torch.zeros(2))
    x = torch.rand(2, 3, 32, 32, generator=g, requires_grad=True)
    loss = feature_distill_loss(vgg(x, taps=FEATURE_TAPS), tf)
    assert loss.shape == (2,) and (loss > 0).all()
    loss.sum().backward()
    with torch.no_grad():
        assert feature_distill_loss(vgg(x - 0.01 * x.grad.sign(), taps=FEATURE_TAPS), tf).sum() < loss.sum()
    # each tap is balanced by its scale: a change at relu1_1 alone counts by 1 / 24**2
    bumped = {**tf, "relu1_1": tf["relu1_1"] + 1.0}
    assert torch.allclose(feature_distill_loss(bumped, tf), torch.full((2,), 1 / 24.0 ** 2))


def test_manifests_are_read_with_their_folders_and_bad_ones_name_the_line(tmp_path, data):
    _, _, cs, ss = data
    a = _targets(tmp_path / "a", [(cs[0], ss[0]), (cs[1], ss[0])])
    b = _targets(tmp_path / "b", [(cs[0], ss[2])])
    pairs = read_manifests([a, b / "manifest.csv"])
    assert len(pairs) == 3
    assert pairs.content_idx.tolist() == [0, 1, 0] and pairs.style_idx.tolist() == [0, 0, 1]
    with pytest.raises(InputError, match="no manifest.csv"):
        read_manifests([tmp_path / "c"])
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "manifest.csv").write_text("target,content,style\nmissing.png,x.png,y.png\n")
    with pytest.raises(InputError, match=r"manifest.csv:2: .*missing.png is not a file"):
        read_manifests([bad])
    (bad / "manifest.csv").write_text("a,b\n")
    with pytest.raises(InputError, match="target,content,style"):
        read_manifests([bad])


def test_target_set_maps_styles_into_the_bank_and_appends_the_others(tmp_path, data):
    _, sdir, cs, ss = data
    other = _img(tmp_path / "elsewhere" / "extra.png", 50)
    folder = _targets(tmp_path / "t", [(cs[0], ss[2]), (cs[1], other), (cs[2], ss[0])])
    bank = ImageBank.from_folder(sdir, 40, 0)
    ts, bank2 = TargetSet.load([folder], bank, 40, 0)
    assert len(ts) == 3 and len(bank2) == 4 and bank2.names[:3] == bank.names and bank2.names[3] == "extra.png"
    assert ts.style_idx.tolist() == [2, 3, 0]
    assert torch.equal(bank2.images[3], ImageBank.decode([other], 40).images[0])


def test_pairs_are_a_function_of_seed_and_step_and_prob_sets_the_share():
    a = draw_pairs(5, seed=1, batch_size=4, n_pairs=100, prob=1.0)
    assert torch.equal(a, draw_pairs(5, seed=1, batch_size=4, n_pairs=100, prob=1.0))
    assert not torch.equal(a, draw_pairs(6, seed=1, batch_size=4, n_pairs=100, prob=1.0))
    assert draw_pairs(5, seed=1, batch_size=4, n_pairs=100, prob=0.0) is None
    share = np.mean([draw_pairs(s, seed=1, batch_size=4, n_pairs=100, prob=0.3) is not None for s in range(400)])
    assert 0.2 < share < 0.4


def _cfg(data, targets, **kw):
    c, s, _, _ = data
    base = dict(content_dir=str(c), style_dir=str(s), batch_size=2, crop=32, workers=0, log_every=1, bank_size=40,
                checkpoint_every=1000, preview_every=0, model=TINY, steps=10, targets=(str(targets),), pad=0)
    base.update(kw)
    return TrainConfig(**base)


def test_content_and_target_are_cropped_and_flipped_together(tmp_path, data, vgg):
    """With the content itself as the teacher's target, every distillation batch's target equals its content."""
    from dinstyle.model import DinStyleNet
    from dinstyle.train.batches import Batches
    from dinstyle.train.loop import load_banks

    _, _, cs, ss = data
    folder = _targets(tmp_path / "t", [(cs[i], ss[i]) for i in range(3)], target_is_content=True)
    cfg = _cfg(data, folder, crop=24, content_zoom=(1.0, 2.0))
    banks = load_banks(cfg, torch.device("cpu"))
    ts, banks["style"] = TargetSet.load(cfg.targets, banks["style"], cfg.bank_size, 0)
    b = Batches(cfg, banks, vgg, DinStyleNet(TINY), torch.device("cpu"), "none", 0, None, ts)
    flips = set()
    for step in range(8):
        plan = b.plan(step)
        assert plan.pairs is not None and plan.mode == "standard"
        assert (plan.content_view[:, 0] == 1).all()  # targets at their own scale
        flips.update(plan.content_view[:, 3].tolist())
        assert torch.equal(b.content(plan), b.target(plan))
        assert plan.style.tolist() == ts.style_idx[plan.pairs].tolist()
    assert flips == {0.0, 1.0}


def test_a_distillation_run_logs_its_term_and_moves_towards_the_teacher(tmp_path, data):
    _, _, cs, ss = data
    folder = _targets(tmp_path / "t", [(cs[i % 3], ss[(i + 1) % 3]) for i in range(6)])
    cfg = _cfg(data, folder, content_weight=0.0, style_weight=0.0, steps=12, lr=3e-3)
    last = train(cfg, tmp_path / "run")
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all("distill" in r and r["content"] == 0 and r["style"] == 0 for r in log)
    first, final = np.mean([r["distill"] for r in log[:3]]), np.mean([r["distill"] for r in log[-3:]])
    assert final < first
    assert last["step"] == 12
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["targets"] == [str(folder)] and TrainConfig.from_dict(saved).targets == (str(folder),)


def test_the_feature_term_alone_trains_towards_the_teacher(tmp_path, data):
    """Pixel weight 0, VGG losses 0: the feature term is the whole objective, logged as the distill figure."""
    _, _, cs, ss = data
    folder = _targets(tmp_path / "t", [(cs[i % 3], ss[(i + 1) % 3]) for i in range(6)])
    cfg = _cfg(data, folder, content_weight=0.0, style_weight=0.0, distill_weight=0.0, distill_feature_weight=1.0,
               steps=12, lr=3e-3)
    train(cfg, tmp_path / "run")
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert all(r["content"] == 0 and r["style"] == 0 and r["distill"] > 0 for r in log)
    assert np.mean([r["distill"] for r in log[-3:]]) < np.mean([r["distill"] for r in log[:3]])
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["distill_feature_weight"] == 1.0 and saved["distill_weight"] == 0.0


def test_mixed_steps_log_distillation_only_where_it_ran(tmp_path, data):
    _, _, cs, ss = data
    folder = _targets(tmp_path / "t", [(cs[i], ss[i]) for i in range(3)])
    cfg = _cfg(data, folder, distill_prob=0.5, distill_weight=10.0, steps=8, log_every=8, color_weight=1.0)
    train(cfg, tmp_path / "run")
    rec = json.loads((tmp_path / "run" / "log.jsonl").read_text().splitlines()[-1])
    assert rec["distill"] > 0 and rec["style"] > 0 and rec["content"] > 0
    assert np.isfinite(rec["loss"])


def test_weights_that_train_nothing_are_refused(tmp_path, data):
    _, _, cs, ss = data
    folder = _targets(tmp_path / "t", [(cs[0], ss[0])])
    with pytest.raises(OptionError, match="need --style-weight, --grey-style-weight or --content-weight"):
        train(_cfg(data, folder, content_weight=0.0, style_weight=0.0, distill_prob=0.5), tmp_path / "r1")
    with pytest.raises(OptionError, match="nothing to train"):
        train(_cfg(data, folder, content_weight=0.0, style_weight=0.0, distill_weight=0.0), tmp_path / "r2")


def test_cli_refuses_a_targets_folder_without_a_manifest(tmp_path, data):
    from typer.testing import CliRunner

    from dinstyle.cli import app

    def run_cli(*args):
        return CliRunner().invoke(app, list(args))

    c, s, _, _ = data
    r = run_cli("train", "--content", str(c), "--style", str(s), "--targets", str(tmp_path / "c"), "--out",
                str(tmp_path / "run"), "--max-steps", "1", "--crop", "32")
    assert r.exit_code == 2
    assert "no manifest.csv" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("train", "--content", str(c), "--style", str(s), "--targets", str(tmp_path / "c"), "--distill-prob", "2")
    assert r.exit_code == 2 and "--distill-prob 2.0: must be between 0 and 1" in r.stderr
    r = run_cli("train", "--content", str(c), "--style", str(s), "--targets", str(tmp_path / "c"), "--distill-features", "-1")
    assert r.exit_code == 2 and "--distill-features -1.0: must be >= 0" in r.stderr


SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.mark.skipif(not (SHARED / "teacher" / "render.py").is_file() or not (SHARED / "data" / "distill").is_dir(),
                    reason="needs ../shared/teacher and ../shared/data/distill")
def test_teacher_targets_script_renders_the_render_scripts_pairs(tmp_path):
    """scripts/teacher_targets.py (the GPU-side renderer) draws the same pairs as the teacher's render.py:
    from the same folders and seed, its first targets are the shipped distill set's (up to WebP q90)."""
    import subprocess
    import sys

    train_dir = SHARED / "data" / "train"
    r = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / "teacher_targets.py"),
                        "--teacher", str(SHARED / "teacher"), "--content", str(train_dir / "content"),
                        "--style", str(train_dir / "style"), "--out", str(tmp_path / "d"), "--pairs", "3",
                        "--seed", "1", "--device", "cpu", "--batch", "2"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    ours, shipped = read_manifests([tmp_path / "d"]), read_manifests([SHARED / "data" / "distill"])
    assert len(ours) == 3 and ours.contents == shipped.contents[:len(ours.contents)]
    for i in range(3):
        assert ours.contents[ours.content_idx[i]] == shipped.contents[shipped.content_idx[i]]
        assert ours.styles[ours.style_idx[i]] == shipped.styles[shipped.style_idx[i]]
        a = np.asarray(Image.open(ours.targets[i]), dtype=np.float32)
        b = np.asarray(Image.open(shipped.targets[i]).convert("RGB"), dtype=np.float32)
        assert a.shape == b.shape and np.abs(a - b).mean() < 6  # the same stylization, WebP q90 apart
    r = subprocess.run([sys.executable, str(Path(__file__).resolve().parents[1] / "scripts" / "teacher_targets.py"),
                        "--teacher", str(tmp_path), "--content", str(train_dir / "content"), "--style",
                        str(train_dir / "style"), "--out", str(tmp_path / "e")], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no render.py" in r.stderr
