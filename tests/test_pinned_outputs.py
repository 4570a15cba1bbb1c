"""Numerics pinned before the issue-16 refactor: a tiny model's DIN parameters and outputs for every
DIN kind, the engine's uint8 outputs (padding, tiles, regions, blends, colour controls, video
statistics), the training losses and one optimiser step, and a style pack's header.

The reference (tests/data/pinned_outputs.npz) was written by this file at commit 492a5d4, before any
code moved. On the machine that wrote it (same CPU model, torch version and thread count) every value
must be equal to the bit; elsewhere float kernels may differ in the last bits, so values are compared
with a small tolerance there. Rewrite the reference only when a change of the numerics is intended:
``DINSTYLE_PIN_WRITE=1 python3 -m pytest tests/test_pinned_outputs.py``.
"""
from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import numpy as np
import pytest
import torch

REF = Path(__file__).resolve().parent / "data" / "pinned_outputs.npz"
WRITE = os.environ.get("DINSTYLE_PIN_WRITE") == "1"
TINY = dict(widths=(8, 8, 16), param_hidden=8, deform_kernel=3)


def _fingerprint() -> str:
    from dinstyle.runtime import cpu_name

    return f"{platform.machine()} | {cpu_name()} | torch {torch.__version__} | {torch.get_num_threads()} threads"


def _tiny_model(**kw):
    from dinstyle.config import ModelConfig
    from dinstyle.model import DinStyleNet

    torch.manual_seed(0)
    model = DinStyleNet(ModelConfig(**{**TINY, **kw}))
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # the weight/bias nets and the offsets respond to their inputs, as trained ones do
        for din in model.dins:
            for net in (din.weight_net, din.bias_net):
                net.conv2.weight.copy_(torch.randn(net.conv2.weight.shape, generator=g) * 0.3)
            if hasattr(din, "offset_net"):
                din.offset_net.weight.copy_(torch.randn(din.offset_net.weight.shape, generator=g) * 0.05)
    return model.eval()


def _style_feats(n=1, seed=2, hw=(10, 9)):
    g = torch.Generator().manual_seed(seed)
    return {t: torch.rand(n, c, *hw, generator=g) * 50 for t, c in {"relu2_1": 128, "relu3_1": 256, "relu4_1": 512}.items()}


def _layers(params):
    return [{k: v for k, v in p.items()} for p in params]


def _sub(y: torch.Tensor) -> np.ndarray:
    """Every other pixel of an output (N, 3, H, W): a quarter of the data, every code path still seen."""
    return y[:, :, ::2, ::2].contiguous().numpy()


def _model_values() -> dict[str, np.ndarray]:
    out = {}
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 16, 24, generator=g)
    for cfg_name, kw in (("k1", {}), ("k3", {"kernel_size": 3})):
        model = _tiny_model(**kw)
        for mode in ("standard", "adaptive", "deformable"):
            with torch.no_grad():
                params = model.style_params(_style_feats(2), mode)
                for i, p in enumerate(_layers(params)):
                    for k, v in p.items():
                        out[f"model/{cfg_name}/{mode}/params/{i}/{k}"] = v.numpy()
                key = f"model/{cfg_name}/{mode}"
                out[f"{key}/out"] = _sub(model(x, params))
                out[f"{key}/strength0.6"] = _sub(model(x, params, strength=0.6))
                stats = model.content_stats(torch.rand(2, 3, 32, 40, generator=g))
                out[f"{key}/stats_origin"] = _sub(model(x, params, stats=stats, origin=(8, 16)))
                w = torch.rand(2, 2, 16, 24, generator=g)
                w = w / w.sum(1, keepdim=True)
                out[f"{key}/regions"] = _sub(model.forward_regions(x, [params, None], w, strength=0.8))
    return out


def _tiny_stylizer(weights: Path):
    """A CPU Stylizer over the tiny model's weights, saved into ``weights``."""
    from dinstyle.checkpoint import save_weights
    from dinstyle.engine import Stylizer

    save_weights(_tiny_model(), weights, trained={"steps": 0, "note": "pinned"})
    return Stylizer(weights=weights, device="cpu")


