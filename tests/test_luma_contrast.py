"""The luma contrast term (train.luma.luma_contrast_loss): each output's grey statistics nearest to
its own painting's among the batch's paintings."""
import json

import pytest
import torch
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.config import GREY_TAPS
from dinstyle.errors import OptionError
from dinstyle.model.losses import stats_distance
from dinstyle.train.loop import train
from dinstyle.train.luma import contrast_loss, grey, grey_stats, luma_contrast_loss, luma_distances, output_stats


def _paintings(n, size=40, seed=0):
    """n grey-level patterns that differ in stroke scale and contrast (noise smoothed by n scales)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        x = torch.rand(1, 1, size // (1 + 2 * i), size // (1 + 2 * i), generator=g)
        x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        out.append((0.5 + (x - 0.5) * (1.0 - 0.25 * i)).expand(-1, 3, -1, -1))
    return torch.cat(out)


def _out(vgg, imgs):
    """An output's grey statistics, with gradients, as the objective computes them."""
    return output_stats(vgg(grey(imgs)))


def test_distances_are_the_balanced_distance_pair_by_pair(vgg):
    imgs = _paintings(3)
    feats = _out(vgg, imgs)
    target = grey_stats(vgg, imgs.flip(0))
    d = luma_distances(feats, target)
    ours = grey_stats(vgg, imgs)
    for i in range(3):
        for j in range(3):
            ref = stats_distance({t: (m[i:i + 1], s[i:i + 1]) for t, (m, s) in ours.items()},
                                 {t: (m[j:j + 1], s[j:j + 1]) for t, (m, s) in target.items()}, GREY_TAPS)
            assert float(d[i, j]) == pytest.approx(float(ref), rel=1e-4, abs=1e-7)


def test_own_painting_nearest_costs_least(vgg):
    imgs = _paintings(3)
    target = grey_stats(vgg, imgs)
    right = luma_contrast_loss(_out(vgg, imgs), target, 0.25)
    wrong = luma_contrast_loss(_out(vgg, imgs.roll(1, 0)), target, 0.25)  # each output in another's strokes
    assert right.shape == (3,) and (right >= 0).all()
    assert float(right.mean()) < 0.5 * float(wrong.mean())
    # a sharper temperature rewards a clear margin more
    assert float(luma_contrast_loss(_out(vgg, imgs), target, 0.05).mean()) < float(right.mean())


def test_the_other_paintings_count_and_each_painting_has_its_own_scale():
    d = torch.tensor([[1.0, 2.0, 3.0], [2.0, 1.0, 2.5], [3.0, 2.0, 1.5]], requires_grad=True)
    none = torch.zeros(3, 3, dtype=torch.bool)
    loss = contrast_loss(d, none, 0.5)
    loss.sum().backward()
    g = d.grad
    assert (g.diagonal() > 0).all()  # nearer its own painting: lower
    assert (g[~torch.eye(3, dtype=torch.bool)] < 0).all()  # farther from the others: lower
    # a painting far from every output (its column 10x) weighs no more than the others
    far = d.detach().clone()
    far[:, 0] *= 10
    assert torch.allclose(contrast_loss(far, none, 0.5), loss.detach())
    # without the per-painting scale output 0 would never have painting 0 nearest; with it, it does
    assert float(contrast_loss(far, none, 0.5)[0]) < float(torch.log(torch.tensor(3.0)))


def test_a_painting_drawn_twice_is_not_its_own_negative(vgg):
    imgs = _paintings(2)
    twice = torch.cat([imgs[:1], imgs])  # painting 0 twice, then painting 1
    feats, target = _out(vgg, twice), grey_stats(vgg, twice)
    same = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    d = luma_distances(feats, target)
    loss = luma_contrast_loss(feats, target, 0.25)
    assert torch.allclose(loss, contrast_loss(d, same, 0.25))  # the repeat was recognised
    # output 0 against paintings 0 and 1 only, each column on its own scale
    s = d.mean(0)
    logits = torch.stack([-d[0, 0] / s[0], -d[0, 2] / s[2]]) / 0.25
    assert float(loss[0]) == pytest.approx(float(-torch.log_softmax(logits, 0)[0]), rel=1e-5, abs=1e-6)
    one = luma_contrast_loss(_out(vgg, imgs[:1]), grey_stats(vgg, imgs[:1]), 0.25)
    assert float(one) == 0.0  # one painting: nothing to tell apart


def test_style_indices_mark_a_repeat_whose_crops_differ(vgg):
    imgs = _paintings(3)  # three different crops, say, of paintings 5, 5 and 7
    feats, target = _out(vgg, imgs), grey_stats(vgg, imgs)
    d = luma_distances(feats, target)
    ids = torch.tensor([5, 5, 7])
    same = ids[:, None] == ids[None, :]
    assert torch.allclose(luma_contrast_loss(feats, target, 0.1, ids), contrast_loss(d, same, 0.1))
    assert not torch.allclose(luma_contrast_loss(feats, target, 0.1), contrast_loss(d, same, 0.1))


