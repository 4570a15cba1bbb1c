"""Built-in styles by name: resolve and render everywhere a style is accepted, packs cached per model id."""
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from dinstyle import builtin_styles
from dinstyle.cli import app
from dinstyle.engine import Stylizer

runner = CliRunner()


def run(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "dinstyle" / "packs"


def test_catalog_files_and_credits():
    assert len(builtin_styles.STYLES) == 11
    credits = (builtin_styles.STYLES_DIR / "SOURCES.md").read_text()
    for s in builtin_styles.STYLES.values():
        with Image.open(s.path) as im:
            assert im.format == "JPEG" and max(im.size) <= 512
        assert f"| {s.name} |" in credits and s.painter and s.year and s.licence


def test_names_resolve_and_render(tiny_weights, images, tmp_path, cache):
    photo = images("photo.png", (40, 30))
    st = Stylizer(weights=tiny_weights, device="cpu")
    sty = st.load_style(["great-wave"])
    assert sty.label == "great-wave" and sty.mode == "standard"
    out = st.stylize_file(photo, sty)
    assert out.shape == (30, 40, 3)
    other = st.stylize_file(photo, st.load_style(["udnie"]))
    assert np.abs(out.astype(int) - other).mean() > 0.5  # two names, two styles
    blend = st.load_style(["great-wave:0.7", "udnie:0.3"])
    assert blend.label == "great-wave70+udnie30"
    r = run("image", photo, "-s", "starry-night", "-w", tiny_weights, "-o", tmp_path / "o.png", "--mode", "adaptive")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "o.png").size == (40, 30)
    names = sorted(p.name.split("-2")[0] for p in (cache / st.model_id).iterdir())
    assert names == ["great-wave-standard", "starry-night-adaptive", "udnie-standard"]


def test_cache_is_keyed_by_model_id(tiny_weights, tmp_path, cache, monkeypatch):
    import shutil

    calls = []
    from dinstyle.styles import StylePath

    real = StylePath.encode

    def counting(self, *a, **kw):
        calls.append(self.model_id)
        return real(self, *a, **kw)

    monkeypatch.setattr(StylePath, "encode", counting)
    a = Stylizer(weights=tiny_weights, device="cpu")
    first = a.load_style(["the-scream"]).params
    assert len(calls) == 1
    Stylizer(weights=tiny_weights, device="cpu").load_style(["the-scream"])  # a new process: from the cache
    assert len(calls) == 1
    # new weights (same shapes, other values): a new model id, so the pack is computed again
    w2 = tmp_path / "w2"
    shutil.copytree(tiny_weights, w2)
    from safetensors.torch import load_file, save_file

    sd = load_file(str(w2 / "model.safetensors"))
    for k in sd:
        if "weight_net" in k:
            sd[k] = sd[k] * 1.5
    save_file(sd, str(w2 / "model.safetensors"))
    b = Stylizer(weights=w2, device="cpu")
    assert b.model_id != a.model_id
    second = b.load_style(["the-scream"]).params
    assert len(calls) == 2 and calls[-1] == b.model_id
    assert not all(np.allclose(x["weight"].numpy(), y["weight"].numpy()) for x, y in zip(first, second))
    assert sorted(p.name for p in cache.iterdir()) == sorted([a.model_id, b.model_id])
    # a damaged cache entry is recomputed, not an error
    for p in (cache / a.model_id).iterdir():
        p.write_bytes(b"garbage")
    Stylizer(weights=tiny_weights, device="cpu").load_style(["the-scream"])
    assert len(calls) == 3


def test_file_wins_with_a_note(tiny_weights, images, tmp_path, monkeypatch):
    photo = images("photo.png", (40, 30))
    images("udnie", (48, 48), seed=5, format="PNG")  # a file called like a built-in style
    monkeypatch.chdir(tmp_path)
    r = run("image", photo, "-s", "udnie", "-w", tiny_weights, "-o", tmp_path / "o.png")
    assert r.exit_code == 0, r.output
    assert "using the file udnie here, not the built-in style" in r.stderr


def test_unknown_name_one_line_exit_2(tiny_weights, images, tmp_path):
    photo = images("photo.png", (40, 30))
    r = run("image", photo, "-s", "starry", "-w", tiny_weights, "-o", tmp_path / "o.png")
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "did you mean starry-night?" in lines[0] and "Traceback" not in r.output
    assert not (tmp_path / "o.png").exists()
    r = run("image", photo, "-s", "missing.jpg", "-w", tiny_weights, "-o", tmp_path / "o.png")
    assert r.exit_code == 2 and "missing.jpg: style not found" in r.stderr


def test_styles_list_sheet_precompute(tiny_weights, images, tmp_path, monkeypatch):
    r = run("styles", "--json")
    assert r.exit_code == 0
    rows = json.loads(r.stdout)
    assert [x["name"] for x in rows] == list(builtin_styles.STYLES)
    assert {"painter", "year", "licence", "title"} <= set(rows[0])
    r = run("styles")
    assert r.exit_code == 0 and "starry-night" in r.stdout and "Hokusai" in r.stdout
    photo = images("photo.png", (40, 30))
    images("udnie", (48, 48), seed=5, format="PNG")  # the sheet of built-in styles ignores this file
    monkeypatch.chdir(tmp_path)
    r = run("styles", "--sheet", photo, "-o", tmp_path / "sheet.png", "-w", tiny_weights, "--cell", "32")
    assert r.exit_code == 0, r.output
    assert "using the file" not in r.stderr
    w, h = Image.open(tmp_path / "sheet.png").size
    assert w > 3 * 32 and h > 3 * 32  # 12 cells: the photo and 11 styles
    r = run("styles", "--sheet", tmp_path / "nope.png", "-o", tmp_path / "s2.png", "-w", tiny_weights)
    assert r.exit_code == 2 and not (tmp_path / "s2.png").exists()
    r = run("precompute", "great-wave", "-o", tmp_path / "packs", "-w", tiny_weights)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "packs" / "great-wave.dinpack").is_file()
    r = run("sheet", photo, "-s", "great-wave", "-s", "bear", "-o", tmp_path / "two.png", "-w", tiny_weights,
            "--cell", "32")
    assert r.exit_code == 0, r.output
