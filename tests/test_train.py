import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dinstyle.config import ModelConfig, TrainConfig
from dinstyle.evaluate import score
from dinstyle.metrics import ssim
from dinstyle.model import DinStyleNet
from dinstyle.train.checkpoints import export_weights, load_checkpoint
from dinstyle.train.loop import make_optimizer, style_targets, train, train_step

TINY = ModelConfig(widths=(8, 8, 16), param_hidden=8)


@pytest.fixture
def data(tmp_path, tiny_run):
    """The tiny run's content and style folders (written by ``tiny_run``)."""
    return tmp_path / "c", tmp_path / "s"


@pytest.fixture
def cfg_of(tiny_run):
    return tiny_run


def test_optimisation_steps_reduce_the_loss(vgg):
    torch.manual_seed(0)
    model = DinStyleNet(TINY)
    cfg = TrainConfig(model=TINY, lr=1e-3)
    opt = make_optimizer(model, cfg)
    content, style = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    from dinstyle.train.loop import StyleTransferLoss

    net = StyleTransferLoss(model, vgg, cfg)
    maps, stats = style_targets(vgg, style)
    first = float(train_step(net, opt, content, maps, stats)[0][0])
    for _ in range(3):
        last = float(train_step(net, opt, content, maps, stats)[0][0])
    assert last < first


def test_resume_reproduces_the_next_step_exactly(tmp_path, data, cfg_of):
    cfg = cfg_of()
    train(cfg, tmp_path / "a", max_steps=3)
    train(cfg, tmp_path / "b", max_steps=2)
    train(cfg, tmp_path / "b", resume=True, max_steps=1)
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    assert a["step"] == b["step"] == 3
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    log = [json.loads(x) for x in (tmp_path / "a" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]


def test_resume_overrides_change_the_run_from_then_on(tmp_path, data, images, cfg_of):
    for i in range(2):
        images(f"flat/{i}.png", (40, 40), seed=20 + i)
    train(cfg_of(), tmp_path / "r", max_steps=1)
    overrides = {"lr": 5e-4, "adaptive_prob": 1.0, "adaptive_flat_prob": 1.0, "flat_dir": str(tmp_path / "flat")}
    train(cfg_of(), tmp_path / "r", resume=True, max_steps=1, overrides=overrides)
    saved = json.loads((tmp_path / "r" / "train_config.json").read_text())
    assert {k: saved[k] for k in overrides} == overrides
    log = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["mode"] == "adaptive" and log[-1]["lr"] == pytest.approx(5e-4 / (1 + 5e-5 * 1), rel=1e-3)


def test_adaptive_steps_draw_flat_content_at_their_own_rate():
    from dinstyle.train.data import draw_plan

    def flat_share(adaptive_prob):
        p = draw_plan(0, seed=0, batch_size=16, n_content=3, n_style=3, n_flat=2, flat_prob=0.0,
                      adaptive_prob=adaptive_prob, adaptive_flat_prob=1.0)
        return p.mode, int(p.flat.sum())

    assert flat_share(1.0) == ("adaptive", 16)  # adaptive steps: all flat
    assert flat_share(0.0) == ("standard", 0)  # other steps: flat_prob (0 here)


def test_export_then_load_gives_the_same_outputs(tmp_path, data, images, cfg_of):
    from dinstyle.engine import Stylizer

    train(cfg_of(preview_every=1), tmp_path / "run", max_steps=1)
    assert list((tmp_path / "run" / "previews").glob("*.jpg"))
    export_weights(tmp_path / "run", tmp_path / "w")
    state = load_checkpoint(tmp_path / "run")
    model = DinStyleNet(TINY)
    model.load_state_dict(state["model"])
    st = Stylizer(weights=tmp_path / "w", device="cpu")
    style = st.load_style([images("st.png", (32, 32))], style_size=32)
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model.eval()(x, style.params), st.model(x, style.params))
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    assert cfg["trained"]["steps"] == 1 and cfg["trained"]["crop"] == 32


def test_eval_numbers_move_the_right_way(vgg):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64]
    content = np.stack([xx * 4, yy * 4, (xx + yy) * 2], -1).astype(np.uint8)
    style = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    same = score(content, content, style, vgg)
    as_style = score(style, content, style, vgg)
    assert same["content_loss"] == 0.0 and abs(same["ssim"] - 1.0) < 1e-9
    assert as_style["style_loss"] < same["style_loss"]
    assert ssim(style, content) < 0.5
    assert as_style["color"] < 1e-6 and same["color"] > 0.3


