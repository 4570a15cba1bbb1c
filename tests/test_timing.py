import json

from typer.testing import CliRunner

from dinstyle.cli import app

runner = CliRunner()


def test_bench_command_writes_json(tmp_path, tiny_weights):
    r = runner.invoke(app, ["bench", "--sizes", "512x512", "--repeats", "1", "-w", str(tiny_weights),
                            "-o", str(tmp_path / "b.json")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "b.json").read_text())
    assert res["rows"][0]["seconds"] > 0 and res["macs_512"]["content_path"] > 0
    r = runner.invoke(app, ["bench", "--sizes", "8K", "-w", str(tiny_weights)])
    assert r.exit_code == 2
