import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dinstyle.cli import app


def test_ray_cluster_run_matches_local_run(tmp_path, images, tiny_weights):
    pytest.importorskip("ray")
    for i in range(3):
        images(f"in/p{i}.png", (40 + i, 30), seed=i)
    style = images("style.png", (48, 48), seed=9)
    runner = CliRunner()
    r = runner.invoke(app, ["cluster", str(tmp_path / "in"), "-s", str(style), "-w", str(tiny_weights), "-o",
                            str(tmp_path / "ray"), "--workers", "2", "--json", "--style-size", "48"])
    assert r.exit_code == 0, r.output
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    assert sorted(rec["status"] for rec in recs) == ["done"] * 3
    r = runner.invoke(app, ["image", str(tmp_path / "in"), "-s", str(style), "-w", str(tiny_weights), "-o",
                            str(tmp_path / "local"), "--style-size", "48"])
    assert r.exit_code == 0
    for f in sorted((tmp_path / "local").iterdir()):
        a = np.asarray(Image.open(f)).astype(int)
        b = np.asarray(Image.open(tmp_path / "ray" / f.name)).astype(int)
        assert np.abs(a - b).max() <= 1, f.name