def test_colour_term_is_zero_for_the_same_colours_and_pulls_towards_the_style():
    from dinstyle.model.losses import color_loss

    g = torch.Generator().manual_seed(0)
    style = torch.rand(2, 3, 16, 16, generator=g)
    shuffled = style.flatten(2)[..., torch.randperm(256, generator=g)].view(2, 3, 16, 16)  # same colours, moved
    assert float(color_loss(shuffled, style).max()) < 1e-10
    target = torch.nn.functional.interpolate(style, size=8)  # fewer style points than output points
    out = (style * 0.3 + 0.5).requires_grad_(True)  # a washed-out palette
    fixed = torch.Generator().manual_seed(1)
    before = color_loss(out, target, generator=fixed)
    assert float(before.min()) > 1e-3
    opt = torch.optim.SGD([out], lr=100.0)
    for _ in range(30):  # gradient descent on the colours alone moves them to the style's palette
        opt.zero_grad()
        color_loss(out, target).sum().backward()
        opt.step()
    after = color_loss(out.detach(), target, generator=torch.Generator().manual_seed(1))
    assert float(after.sum()) < 0.3 * float(before.sum())


def test_palette_term_ignores_shares_and_pulls_stray_colours_in():
    from dinstyle.model.losses import color_loss, palette_loss

    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    half = torch.cat([white.expand(1, 3, 16, 32), black.expand(1, 3, 16, 32)], 2)  # half white, half black
    mostly = torch.cat([white.expand(1, 3, 30, 32), black.expand(1, 3, 2, 32)], 2)  # same colours, other shares
    assert float(palette_loss(mostly, half)) == 0.0 and float(color_loss(mostly, half)) > 0.1
    assert float(palette_loss(white.expand(1, 3, 32, 32), half)) > 0.5  # black missing from the output
    g = torch.Generator().manual_seed(0)
    style = torch.rand(2, 3, 16, 16, generator=g)
    out = (style * 0.3 + 0.5).requires_grad_(True)  # a washed-out palette
    before = palette_loss(out, style, generator=torch.Generator().manual_seed(1))
    opt = torch.optim.SGD([out], lr=200.0)
    for step in range(40):
        opt.zero_grad()
        palette_loss(out, style, points=256, generator=torch.Generator().manual_seed(step)).sum().backward()
        opt.step()
    after = palette_loss(out.detach(), style, generator=torch.Generator().manual_seed(1))
    assert float(after.sum()) < 0.5 * float(before.sum())


def test_training_with_the_palette_term(tmp_path, data, cfg_of):
    cfg = cfg_of(palette_weight=50.0)
    train(cfg, tmp_path / "r", max_steps=2)
    assert json.loads((tmp_path / "r" / "train_config.json").read_text())["palette_weight"] == 50.0
    log = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    assert log[-1]["loss"] > log[-1]["content"] + cfg.style_weight * log[-1]["style"]  # the palette term is in


def test_training_with_the_colour_term(tmp_path, data, cfg_of):
    cfg = cfg_of(color_weight=5.0)
    train(cfg, tmp_path / "r", max_steps=2)
    saved = json.loads((tmp_path / "r" / "train_config.json").read_text())
    assert saved["color_weight"] == 5.0
    log = [json.loads(x) for x in (tmp_path / "r" / "log.jsonl").read_text().splitlines()]
    total, parts = log[-1]["loss"], log[-1]["content"] + cfg.style_weight * log[-1]["style"]
    assert total > parts  # the colour term is in the loss


def test_eval_cli_json(tmp_path, images, tiny_weights):
    from typer.testing import CliRunner

    from dinstyle.cli import app

    for i in range(2):
        images(f"ec/{i}.png", (40, 32), seed=i)
        images(f"es/{i}.png", (36, 36), seed=5 + i)
    r = CliRunner().invoke(app, ["eval", "--content", str(tmp_path / "ec"), "--style", str(tmp_path / "es"),
                                 "-w", str(tiny_weights), "--size", "64", "--style-size", "48", "--json"])
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["pairs"] == 4 and -1 <= res["ssim"] <= 1 and res["style_loss"] > 0 and len(res["per_style"]) == 2
    args = ["eval", "--content", str(tmp_path / "ec"), "--style", str(tmp_path / "es"), "-w", str(tiny_weights),
            "--size", "64", "--style-size", "48", "--json"]
    r = CliRunner().invoke(app, args + ["--mode", "standard,adaptive"])
    assert r.exit_code == 0, r.output
    both = json.loads(r.stdout)["modes"]
    assert [m["mode"] for m in both] == ["standard", "adaptive"] and all(m["pairs"] == 4 for m in both)
    assert both[0]["style_loss"] == pytest.approx(res["style_loss"])
    r = CliRunner().invoke(app, args + ["--mode", "standard,swirly"])
    assert r.exit_code == 2 and "swirly" in r.output


