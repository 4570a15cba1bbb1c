"""The built wheel carries the shipped weights and built-in styles and works from any folder."""
import json
import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    src = tmp_path_factory.mktemp("src")  # a copy, so the build writes nothing into the checkout
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, src / name)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(ROOT / "dinstyle", src / "dinstyle", ignore=skip)
    shutil.copytree(ROOT / "weights", src / "weights", ignore=skip)  # with run/, which must stay out
    # no build isolation: setuptools is already here, and nothing is downloaded
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                        "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    (whl,) = out.glob("dinstyle-*.whl")
    return whl


def test_wheel_contents(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("config.json", "model.safetensors", "vgg19_relu4_1.safetensors", "MODEL_CARD.md", "VGG_LICENSE.md"):
        assert f"dinstyle/weights/{f}" in names
    assert not [n for n in names if "/run/" in n or n.endswith("checkpoint.pt")]  # the training run stays home
    assert "dinstyle/data/web/index.html" in names and "dinstyle/data/styles/SOURCES.md" in names
    assert len([n for n in names if n.startswith("dinstyle/data/styles/") and n.endswith(".jpg")]) == 11
    modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "dinstyle").rglob("*.py")}
    assert modules <= names, f"modules missing from the wheel (add their package to pyproject): {modules - names}"


def _outer_site_dirs() -> list[str]:
    """The running interpreter's site folders (system, venv or conda alike; the user site where
    enabled): the packages this suite runs with. A venv may live inside the checkout (CI's .ci-venv),
    so its folders stay; the editable install's path hook in them is a .pth file, which folders added
    by a .pth do not run, so the checkout itself stays off the path."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    return [d for d in dirs if Path(d).is_dir() and Path(d).resolve() != ROOT]


def test_installed_wheel_works_from_any_folder(wheel, tmp_path, images):
    env_dir = tmp_path / "venv"
    # A venv of its own (no system site packages: from a venv's python those would be the base
    # interpreter's, without typer & co.). The running interpreter's site folders are appended by a
    # .pth, so torch is not downloaded again; a .pth adds folders only and does not run the .pth files
    # in them, so the checkout's editable install stays out and the wheel's dinstyle is imported.
    venv.EnvBuilder(system_site_packages=False, with_pip=True).create(env_dir)
    py = env_dir / "bin" / "python"
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, timeout=60, check=True).stdout.strip()
    (Path(purelib) / "outer_site.pth").write_text("".join(f"{d}\n" for d in _outer_site_dirs()))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DINSTYLE_")}
    keep = [p for p in env.pop("PYTHONPATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(ROOT)]
    if keep:  # the checkout stays off the path, whatever the suite runs with
        env["PYTHONPATH"] = os.pathsep.join(keep)
    # --ignore-installed: the outer folders' dinstyle (the checkout's editable install) is not this venv's
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
                        str(wheel)], env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    exe = str(env_dir / "bin" / "dinstyle")

    r = subprocess.run([str(py), "-c", "import dinstyle, sys; print(dinstyle.__file__)"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.stdout.strip().startswith(str(env_dir)), r.stdout + r.stderr  # the wheel's copy, not the checkout
    r = subprocess.run([exe, "info", "--json"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    expected_id = json.loads(subprocess.run([sys.executable, "-m", "dinstyle", "info", "--json"], env=env,
                                            capture_output=True, text=True, timeout=300).stdout)["model_id"]
    assert info["trained"] is True and info["model_id"] == expected_id
    assert info["weights"].startswith(str(env_dir))
    assert "UNTRAINED" not in r.stderr and "warning" not in r.stderr

    photo = images("photo.jpg", (64, 48))
    r = subprocess.run([exe, "image", str(photo), "-s", "starry-night", "-o", "out.png"], cwd=work, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert Image.open(work / "out.png").size == (64, 48)
    assert list((tmp_path / "cache" / "dinstyle" / "packs" / expected_id).glob("starry-night-standard-*.dinpack"))