def test_the_gradient_pushes_the_other_paintings_away(vgg):
    imgs = _paintings(2)
    target = grey_stats(vgg, imgs)
    # output 0 halfway between its painting and the other one: a step on the term moves it towards its own
    out = torch.cat([0.5 * imgs[:1] + 0.5 * imgs[1:], imgs[1:]])
    out = out.clone().requires_grad_(True)
    opt = torch.optim.SGD([out], lr=0.5)
    d0 = luma_distances(_out(vgg, out), target).detach()
    for _ in range(5):
        opt.zero_grad()
        luma_contrast_loss(_out(vgg, out), target, 0.25).mean().backward()
        opt.step()
    d1 = luma_distances(_out(vgg, out), target).detach()
    assert float(d1[0, 0] - d1[0, 1]) < float(d0[0, 0] - d0[0, 1])


def test_training_with_the_term_logs_and_records_it(tmp_path, tiny_run):
    cfg = tiny_run(grey_contrast_weight=2.0, grey_contrast_temp=0.5)
    train(cfg, tmp_path / "r", max_steps=2)
    saved = json.loads((tmp_path / "r" / "train_config.json").read_text())
    assert saved["grey_contrast_weight"] == 2.0 and saved["grey_contrast_temp"] == 0.5
    last = json.loads((tmp_path / "r" / "log.jsonl").read_text().splitlines()[-1])
    assert last["contrast"] >= 0 and "grey" not in last  # its own column; the luma style term is off
    assert last["loss"] == pytest.approx(last["content"] + cfg.style_weight * last["style"] + 2.0 * last["contrast"], rel=1e-4)
    # the term reaches the weights: three steps with it and three without, from the same start, differ
    # (not one: Adam's first step moves each weight by lr times the sign of its gradient)
    from dinstyle.train.checkpoints import load_checkpoint
    train(tiny_run(), tmp_path / "plain", max_steps=3)
    train(tiny_run(grey_contrast_weight=2.0, grey_contrast_temp=0.5), tmp_path / "one", max_steps=3)
    a, b = load_checkpoint(tmp_path / "plain")["model"], load_checkpoint(tmp_path / "one")["model"]
    assert any(not torch.equal(a[k], b[k]) for k in a)
    # both luma terms at once share one VGG pass on the grey output and log one column each
    train(tiny_run(grey_contrast_weight=1.0, grey_style_weight=3.0), tmp_path / "b", max_steps=1)
    last = json.loads((tmp_path / "b" / "log.jsonl").read_text().splitlines()[-1])
    assert last["loss"] == pytest.approx(last["content"] + 20.0 * last["style"] + 3.0 * last["grey"] + last["contrast"], rel=1e-4)


def test_bad_settings_are_refused(tmp_path, tiny_run):
    for kw, msg in (({"grey_contrast_temp": 0.0}, "--grey-contrast-temp 0.0"),
                    ({"grey_contrast_temp": float("nan")}, "--grey-contrast-temp nan"),
                    ({"grey_contrast_temp": float("inf")}, "--grey-contrast-temp inf"),
                    ({"grey_contrast_weight": -1.0}, "loss weights finite and >= 0"),
                    ({"grey_contrast_weight": float("nan")}, "loss weights finite and >= 0")):
        with pytest.raises(OptionError, match=msg):
            train(tiny_run(**kw), tmp_path / "x", max_steps=1)
    assert not (tmp_path / "x" / "checkpoint.pt").exists()
    # the term alone cannot train: it tells paintings apart, nothing pulls the output anywhere
    with pytest.raises(OptionError, match="only tells paintings apart"):
        train(tiny_run(grey_contrast_weight=1.0, style_weight=0.0, content_weight=0.0), tmp_path / "x", max_steps=1)
    base = ["train", "--content", str(tmp_path / "c"), "--style", str(tmp_path / "s")]
    for extra, msg in ((["--grey-contrast-temp", "-1"], "--grey-contrast-temp -1.0: give a temperature of at least 0.001"),
                       (["--grey-contrast-weight", "-2"], "--grey-contrast-weight -2.0: must be >= 0"),
                       (["--grey-contrast-weight", "nan"], "--grey-contrast-weight nan: must be >= 0")):
        res = CliRunner().invoke(app, base + extra)
        assert res.exit_code == 2 and msg in res.stderr, res.stderr
        assert len(res.stderr.strip().splitlines()) == 1
    # a resumed run takes the new settings, checked the same way
    train(tiny_run(grey_contrast_weight=1.0), tmp_path / "r", max_steps=1)
    res = CliRunner().invoke(app, ["train", "--resume", str(tmp_path / "r"), "--grey-contrast-temp", "0"])
    assert res.exit_code == 2 and "--grey-contrast-temp 0.0" in res.stderr
    train(tiny_run(), tmp_path / "r", resume=True, max_steps=1, overrides={"grey_contrast_temp": 0.3})
    saved = json.loads((tmp_path / "r" / "train_config.json").read_text())
    assert saved["grey_contrast_weight"] == 1.0 and saved["grey_contrast_temp"] == 0.3