def _engine_values(tmp_path: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    from dinstyle.engine import StatsSmoother

    st = _tiny_stylizer(tmp_path / "w")
    rng = np.random.default_rng(4)
    yy, xx = np.mgrid[0:30, 0:44]
    photo = np.clip(np.stack([xx * 5, yy * 8, (xx + yy) * 3], -1) + rng.integers(-20, 20, (30, 44, 3)), 0, 255)
    photo = photo.astype(np.uint8)
    flat = np.zeros((30, 44, 3), np.uint8)
    flat[:, 22:] = (200, 40, 90)
    paths = []
    for i, size in enumerate(((48, 40), (36, 52))):
        a = np.clip(rng.normal(120, 60, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
        paths.append(tmp_path / f"style{i}.png")
        Image.fromarray(a).save(paths[-1])
    mask = np.zeros((30, 44, 3), np.uint8)
    mask[:, 20:] = 255
    Image.fromarray(mask).save(tmp_path / "mask.png")
    out = {}
    for mode in ("standard", "adaptive", "deformable"):
        sty = st.load_style([paths[0]], mode=mode, style_size=40)
        for i, p in enumerate(_layers(sty.params)):
            for k, v in p.items():
                out[f"engine/{mode}/params/{i}/{k}"] = v.numpy()
        out[f"engine/{mode}/plain"] = st.stylize([photo], sty)[0]
        out[f"engine/{mode}/strength_preserve"] = st.stylize([photo], sty, strength=0.5, preserve_color=True)[0]
        out[f"engine/{mode}/tiled"] = st.stylize([photo], sty, tile=48)[0]
        blend = st.load_style([f"{paths[0]}:0.7", f"{paths[1]}:0.3"], mode=mode, style_size=40)
        out[f"engine/{mode}/blend"] = st.stylize([photo, flat], blend)[0]
        out[f"engine/{mode}/color_match"] = st.stylize([photo], sty, color_match=True)[0]
        regions = st.load_regions([str(paths[0]), "none", str(paths[1])], tmp_path / "mask.png", feather=3,
                                  mode=mode, style_size=40)
        out[f"engine/{mode}/regions"] = st.stylize([photo], regions)[0]
        smoother = StatsSmoother(0.9)
        frames = [np.roll(photo, 3 * i, axis=1) for i in range(4)]
        video = st.stylize(frames[:2], sty, stats_hook=smoother) + st.stylize(frames[2:], sty, stats_hook=smoother)
        out[f"engine/{mode}/video"] = np.stack(video)
    auto = st.load_style_auto([paths[1]], mode="auto", style_size=40)
    out["engine/auto"] = np.stack(st.stylize([photo, flat], auto))
    return out


def _train_values(vgg) -> dict[str, np.ndarray]:
    from dinstyle.config import ModelConfig, TrainConfig
    from dinstyle.train.loop import StyleTransferLoss, make_optimizer, style_targets, train_step

    out = {}
    g = torch.Generator().manual_seed(5)
    content, style = torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 3, 32, 32, generator=g)
    for mode in ("standard", "adaptive", "deformable"):
        model = _tiny_model().train()
        cfg = TrainConfig(model=ModelConfig(**TINY), lr=1e-3)
        net = StyleTransferLoss(model, vgg, cfg)
        opt = make_optimizer(model, cfg)
        maps, stats = style_targets(vgg, style)
        losses, y = train_step(net, opt, content, {t: maps[t] for t in model.cfg.style_taps}, stats, mode)
        out[f"train/{mode}/losses"] = losses.numpy()
        out[f"train/{mode}/output"] = _sub(y.detach())
        losses, _ = train_step(net, opt, content, {t: maps[t] for t in model.cfg.style_taps}, stats, mode)
        out[f"train/{mode}/losses_after_step"] = losses.numpy()
        out[f"train/{mode}/state"] = torch.cat([v.flatten()[:48] for v in model.state_dict().values()]).detach().numpy()
    return out


def _pack_headers(tmp_path: Path) -> dict[str, np.ndarray]:
    from safetensors import safe_open

    st = _tiny_stylizer(tmp_path / "wp")
    rng = np.random.default_rng(6)
    from PIL import Image

    Image.fromarray(rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(tmp_path / "p.png")
    out = {}
    for mode in ("standard", "adaptive", "deformable"):
        path = st.make_pack(tmp_path / "p.png", mode=mode, style_size=40).save(tmp_path / f"p_{mode}.dinpack")
        with safe_open(str(path), "pt") as f:
            meta = {k: v for k, v in (f.metadata() or {}).items() if k not in ("created", "model_id")}
            header = {k: [list(f.get_slice(k).get_shape()), f.get_slice(k).get_dtype()] for k in sorted(f.keys())}
            values = {k: f.get_tensor(k).numpy() for k in sorted(f.keys())}
        out[f"pack/{mode}/header"] = np.array(json.dumps({"meta": meta, "tensors": header}, sort_keys=True))
        for k, v in values.items():
            out[f"pack/{mode}/values/{k}"] = v
    return out


@pytest.fixture(scope="module")
def reference():
    if WRITE:
        return None
    if not REF.exists():
        pytest.fail(f"{REF} is missing (write it with DINSTYLE_PIN_WRITE=1 at the reference commit)")
    with np.load(REF) as data:
        return {k: data[k] for k in data.files}


def _check(values: dict[str, np.ndarray], reference, prefix: str) -> None:
    if WRITE:
        old = dict(np.load(REF)) if REF.exists() else {}
        old = {k: v for k, v in old.items() if not k.startswith(prefix) and k != "fingerprint"}
        REF.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(REF, fingerprint=np.array(_fingerprint()), **old, **values)
        return
    exact = str(reference["fingerprint"]) == _fingerprint()
    want = {k: v for k, v in reference.items() if k.startswith(prefix)}
    assert sorted(values) == sorted(want)
    for k, v in values.items():
        ref = want[k]
        assert v.shape == ref.shape and v.dtype == ref.dtype, k
        if exact or v.dtype.kind in "US":
            assert np.array_equal(v, ref), f"{k}: differs from the pinned reference"
        elif v.dtype == np.uint8:
            assert np.abs(v.astype(int) - ref.astype(int)).max() <= 2, k
        else:
            np.testing.assert_allclose(v, ref, rtol=1e-4, atol=1e-4, err_msg=k)


def test_model_outputs_per_din_kind(reference):
    _check(_model_values(), reference, "model/")


def test_engine_outputs_per_din_kind(reference, tmp_path):
    _check(_engine_values(tmp_path), reference, "engine/")


def test_training_losses_and_step_per_din_kind(reference, vgg):
    _check(_train_values(vgg), reference, "train/")


def test_style_pack_format_per_din_kind(reference, tmp_path):
    _check(_pack_headers(tmp_path), reference, "pack/")
