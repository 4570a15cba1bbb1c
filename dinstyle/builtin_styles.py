"""Built-in styles: public-domain paintings and clip art shipped inside the package, by short name.

``--style starry-night`` works wherever a style is accepted. Their packs are computed on first use
and cached per model id in the user's cache folder ($XDG_CACHE_HOME/dinstyle, else
~/.cache/dinstyle), so new weights never meet stale packs. No torch here.
"""
from __future__ import annotations

import difflib
import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

STYLES_DIR = Path(__file__).resolve().parent / "data" / "styles"
CACHE_ENV = "XDG_CACHE_HOME"
PD = "public domain"  # details per file in data/styles/SOURCES.md


@dataclass(frozen=True)
class BuiltinStyle:
    name: str
    painter: str
    title: str
    year: str
    licence: str

    @property
    def path(self) -> Path:
        return STYLES_DIR / f"{self.name}.jpg"

    def to_dict(self) -> dict:
        return {"name": self.name, "painter": self.painter, "title": self.title, "year": self.year,
                "licence": self.licence}


STYLES: dict[str, BuiltinStyle] = {s.name: s for s in (
    BuiltinStyle("starry-night", "Vincent van Gogh", "The Starry Night", "1889", PD),
    BuiltinStyle("great-wave", "Katsushika Hokusai", "The Great Wave off Kanagawa", "c. 1831", PD),
    BuiltinStyle("shipwreck", "J. M. W. Turner", "The Shipwreck of the Minotaur", "c. 1810", PD),
    BuiltinStyle("wheat-field", "Vincent van Gogh", "Wheat Field with Cypresses", "1889", PD),
    BuiltinStyle("port-en-bessin", "Georges Seurat", "Port-en-Bessin, the Outer Harbor at Low Tide", "1888", PD),
    BuiltinStyle("the-scream", "Edvard Munch", "The Scream", "1893", PD),
    BuiltinStyle("woman-with-a-hat", "Henri Matisse", "Woman with a Hat", "1905", PD),
    BuiltinStyle("udnie", "Francis Picabia", "Udnie (Young American Girl, The Dance)", "1913", PD),
    BuiltinStyle("composition-vii", "Wassily Kandinsky", "Composition VII", "1913", PD),
    BuiltinStyle("bear", "Open Clip Art Library", "Bear (flat-colour clip art)", "-", PD),
    BuiltinStyle("lion", "Open Clip Art Library", "Lion (flat-colour clip art)", "-", PD),
)}


def resolve(spec: str | Path) -> BuiltinStyle | None:
    """The built-in style a --style value names, or None when it is (or may be) a file path.

    A name that is also an existing file: the file wins, with a warning."""
    text = str(spec)
    style = STYLES.get(text.strip().lower().replace("_", "-"))
    if style is None:
        return None
    if Path(text).exists():
        warnings.warn(f"--style {text}: using the file {text} here, not the built-in style of that name "
                      f"(rename or move the file to use the built-in one)")
        return None
    return style


def not_found(spec: str | Path) -> str:
    """One line for a --style value that is neither a file nor a built-in name."""
    text = str(spec)
    if "/" in text or os.sep in text or Path(text).suffix:
        return f"{text}: style not found"
    word = text.lower()
    close = [n for n in STYLES if len(word) >= 3 and word in n][:3] or \
        difflib.get_close_matches(word, list(STYLES), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else f"built-in styles: {', '.join(STYLES)};"
    return f"{text}: no such file and no built-in style of that name ({hint} see `dinstyle styles`)"


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV)
    return (Path(base) if base and Path(base).is_absolute() else Path.home() / ".cache") / "dinstyle"


def pack_cache_path(style: BuiltinStyle, model_id: str, mode: str, style_size: int) -> Path:
    """Where the pack of ``style`` for this model, mode and style size is cached. The image's digest
    is part of the name, so a changed picture is re-encoded too."""
    digest = hashlib.sha256(style.path.read_bytes()).hexdigest()[:8]
    return cache_dir() / "packs" / model_id / f"{style.name}-{mode}-{style_size}-{digest}.dinpack"
