import numpy as np
import pytest
from PIL import Image

from dinstyle.errors import InputError
from dinstyle.io.grid import compose_grid
from dinstyle.io.images import expand_inputs, read_image, write_image


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (255, 0, 0))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    p = tmp_path / "rot.jpg"
    im.save(p, exif=exif.tobytes())
    assert read_image(p).rgb.shape[:2] == (40, 20)


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "LA", "RGBA", "I;16", "1"])
def test_unusual_modes_decode_to_rgb(images, mode):
    ext = "tif" if mode == "CMYK" else "png"
    p = images(f"x.{ext}", (20, 10), mode=mode)
    img = read_image(p)
    assert img.rgb.shape == (10, 20, 3) and img.rgb.dtype == np.uint8
    assert (img.alpha is not None) == (mode in ("LA", "RGBA"))


def test_16_bit_keeps_range(tmp_path):
    a = (np.linspace(0, 65535, 64 * 8).reshape(8, 64)).astype(np.uint16)
    p = tmp_path / "deep.png"
    Image.fromarray(a).save(p)
    rgb = read_image(p).rgb
    assert rgb.max() >= 250 and rgb.min() <= 5


@pytest.mark.parametrize("content,msg", [(b"", "empty file"), (b"hello world" * 10, "not an image"),
                                         (None, "no such file")])
def test_bad_files(tmp_path, content, msg):
    p = tmp_path / "bad.jpg"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(InputError, match=msg):
        read_image(p)


def test_truncated_png(images):
    p = images("t.png", (64, 64))
    p.write_bytes(p.read_bytes()[:200])
    with pytest.raises(InputError):
        read_image(p)


def test_folder_is_not_a_file(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        read_image(tmp_path)


def test_huge_declared_size_is_refused(tmp_path):
    p = tmp_path / "bomb.png"
    Image.new("1", (30000, 30000)).save(p)  # ~100 KB on disk, 900 MP declared
    with pytest.raises(InputError, match="too large"):
        read_image(p)


def test_write_keeps_alpha_and_is_atomic(tmp_path):
    rgb = np.zeros((5, 6, 3), np.uint8)
    alpha = np.full((5, 6), 128, np.uint8)
    p = write_image(tmp_path / "o.png", rgb, alpha)
    assert Image.open(p).mode == "RGBA"
    assert [f.name for f in tmp_path.iterdir()] == ["o.png"]


def test_expand_inputs(tmp_path, images):
    a = images("d/a.png")
    images("d/b.jpg")
    (tmp_path / "d" / "notes.txt").write_text("x")
    files, problems = expand_inputs([str(tmp_path / "d"), str(a), str(tmp_path / "d" / "*.jpg"), str(tmp_path / "nope.png")])
    assert [f.name for f in files] == ["a.png", "b.jpg"]
    assert problems and "no such file" in problems[0]


def test_grid_labels_are_drawn():
    cells = [(np.full((32, 32, 3), 255, np.uint8), "label")] * 2
    g = compose_grid(cells, cols=2, cell=32)
    assert (g[32:, :, :] < 128).any()  # dark text pixels below the white cells
