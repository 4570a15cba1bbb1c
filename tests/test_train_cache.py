import pytest
import torch

from dinstyle.config import ModelConfig, TrainConfig
from dinstyle.model import DinStyleNet
from dinstyle.train.cache import StyleCache
from dinstyle.train.data import ImageBank
from dinstyle.train.loop import Batches, StyleTransferLoss, make_optimizer, style_targets, train_step

TINY = ModelConfig(widths=(8, 8, 16), param_hidden=8)


def _setup(tmp_path, images, vgg, **kw):
    for i in range(3):
        images(f"c/{i}.png", (40, 40), seed=i)
        images(f"s/{i}.png", (40, 40), seed=10 + i)
    cfg = TrainConfig(batch_size=3, crop=32, bank_size=40, style_view=40, model=TINY, lr=1e-4, **kw)
    banks = {"content": ImageBank.from_folder(tmp_path / "c", 40), "style": ImageBank.from_folder(tmp_path / "s", 40)}
    torch.manual_seed(0)
    model = DinStyleNet(TINY)
    return cfg, banks, model


def test_cached_style_targets_give_the_same_loss_as_computing_them(tmp_path, images, vgg):
    cfg, banks, model = _setup(tmp_path, images, vgg)
    batches = Batches(cfg, banks, vgg, model, torch.device("cpu"), "none", 0, tmp_path / "cache.f16")
    net = StyleTransferLoss(model, vgg, cfg)
    plan = batches.plan(0)
    content = batches.content(plan)
    _, maps1, stats1 = batches.style(plan)  # first use: computed and stored
    _, maps2, stats2 = batches.style(plan)  # second use: read back
    n = len(torch.unique(plan.style))
    assert batches.cache.misses == n and batches.cache.hits == 6 - n  # each style computed once
    assert (tmp_path / "cache.f16").exists()
    fresh_maps, fresh_stats = style_targets(vgg, batches.style_images(plan.style))
    with torch.no_grad():
        cached = net(content, maps2, stats2)[:3]
        direct = net(content, {t: fresh_maps[t] for t in TINY.style_taps}, fresh_stats)[:3]
    for a, b in zip(cached, direct):
        assert torch.allclose(a, b, rtol=2e-3), (a, b)
    batches.cache.close()
    assert not (tmp_path / "cache.f16").exists()


def test_training_steps_with_cached_targets_reduce_the_loss(tmp_path, images, vgg):
    cfg, banks, model = _setup(tmp_path, images, vgg)
    batches = Batches(cfg, banks, vgg, model, torch.device("cpu"), "none", 0, None)
    net, opt = StyleTransferLoss(model, vgg, cfg), make_optimizer(model, cfg)
    plan = batches.plan(0)
    content = batches.content(plan)
    losses = []
    for _ in range(4):
        _, maps, stats = batches.style(plan)
        losses.append(float(train_step(net, opt, content, maps, stats)[0][0]))
    assert batches.cache.hits >= 9
    assert losses[-1] < losses[0]


def test_cache_fills_only_missing_styles():
    calls = []

    def compute(idx):
        calls.append(idx.tolist())
        n = len(idx)
        return {"relu1_1": torch.rand(n, 64, 4, 4), "relu2_1": torch.full((n, 128, 2, 2), 1.0) * idx.view(-1, 1, 1, 1),
                "relu3_1": torch.rand(n, 256, 1, 1), "relu4_1": torch.rand(n, 512, 1, 1)}

    cache = StyleCache(5, ("relu2_1",), torch.device("cpu"))
    maps, stats = cache.lookup(torch.tensor([3, 1, 3]), compute)
    assert calls == [[1, 3]] and maps["relu2_1"][:, 0, 0, 0].tolist() == [3.0, 1.0, 3.0]
    cache.lookup(torch.tensor([1, 4]), compute)
    assert calls == [[1, 3], [4]]
    assert stats["relu1_1"][0].shape == (3, 64, 1, 1)


def test_a_kept_cache_is_reopened_by_the_next_run(tmp_path):
    def compute(idx):
        n = len(idx)
        return {"relu1_1": torch.rand(n, 64, 4, 4), "relu2_1": torch.ones(n, 128, 2, 2) * idx.view(-1, 1, 1, 1),
                "relu3_1": torch.rand(n, 256, 1, 1), "relu4_1": torch.rand(n, 512, 1, 1)}

    path = tmp_path / "style-cache-x.f16"
    first = StyleCache(4, ("relu2_1",), torch.device("cpu"), path, keep=True)
    _, stats = first.lookup(torch.tensor([2, 3]), compute)
    first.close()
    assert path.exists()
    second = StyleCache(4, ("relu2_1",), torch.device("cpu"), path, keep=True)
    maps, stats2 = second.lookup(torch.tensor([3, 2]), lambda idx: pytest.fail("recomputed"))
    assert second.hits == 2 and maps["relu2_1"][:, 0, 0, 0].tolist() == [3.0, 2.0]
    assert torch.equal(stats2["relu4_1"][0][1], stats["relu4_1"][0][0])
    path.with_name(path.name + ".index").write_bytes(b"damaged")
    third = StyleCache(4, ("relu2_1",), torch.device("cpu"), path, keep=True)
    assert not third.valid.any()  # a damaged index starts afresh
