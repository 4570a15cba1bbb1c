import json

import cv2
import numpy as np
import pytest
import torch

from dinstyle.config import ModelConfig, TrainConfig
from dinstyle.train.loop import train
from dinstyle.train.luma import GreyStatsMemo, grey, grey_stats, luma_style_loss

TINY = ModelConfig(widths=(8, 8, 16), param_hidden=8)


def test_grey_levels_are_the_evaluations():
    rgb = np.random.default_rng(0).integers(0, 256, (17, 23, 3), dtype=np.uint8)
    ours = grey(torch.from_numpy(rgb).permute(2, 0, 1)[None].double() / 255)[0]
    assert torch.equal(ours[0], ours[2])  # one level on all three channels
    ref = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64) / 255
    assert np.abs(ours[0].numpy() - ref).max() < 1 / 255  # OpenCV rounds to whole levels


def test_the_term_ignores_colour_and_sees_strokes(vgg):
    g = torch.Generator().manual_seed(0)
    painting = torch.rand(1, 3, 48, 48, generator=g)
    target = grey_stats(vgg, painting)
    # the same light and dark in other colours: the hue is the palette transfer's business
    level = grey(painting)[:, :1]
    tinted = torch.cat([level, level, level], 1)
    assert float(luma_style_loss(vgg, tinted, target)) < 1e-6
    smooth = torch.full_like(painting, 0.5)
    assert float(luma_style_loss(vgg, smooth, target)) > 0.01


def test_memo_computes_each_style_once():
    calls = []

    def compute(idx):
        calls.append(idx.tolist())
        return {"relu1_1": (idx.float().view(-1, 1, 1, 1).repeat(1, 2, 1, 1), -idx.float().view(-1, 1, 1, 1))}

    memo = GreyStatsMemo(5, torch.device("cpu"))
    first = memo.lookup(torch.tensor([3, 1, 3]), compute)
    again = memo.lookup(torch.tensor([1, 4, 3]), compute)
    assert calls == [[1, 3], [4]]
    assert first["relu1_1"][0][:, 0, 0, 0].tolist() == [3, 1, 3]
    assert again["relu1_1"][1][:, 0, 0, 0].tolist() == [-1, -4, -3]


def _cfg(data, **kw):
    c, s = data
    return TrainConfig(content_dir=str(c), style_dir=str(s), batch_size=2, crop=32, workers=0, log_every=1,
                       bank_size=40, checkpoint_every=1000, preview_every=0, model=TINY, steps=10, **kw)


def test_training_with_the_luma_style_term(tmp_path, images):
    for i in range(3):
        images(f"c/{i}.png", (40, 40), seed=i)
        images(f"s/{i}.png", (40, 40), seed=10 + i)
    data = (tmp_path / "c", tmp_path / "s")
    for view in (48, 0):  # styles seen whole (memoised) and as random crops
        cfg = _cfg(data, grey_style_weight=30.0, style_view=view)
        run = tmp_path / f"r{view}"
        train(cfg, run, max_steps=2)
        assert json.loads((run / "train_config.json").read_text())["grey_style_weight"] == 30.0
        last = json.loads((run / "log.jsonl").read_text().splitlines()[-1])
        assert last["loss"] > last["content"] + cfg.style_weight * last["style"]  # the luma term is in the sum
        assert last["grey"] > 0  # and logged as its own column
    # the luma term alone trains too (no RGB style loss)
    only = _cfg(data, grey_style_weight=30.0, style_weight=0.0, content_weight=0.0)
    train(only, tmp_path / "g", max_steps=1)
    last = json.loads((tmp_path / "g" / "log.jsonl").read_text().splitlines()[-1])
    assert last["loss"] > 0 and last["loss"] == pytest.approx(30.0 * last["grey"], rel=1e-4)


def test_memo_file_keeps_the_statistics_for_the_next_run(tmp_path):
    def compute(idx):
        return {"relu1_1": (idx.float().view(-1, 1, 1, 1), idx.float().view(-1, 1, 1, 1) + 0.5)}

    path = tmp_path / "grey-stats-x.safetensors"
    memo = GreyStatsMemo(4, torch.device("cpu"), path)
    memo.lookup(torch.tensor([2, 0]), compute)
    memo.save()
    again = GreyStatsMemo(4, torch.device("cpu"), path)
    assert again.valid.tolist() == [True, False, True, False]

    def refuse(idx):
        raise AssertionError("computed again")

    got = again.lookup(torch.tensor([0, 2]), refuse)
    assert got["relu1_1"][1][:, 0, 0, 0].tolist() == [0.5, 2.5]
    path.write_bytes(b"damaged")
    assert not GreyStatsMemo(4, torch.device("cpu"), path).valid.any()  # starts afresh
    assert not GreyStatsMemo(5, torch.device("cpu"), tmp_path / "none").valid.any()
