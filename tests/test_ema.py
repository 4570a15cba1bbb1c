"""The weight average (``--ema``): the arithmetic, its place in checkpoints, resume and export."""
import json

import pytest
import torch
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.config import ModelConfig, TrainConfig
from dinstyle.errors import CheckpointError, OptionError
from dinstyle.model import DinStyleNet
from dinstyle.train.ema import WeightAverage
from dinstyle.train.checkpoints import export_weights, init_weights, load_checkpoint
from dinstyle.train.loop import train
from dinstyle.train.options import call_config

TINY = ModelConfig(widths=(8, 8, 16), param_hidden=8)


def test_each_update_moves_the_average_a_share_of_the_way():
    net = torch.nn.Linear(2, 2)
    with torch.no_grad():
        net.weight.fill_(0.0)
    avg = WeightAverage(net, 0.75)
    with torch.no_grad():
        net.weight.fill_(4.0)
    avg.update(net)
    assert torch.allclose(avg.shadow["weight"], torch.full((2, 2), 1.0))  # 0.75 * 0 + 0.25 * 4
    avg.update(net)
    assert torch.allclose(avg.shadow["weight"], torch.full((2, 2), 1.75))  # 0.75 * 1 + 0.25 * 4
    assert torch.equal(net.weight, torch.full((2, 2), 4.0))  # the trained weights are left alone


def test_integer_buffers_are_copied_not_averaged():
    net = torch.nn.BatchNorm1d(2)
    avg = WeightAverage(net, 0.9)
    net.num_batches_tracked += 7
    avg.update(net)
    assert int(avg.shadow["num_batches_tracked"]) == 7


def test_decay_out_of_range_is_refused(tmp_path):
    with pytest.raises(ValueError):
        WeightAverage(torch.nn.Linear(1, 1), 1.0)
    with pytest.raises(OptionError, match="--ema"):
        call_config({"content_dir": "c", "style_dir": "s", "ema": 1.5})
    with pytest.raises(OptionError, match="--ema"):  # the library call checks it too
        train(TrainConfig(content_dir="c", style_dir="s", ema=float("nan")), tmp_path / "r")


def test_a_mismatched_average_is_refused():
    avg = WeightAverage(torch.nn.Linear(2, 2), 0.9)
    with pytest.raises(CheckpointError):
        avg.load_state_dict({"weight": torch.zeros(2, 2)})  # no bias
    with pytest.raises(CheckpointError):
        avg.load_state_dict({"weight": torch.zeros(1, 2), "bias": torch.zeros(2)})  # another shape


def test_training_updates_the_average_after_every_step(tmp_path, tiny_run):
    cfg = tiny_run(ema=0.5, lr=1e-3)
    torch.manual_seed(cfg.seed)
    weights = [DinStyleNet(TINY).state_dict()]  # the run's first weights (train seeds the same way)
    for n in (1, 2, 3):  # the trained weights after each step (runs are a pure function of seed and step)
        train(cfg, tmp_path / f"n{n}", max_steps=n)
        weights.append(load_checkpoint(tmp_path / f"n{n}")["model"])
    avg = load_checkpoint(tmp_path / "n3")["ema"]
    moved = 0
    for k, w0 in weights[0].items():
        if not w0.is_floating_point():
            continue
        want = w0.float()
        for w in weights[1:]:
            want = 0.5 * want + 0.5 * w[k].float()
        assert torch.allclose(avg[k], want, atol=1e-6), k
        moved += not torch.equal(weights[3][k], w0)
    assert moved  # the steps did change the weights


def test_export_writes_the_average_and_init_starts_from_it(tmp_path, tiny_run):
    train(tiny_run(ema=0.5, lr=1e-3), tmp_path / "run", max_steps=3)
    state = load_checkpoint(tmp_path / "run")
    assert set(state["ema"]) == set(state["model"])
    moved = [k for k in state["model"] if state["model"][k].is_floating_point()
             and not torch.equal(state["ema"][k], state["model"][k])]
    assert moved  # three steps of training: the average lags the trained weights

    export_weights(tmp_path / "run", tmp_path / "avg")
    export_weights(tmp_path / "run", tmp_path / "raw", raw=True)
    from safetensors.torch import load_file

    avg, raw = load_file(str(tmp_path / "avg" / "model.safetensors")), load_file(str(tmp_path / "raw" / "model.safetensors"))
    for k in moved:
        assert torch.equal(avg[k], state["ema"][k].float()) and torch.equal(raw[k], state["model"][k].float())
    assert json.loads((tmp_path / "avg" / "config.json").read_text())["trained"]["weight_average"] == 0.5
    assert json.loads((tmp_path / "raw" / "config.json").read_text())["trained"]["weight_average"] == 0.0

    model = DinStyleNet(TINY)
    init_weights(model, tmp_path / "run")  # --init from the run starts from what export writes
    assert all(torch.equal(model.state_dict()[k], state["ema"][k]) for k in moved)


def test_resume_continues_the_average_exactly(tmp_path, tiny_run):
    cfg = tiny_run(ema=0.5, lr=1e-3)
    train(cfg, tmp_path / "a", max_steps=3)
    train(cfg, tmp_path / "b", max_steps=2)
    train(cfg, tmp_path / "b", resume=True, max_steps=1)
    a, b = load_checkpoint(tmp_path / "a"), load_checkpoint(tmp_path / "b")
    for k in a["ema"]:
        assert torch.equal(a["ema"][k], b["ema"][k]), k


def test_a_run_without_an_average_gets_one_on_resume_from_its_weights_then(tmp_path, tiny_run):
    train(tiny_run(lr=1e-3), tmp_path / "r", max_steps=1)
    assert "ema" not in load_checkpoint(tmp_path / "r")
    train(tiny_run(lr=1e-3), tmp_path / "r", resume=True, max_steps=1, overrides={"ema": 0.9})
    state = load_checkpoint(tmp_path / "r")
    assert "ema" in state and json.loads(state["config_json"])["ema"] == 0.9


def test_cli_options(tmp_path, tiny_run):
    res = CliRunner().invoke(app, ["train", "--content", str(tmp_path / "c"), "--style", str(tmp_path / "s"), "--ema", "1"])
    assert res.exit_code == 2 and "--ema 1.0: give a decay in [0, 1)" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    train(tiny_run(ema=0.9, lr=1e-3), tmp_path / "run", max_steps=1)
    res = CliRunner().invoke(app, ["export-weights", str(tmp_path / "run"), "--out", str(tmp_path / "w"), "--raw"])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "w" / "config.json").read_text())["trained"]["weight_average"] == 0.0
