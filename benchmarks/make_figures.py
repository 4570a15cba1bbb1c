"""Make the README figures with the tool itself, from examples/ only.

    python benchmarks/make_figures.py                # writes examples/out/*.jpg
    python benchmarks/make_figures.py supersample    # only examples/out/supersample.jpg
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "examples"
OUT = EX / "out"
PHOTOS = ["photo_chelsea_cat.jpg", "photo_astronaut.jpg", "photo_coffee.jpg"]
PAINTINGS = ["painting_vangogh_starry_night.jpg", "painting_hokusai_great_wave.jpg", "painting_turner_shipwreck.jpg",
             "painting_seurat_port_en_bessin.jpg", "painting_vangogh_wheat_field_cypresses.jpg"]


def dinstyle(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "dinstyle", *args], check=True, cwd=ROOT)


def grid(rows: list[list[Image.Image]], cell: int = 200, gap: int = 4) -> Image.Image:
    cols = max(len(r) for r in rows)
    canvas = Image.new("RGB", (cols * (cell + gap) + gap, len(rows) * (cell + gap) + gap), "white")
    for r, row in enumerate(rows):
        for c, im in enumerate(row):
            if im is None:
                continue
            im = im.convert("RGB")
            im.thumbnail((cell, cell))
            canvas.paste(im, (gap + c * (cell + gap) + (cell - im.width) // 2, gap + r * (cell + gap) + (cell - im.height) // 2))
    return canvas


def supersample_figure(tmp: Path) -> None:
    """Painting, then 256-px crops at 100 % of the 512-px outputs: the default, --supersample 1.5."""
    rows = []
    for photo, painting, (x, y) in (("photo_chelsea_cat.jpg", PAINTINGS[0], (180, 30)),
                                    ("photo_coffee.jpg", PAINTINGS[1], (120, 60)),
                                    ("photo_astronaut.jpg", PAINTINGS[3], (150, 60))):
        row = [Image.open(EX / painting)]
        for factor in ("1", "1.5"):
            dest = tmp / f"ss_{factor}_{photo}"
            dinstyle("image", str(EX / photo), "-s", str(EX / painting), "--supersample", factor,
                     "--max-size", "512", "-o", str(dest), "--overwrite")
            row.append(Image.open(dest).crop((x, y, x + 256, y + 256)))
        rows.append(row)
    grid(rows, cell=256).save(OUT / "supersample.jpg", quality=92)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = OUT / "_tmp"
    if sys.argv[1:] == ["supersample"]:
        supersample_figure(tmp)
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
        return
    # 1. photos x paintings
    for p in PAINTINGS:
        dinstyle("image", *[str(EX / f) for f in PHOTOS], "-s", str(EX / p), "-o", str(tmp), "--max-size", "512",
                 "--overwrite")
    rows = [[None] + [Image.open(EX / p) for p in PAINTINGS]]
    for f in PHOTOS:
        rows.append([Image.open(EX / f)] + [Image.open(tmp / f"{Path(f).stem}_{Path(p).stem}.jpg") for p in PAINTINGS])
    grid(rows).save(OUT / "grid.jpg", quality=90)
    # 2. strength strip, style interpolation, sheet
    cat = str(EX / "photo_chelsea_cat.jpg")
    dinstyle("sheet", cat, "-s", str(EX / PAINTINGS[0]), "--strip", "5", "-o", str(OUT / "strength.jpg"), "--cell", "200")
    dinstyle("sheet", cat, "-s", str(EX / PAINTINGS[0]), "-s", str(EX / PAINTINGS[1]), "--strip", "5",
             "-o", str(OUT / "interpolation.jpg"), "--cell", "200")
    dinstyle("sheet", str(EX / "photo_astronaut.jpg"), *sum([["-s", str(EX / p)] for p in PAINTINGS], []),
             "-o", str(OUT / "sheet.jpg"), "--cell", "200", "--cols", "3")
    # 3. mask: left half Starry Night, right half kept
    w, h = Image.open(cat).size
    m = np.zeros((h, w), np.uint8)
    m[:, w // 2:] = 255
    Image.fromarray(m).save(tmp / "half.png")
    dinstyle("image", cat, "-s", str(EX / PAINTINGS[0]), "-s", str(EX / PAINTINGS[1]), "--mask", str(tmp / "half.png"),
             "--feather", "12", "-o", str(tmp / "masked.jpg"), "--overwrite")
    # 4. colour control
    dinstyle("image", cat, "-s", str(EX / PAINTINGS[1]), "--preserve-color", "-o", str(tmp / "pc.jpg"), "--overwrite")
    dinstyle("image", cat, "-s", str(EX / PAINTINGS[1]), "--color-match", "-o", str(tmp / "cm.jpg"), "--overwrite")
    dinstyle("image", cat, "-s", str(EX / PAINTINGS[1]), "-o", str(tmp / "plain.jpg"), "--overwrite")
    grid([[Image.open(cat), Image.open(tmp / "masked.jpg"), Image.open(tmp / "plain.jpg"), Image.open(tmp / "pc.jpg"),
           Image.open(tmp / "cm.jpg")]], cell=240).save(OUT / "controls.jpg", quality=90)
    # 5. stroke scale: --style-size (adaptive mode: strokes keep their size in the resized style)
    row = [Image.open(EX / "photo_coffee.jpg")]
    for size in ("128", "256", "512"):
        dinstyle("image", str(EX / "photo_coffee.jpg"), "-s", str(EX / PAINTINGS[0]), "--style-size", size,
                 "--mode", "adaptive", "-o", str(tmp / f"ss{size}.jpg"), "--overwrite")
        row.append(Image.open(tmp / f"ss{size}.jpg"))
    grid([row], cell=240).save(OUT / "style_size.jpg", quality=90)
    # 6. standard vs adaptive vs deformable on clip art (and on one photo)
    rows = []
    for clip in ("clipart_1_orso_architetto_francesc_01.png", "clipart_2_leone_architetto_frances_01.png",
                 "photo_chelsea_cat.jpg"):
        row = [Image.open(EX / clip)]
        for mode in ("standard", "adaptive", "deformable"):
            dinstyle("image", str(EX / clip), "-s", str(EX / PAINTINGS[0]), "--mode", mode, "-o",
                     str(tmp / f"{mode}_{clip}"), "--overwrite")
            row.append(Image.open(tmp / f"{mode}_{clip}"))
        rows.append(row)
    grid(rows, cell=240).save(OUT / "modes.jpg", quality=90)
    # 7. the finishing stages: painting, the network alone (--palette 0 --tone 0), the default
    pairs = (("photo_chelsea_cat.jpg", PAINTINGS[0]), ("photo_coffee.jpg", PAINTINGS[4]),
             ("photo_astronaut.jpg", PAINTINGS[2]))
    rows = []
    for photo, painting in pairs:
        row = [Image.open(EX / painting)]
        for name, opts in (("alone", ["--palette", "0", "--tone", "0"]), ("default", [])):
            dest = tmp / f"pal_{name}_{photo}"
            dinstyle("image", str(EX / photo), "-s", str(EX / painting), *opts, "--max-size", "512",
                     "-o", str(dest), "--overwrite")
            row.append(Image.open(dest))
        rows.append(row)
    grid(rows, cell=320).save(OUT / "palette.jpg", quality=90)
    # 8. tone guidance: the photo, --tone 0 (the network's own light and dark), the default
    rows = []
    for photo, painting in pairs:
        row = [Image.open(EX / photo)]
        for tone in ("0", None):
            dest = tmp / f"tone_{tone}_{photo}"
            dinstyle("image", str(EX / photo), "-s", str(EX / painting), *(["--tone", tone] if tone else []),
                     "--max-size", "512", "-o", str(dest), "--overwrite")
            row.append(Image.open(dest))
        rows.append(row)
    grid(rows, cell=320).save(OUT / "tone.jpg", quality=90)
    # 9. supersampling, at 100 %
    supersample_figure(tmp)
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
