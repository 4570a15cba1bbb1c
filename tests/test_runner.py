import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from dinstyle.errors import DinstyleError
from dinstyle.runner import ContentRunner


def _photo(w, h, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, ((xx // 16 + yy // 16) % 2) * 200], -1)
    return np.clip(img + rng.integers(-25, 25, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("size,tile,mode", [((300, 220), 64, "standard"), ((257, 131), 96, "standard"),
                                            ((300, 220), 64, "adaptive")])
def test_tiled_matches_untiled(st, images, size, tile, mode):
    style = st.load_style([images("s.png", (48, 48), seed=3)], style_size=48, mode=mode)
    img = _photo(*size)
    whole = st.stylize([img], style, tile=0, palette=0.0)[0].astype(int)
    tiled = st.stylize([img], style, tile=tile, palette=0.0)[0].astype(int)
    diff = np.abs(whole - tiled)
    assert tiled.shape == whole.shape
    assert diff.mean() < 0.05 and diff.max() <= 2
    # the palette map is fitted on the output, one map for the whole image (no seam can appear), but
    # a level of difference in the network's output moves its knots where this untrained model's
    # colours bunch up (measured: mean 0.03-0.25, a few pixels up to ~12 levels)
    whole = st.stylize([img], style, tile=0)[0].astype(int)
    tiled = st.stylize([img], style, tile=tile)[0].astype(int)
    diff = np.abs(whole - tiled)
    assert diff.mean() < 0.5 and (diff > 4).mean() < 0.01


def test_tile_option_validation(st):
    from dinstyle.errors import OptionError

    with pytest.raises(OptionError):
        st.runner.tile_size_for(10, 10, -1)
    assert st.runner.tile_size_for(100, 100, None) == 0
    assert st.runner.tile_size_for(5000, 5000, None) > 0


def test_large_image_peak_memory_is_bounded(tmp_path, tiny_weights, images):
    """A 24 MP image stylized in tiles stays far below what an untiled pass would need."""
    from PIL import Image

    big = tmp_path / "big.png"
    Image.fromarray(np.tile(_photo(600, 400), (10, 10, 1))).save(big, compress_level=1)  # 6000 x 4000
    style = images("s.png", (48, 48), seed=3)
    code = (
        "import json, resource, sys; from typer.testing import CliRunner; from dinstyle.cli import app; "
        f"r = CliRunner().invoke(app, ['image', {str(big)!r}, '-s', {str(style)!r}, '-w', {str(tiny_weights)!r}, "
        f"'-o', {str(tmp_path / 'o.jpg')!r}, '--json']); "
        "print(json.dumps({'code': r.exit_code, 'out': r.stdout, 'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": str(os.path.dirname(os.path.dirname(__file__)))})
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["code"] == 0, p.stderr
    assert json.loads(res["out"])["size"] == [6000, 4000]
    assert res["rss_mb"] < 3000


def test_out_of_memory_falls_back_to_smaller_batches_then_tiles(st, images, monkeypatch):
    style = st.load_style([images("s.png", (48, 48))], style_size=48)
    imgs = [np.full((64, 64, 3), i * 40, np.uint8) for i in range(4)]
    expected = st.stylize(imgs, style)
    real = ContentRunner.stylize
    calls = []

    def flaky(self, images, style, tile=None, **kw):
        calls.append((len(images), tile))
        if len(images) > 1 or (tile is None and images[0].shape[0] >= 256):
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(self, images, style, tile=tile, **kw)

    monkeypatch.setattr(ContentRunner, "stylize", flaky)
    out = st.stylize_resilient(imgs, style)
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip(out, expected))
    big = np.zeros((256, 256, 3), np.uint8)
    out = st.stylize_resilient([big], style)[0]
    assert out.shape == (256, 256, 3) and (1, 128) in calls

    def always(self, images, style, tile=None, **kw):
        raise torch.OutOfMemoryError("simulated")

    monkeypatch.setattr(ContentRunner, "stylize", always)
    with pytest.raises(DinstyleError, match="out of memory"):
        st.stylize_resilient([big], style)


def test_the_engine_decodes_the_image_not_its_margin_with_the_same_pixels(st, images):
    """The padded margin feeds the encoder and the DIN statistics; the decoder runs on the image
    (on the network's grid) plus its reach, and the pixels are those of decoding everything."""
    import torch.nn.functional as F

    style = st.load_style([images("s.png", (48, 48), seed=3)], style_size=48)
    img = _photo(150, 97)
    r = st.runner
    ph, pw, top, left = r._geometry(97, 150)
    t, l, h, w = r._window(ph, pw, top, left, 97, 150)
    m = st.model.multiple
    assert t % m == l % m == h % m == w % m == 0 and t <= top and l <= left
    assert t + h >= top + 97 and l + w >= left + 150 and h * w < ph * pw
    with torch.inference_mode():
        x = F.pad(r._to_tensor(img[None]), (left, pw - 150 - left, top, ph - 97 - top), mode="replicate")
        whole = r._to_uint8(st.model(x, style.params)[:, :, top:top + 97, left:left + 150])[0].astype(int)
    out = st.stylize([img], style, tile=0, palette=0.0, tone=0.0)[0].astype(int)  # the network alone
    assert out.shape == whole.shape
    assert np.abs(out - whole).max() <= 1