def test_two_process_ddp_training_on_cpu(tmp_path, data):
    """torchrun --nproc-per-node 2 -m dinstyle train (gloo): rank 0 writes one checkpoint and log."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    c, s = data
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent), "OMP_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-port", "29517",
                        "-m", "dinstyle", "train", "--content", str(c), "--style", str(s), "--out", str(tmp_path / "ddp"),
                        "--steps", "2", "--batch-size", "2", "--crop", "32", "--workers", "0", "--device", "cpu",
                        "--preview-every", "0", "--ema", "0.9"], env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    state = load_checkpoint(tmp_path / "ddp")
    assert state["step"] == 2 and set(state["ema"]) == set(state["model"])
    log = [json.loads(x) for x in (tmp_path / "ddp" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [2]  # rank 0 alone logs (every 10 steps and at the end)


def test_python_m_dinstyle_train_is_the_train_command():
    """The old entry `python -m dinstyle.train` runs `python -m dinstyle train` (without importing the CLI)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    p = subprocess.run([sys.executable, "-m", "dinstyle.train", "--help"], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0 and "Train MobileNet-DIN" in p.stdout, p.stderr


def test_dark_patches_count_dark_areas_over_light_ones_not_strokes():
    from dinstyle.metrics import dark_patches

    content = np.full((128, 128, 3), 200, np.uint8)
    assert dark_patches(content, content) == 0.0
    blotch = content.copy()
    blotch[32:64, 32:96] = 10  # a dark patch over an eighth of the light area
    assert 0.06 < dark_patches(blotch, content) <= 0.125  # its edges soften in the blur
    lines = content.copy()
    lines[:, ::8] = 0  # thin dark strokes everywhere: an etched texture, not a patch
    assert dark_patches(lines, content) == 0.0
    assert np.isnan(dark_patches(blotch, np.zeros_like(content)))  # no light area to darken


def test_flat_output_fraction_ranks_flat_outputs():
    from dinstyle.metrics import flat_output_fraction

    content = np.full((40, 40, 3), 200, np.uint8)
    assert flat_output_fraction(content, content) == 1.0
    textured = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    assert flat_output_fraction(textured, content) < 0.1
    assert np.isnan(flat_output_fraction(textured, textured))
    # a one-pixel checkerboard of a few levels (pixel-shuffle residue) still reads as flat
    checker = content.copy()
    checker[::2, ::2] += 6
    checker[1::2, 1::2] += 6
    assert flat_output_fraction(checker, content) == 1.0
    stripes = content.copy()  # strokes a few pixels wide do not
    stripes[:, (np.arange(40) // 4) % 2 == 1] -= 60
    assert flat_output_fraction(stripes, content) < 0.2


def test_sigterm_to_the_process_group_stops_at_a_step_boundary(tmp_path, data, cfg_of):
    """`kill -- -PGID` (or Ctrl-C) reaches the data workers too; the run must still checkpoint
    cleanly and resume, with no traceback."""
    import os
    import signal
    import subprocess
    import sys
    import time

    c, s = data
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "dinstyle", "train", "--content", str(c), "--style", str(s), "--out", str(run),
           "--crop", "32", "--batch-size", "2", "--workers", "1", "--checkpoint-every", "100000",
           "--preview-every", "0"]
    p = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)})
    deadline = time.time() + 180
    while time.time() < deadline and not ((run / "log.jsonl").exists() and (run / "log.jsonl").read_text()):
        time.sleep(0.05)
    os.killpg(p.pid, signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "Traceback" not in err, err
    step = load_checkpoint(run)["step"]
    assert step >= 10
    train(cfg_of(steps=100_000), run, resume=True, max_steps=1)
    assert load_checkpoint(run)["step"] == step + 1


def test_init_keeps_the_sources_model_options_unless_given(tmp_path):
    """--init from weights with deformable layers keeps them (their offset nets are not dropped);
    a model option given on the command line wins; --resume refuses every model option."""
    from dinstyle.errors import OptionError
    from dinstyle.train.options import MODEL, call_config

    src = tmp_path / "w"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"format_version": 1, "model": {"deform_kernel": 3, "dec_blocks": 1,
                                                                                "texture_kernel": 3}}))
    data = {"content_dir": str(tmp_path), "style_dir": str(tmp_path)}
    assert call_config(data)[0].model.deform_kernel == 0
    cfg = call_config(data, init=src)[0]
    assert (cfg.model.deform_kernel, cfg.model.dec_blocks, cfg.model.dec_fine_blocks) == (3, 1, None)
    assert cfg.model.texture_kernel == 3  # the source's texture filter is kept
    assert call_config({**data, "texture_kernel": 5})[0].model.texture_kernel == 5
    cfg = call_config({**data, "dec_blocks": 2, "dec_fine_blocks": 0}, init=src)[0]
    assert (cfg.model.deform_kernel, cfg.model.dec_blocks, cfg.model.dec_fine_blocks) == (3, 2, 0)
    assert call_config(data, init=tmp_path / "missing")[0].model.deform_kernel == 0  # --init reports it later
    for k in MODEL:
        flag = "--" + k.replace("_", "-")
        with pytest.raises(OptionError, match=f"{flag}.* cannot change on --resume"):
            call_config({k: 3}, resume=True)
