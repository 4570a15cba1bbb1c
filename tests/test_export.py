import pytest
from typer.testing import CliRunner

from dinstyle.cli import app
from dinstyle.engine import Stylizer

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
