import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.engine import Stylizer
from dinstyle.runner import ContentRunner
from dinstyle.errors import DinstyleError

runner = CliRunner()


def test_onnx_export_matches_pytorch(tmp_path, tiny_weights, images):
    pytest.importorskip("onnxruntime")
    style = images("s.png", (48, 48), seed=2)
    r = runner.invoke(app, ["export", "onnx", "-o", str(tmp_path / "m.onnx"), "-s", str(style), "-w", str(tiny_weights),
                            "--style-size", "48"])
    assert r.exit_code == 0, r.output
    assert "matches PyTorch" in r.stderr
    from dinstyle.export import export_onnx

    res = export_onnx(Stylizer(weights=tiny_weights, device="cpu"), tmp_path / "open.onnx")  # DIN params as inputs
    assert res["parity_max_abs_error"] < 1e-3 and "din0_weight" in res["inputs"]


def test_bench_command_writes_json(tmp_path, tiny_weights):
    r = runner.invoke(app, ["bench", "--sizes", "512x512", "--repeats", "1", "-w", str(tiny_weights),
                            "-o", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "b.json").read_text())
    assert res["rows"][0]["seconds"] > 0 and res["macs_512"]["content_path"] > 0
    r = runner.invoke(app, ["bench", "--sizes", "8K", "-w", str(tiny_weights)])
    assert r.exit_code == 2


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
