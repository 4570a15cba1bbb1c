"""What the engine benchmarks share: the example photo and painting on the shipped (or given)
weights, and writing the results table."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STYLE = ROOT / "examples" / "painting_vangogh_starry_night.jpg"
PHOTO = ROOT / "examples" / "photo_coffee.jpg"


def example_setup(weights: str | None):
    """(Stylizer on the CPU, Starry Night loaded as a style, the coffee photo as uint8 RGB)."""
    from dinstyle.engine import Stylizer
    from dinstyle.io.images import read_image

    st = Stylizer(weights=weights, device="cpu")
    return st, st.load_style([STYLE]), read_image(PHOTO).rgb


def emit(lines: list[str], out: str | None) -> None:
    """Print the table, and write it to ``out`` when given."""
    text = "\n".join(lines) + "\n"
    print(text)
    if out:
        Path(out).write_text(text)
