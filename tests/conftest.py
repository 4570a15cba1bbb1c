from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
VGG_PTH = SHARED / "models" / "vgg19_to_relu4_1.pth"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def pytest_configure(config):
    os.environ.setdefault("DINSTYLE_VGG", str(VGG_PTH))


@pytest.fixture(scope="session")
def vgg():
    from dinstyle.checkpoint import load_vgg

    return load_vgg(VGG_PTH if VGG_PTH.exists() else None)


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory, vgg) -> Path:
    """A small (untrained but marked as a test fixture) model, saved in the shipped format."""
    from dinstyle.checkpoint import save_weights
    from dinstyle.config import ModelConfig
    from dinstyle.model import DinStyleNet

    torch.manual_seed(0)
    model = DinStyleNet(ModelConfig(widths=(8, 8, 16), param_hidden=8))
    for din in model.dins:  # make the weight/bias nets respond to the style, as trained ones do
        for net in (din.weight_net, din.bias_net):
            torch.nn.init.normal_(net.conv2.weight, std=0.3)
    d = tmp_path_factory.mktemp("weights")
    save_weights(model, d, trained={"steps": 0, "note": "test fixture"}, vgg=vgg)
    return d


@pytest.fixture(scope="module")
def st(tiny_weights):
    """One Stylizer on the tiny model per test module (tests that change its state make their own)."""
    from dinstyle.engine import Stylizer

    return Stylizer(weights=tiny_weights, device="cpu")


@pytest.fixture
def two_styles(tmp_path):
    """Two style images that differ (a warm smooth one, blue stripes), written into tmp_path."""
    rng = np.random.default_rng(0)
    a = np.clip(rng.normal((200, 60, 40), 20, (48, 48, 3)), 0, 255).astype(np.uint8)  # warm, smooth
    b = np.zeros((48, 48, 3), np.uint8)
    b[::4] = (30, 80, 255)  # blue stripes on black
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    return tmp_path / "a.png", tmp_path / "b.png"


@pytest.fixture
def refused_everywhere(tmp_path, tiny_weights):
    """Check(photo, style, *option): `image`, `video` and `cluster` each refuse the option with one
    line naming it and exit code 2, and write nothing."""
    def _check(photo: Path, style: Path, *option: str) -> None:
        from typer.testing import CliRunner

        from dinstyle.cli.app import app

        outs = {"image": tmp_path / "bad.png", "video": tmp_path / "v.mp4", "cluster": tmp_path / "c"}
        for cmd, out in outs.items():
            r = CliRunner().invoke(app, [cmd, str(photo), "-o", str(out), "-s", str(style), "-w", str(tiny_weights),
                                         *option])
            assert r.exit_code == 2 and " ".join(option) in r.output, (cmd, r.output)
        assert not any(out.exists() for out in outs.values())
    return _check


@pytest.fixture
def lossless_clip(tmp_path):
    """Factory: lossless_clip(name, frames, fps=12) -> path of an H.264 clip (crf 0) of those frames."""
    def _make(name: str, frames: list[np.ndarray], fps: int = 12) -> Path:
        import imageio_ffmpeg

        path = tmp_path / name
        h, w = frames[0].shape[:2]
        gen = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, macro_block_size=1, ffmpeg_log_level="error",
                                          output_params=["-crf", "0"])
        gen.send(None)
        for fr in frames:
            gen.send(np.ascontiguousarray(fr))
        gen.close()
        return path
    return _make


def make_image(path: Path, size=(40, 30), mode="RGB", seed=0, **save_kw) -> Path:
    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 255 // max(w - 1, 1), yy * 255 // max(h - 1, 1), (xx + yy) % 256], -1).astype(np.uint8)
    base = np.clip(base.astype(int) + rng.integers(-20, 20, base.shape), 0, 255).astype(np.uint8)
    im = Image.fromarray(base, "RGB")
    if mode != "RGB":
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **save_kw)
    return path


@pytest.fixture
def images(tmp_path):
    """Factory: images(name, size=(w, h), mode=...) -> path of a synthetic image."""
    def _make(name: str, size=(40, 30), mode="RGB", seed=0, **kw):
        return make_image(tmp_path / name, size, mode, seed, **kw)
    return _make


TINY_MODEL_WIDTHS = dict(widths=(8, 8, 16), param_hidden=8)


@pytest.fixture
def tiny_run(tmp_path, images):
    """A factory of TrainConfigs for a tiny model on three 40x40 photos and three styles (written
    once per test), batch 2, crop 32, 10 steps, one log line per step; keywords override."""
    from dinstyle.config import ModelConfig, TrainConfig

    for i in range(3):
        images(f"c/{i}.png", (40, 40), seed=i)
        images(f"s/{i}.png", (40, 40), seed=10 + i)

    def make(**kw) -> TrainConfig:
        base = dict(content_dir=str(tmp_path / "c"), style_dir=str(tmp_path / "s"), batch_size=2, crop=32, workers=0,
                    log_every=1, bank_size=40, checkpoint_every=1000, preview_every=0,
                    model=ModelConfig(**TINY_MODEL_WIDTHS), steps=10)
        return TrainConfig(**{**base, **kw})

    return make
