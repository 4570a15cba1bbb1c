"""The README's Architecture section, checked: every module's dinstyle imports (module level, inside
functions and under TYPE_CHECKING alike, read with ``ast``) stay within the layers it may use, so no
import runs back up (cli -> tools -> batch/frames -> engine -> runner -> styles -> support -> model, io)."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "dinstyle"

# layer -> its modules (a package name covers its submodules)
LAYERS = {
    "base": {"errors", "config", "events", "color", "palette", "tone", "builtin_styles"},
    "io": {"io"},
    "model": {"model"},
    "support": {"masks", "metrics", "runtime", "checkpoint", "packs"},
    "styles": {"styles"},
    "runner": {"runner"},
    "engine": {"engine"},
    "batch": {"batch", "frames"},
    "tools": {"export", "timing", "report", "sheets", "evaluate", "cluster", "web"},
    "train": {"train"},
    "cli": {"cli", "__main__"},
    "api": {""},  # dinstyle/__init__.py: the library's public names
}
_BELOW_STYLES = {"base", "io", "model", "support"}
# layer -> the layers it may import
MAY_IMPORT = {
    "base": {"base"},
    "io": {"base", "io"},  # independent of the model
    "model": {"base", "model"},  # nn.Modules and their maths: no files, no engine
    "support": _BELOW_STYLES,
    "styles": _BELOW_STYLES | {"styles"},
    "runner": _BELOW_STYLES | {"styles", "runner"},  # the style types it runs; the style path never imports it
    "engine": _BELOW_STYLES | {"styles", "runner", "engine"},
    "batch": _BELOW_STYLES | {"styles", "runner", "engine", "batch"},
    "tools": _BELOW_STYLES | {"styles", "runner", "engine", "batch", "tools"},
    "train": _BELOW_STYLES | {"train"},  # model + losses, data and checkpoints; not the engine, the CLI or eval
    "cli": set(LAYERS),
    "api": _BELOW_STYLES | {"styles", "runner", "engine"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)  # "" is the package itself


def layer_of(name: str) -> str:
    """The layer of a module name relative to dinstyle ("io.video", "train", "")."""
    for layer, members in LAYERS.items():
        if name in members or name.split(".")[0] in members - {""}:
            return layer
    raise KeyError(name)


def _is_module(name: str) -> bool:
    base = PKG.joinpath(*name.split(".")) if name else PKG
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def dinstyle_imports(path: Path) -> set[str]:
    """The dinstyle modules ``path`` imports, relative to dinstyle ("" for the package itself)."""
    me = module_name(path)
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                pkg = ["dinstyle", *me.split(".")] if path.name == "__init__.py" else ["dinstyle", *me.split(".")[:-1]]
                pkg = [p for p in pkg if p]
                base = ".".join(pkg[:len(pkg) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            # "from dinstyle.io import memory" imports the module dinstyle.io.memory
            mods = [f"{base}.{a.name}" if _is_module(f"{base}.{a.name}".removeprefix("dinstyle").lstrip("."))
                    else base for a in node.names]
        else:
            continue
        for m in mods:
            if m == "dinstyle" or m.startswith("dinstyle."):
                found.add(m.removeprefix("dinstyle").lstrip("."))
    found.discard(me)
    return found


MODULES = sorted(PKG.rglob("*.py"))


def _layer_or_none(name):
    try:
        return layer_of(name)
    except KeyError:
        return None


def test_every_module_has_a_layer():
    assert [str(p.relative_to(ROOT)) for p in MODULES if _layer_or_none(module_name(p)) is None] == []


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_import_runs_up(path):
    me = module_name(path)
    layer = layer_of(me)
    wrong = sorted(f"{m or 'dinstyle'} ({layer_of(m)})" for m in dinstyle_imports(path)
                   if layer_of(m) not in MAY_IMPORT[layer])
    assert wrong == [], f"dinstyle/{path.relative_to(PKG)} ({layer}) imports above or beside it: {', '.join(wrong)}"


def test_the_arrows_the_readme_promises():
    def imports_of(rel):
        return {layer_of(m) for m in dinstyle_imports(PKG / rel)}

    assert "cli" not in imports_of("train/__main__.py")  # re-executes `python -m dinstyle train`, no import
    assert "train" not in imports_of("evaluate.py")
    for p in MODULES:  # only the CLI imports the CLI
        if layer_of(module_name(p)) != "cli":
            assert "cli" not in {layer_of(m) for m in dinstyle_imports(p)}, p


def test_the_checker_sees_imports():
    """The reader finds imports in functions, under TYPE_CHECKING and of submodules."""
    assert {"cli.options", "cli.render", "cli.app", "batch", "sheets"} <= dinstyle_imports(PKG / "cli" / "stylize.py")
    assert "engine" in dinstyle_imports(PKG / "batch.py")  # TYPE_CHECKING only
    assert "frames" in dinstyle_imports(PKG / "batch.py")  # inside run_videos
    assert "io.memory" in dinstyle_imports(PKG / "styles.py")  # from dinstyle.io import memory
    assert layer_of("io.video") == "io" and layer_of("train.loop") == "train" and layer_of("") == "api"
    assert "cli" not in MAY_IMPORT["model"] and "model" not in MAY_IMPORT["io"]


def test_readme_names_every_module():
    """A new module gets its line in the README's Architecture section."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("\n## Architecture\n"):]
    end = section.find("\n## ", 1)
    section = section if end < 0 else section[:end]
    missing = [str(p.relative_to(ROOT)) for p in MODULES if p.name != "__init__.py"
               and not (f"`{p.name}`" in section if p.parent == PKG else f"`{p.stem}`" in section)]
    assert missing == []
