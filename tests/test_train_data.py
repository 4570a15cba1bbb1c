import numpy as np
import pytest
import torch
from PIL import Image

from dinstyle.errors import InputError
from dinstyle.train.data import ImageBank, crop_views, decode_square, draw_plan, whole_views


def test_bank_decodes_once_to_squares(tmp_path, images):
    images("a/wide.png", (60, 40))
    images("a/tall.png", (30, 50), seed=1)
    bank = ImageBank.from_folder(tmp_path / "a", 32)
    assert bank.images.shape == (2, 3, 32, 32) and bank.images.dtype == torch.uint8
    assert bank.names == ["tall.png", "wide.png"]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="x.png"):
        ImageBank.from_folder(tmp_path / "bad", 32)


def test_crop_views_identity_flip_and_zoom():
    img = torch.arange(16 * 16 * 3, dtype=torch.int64).remainder(251).to(torch.uint8).view(1, 3, 16, 16)
    whole = torch.tensor([[1.0, 0.5, 0.5, 0.0]])
    assert torch.allclose(crop_views(img, whole, 16), img.float() / 255, atol=1e-6)
    flipped = crop_views(img, torch.tensor([[1.0, 0.5, 0.5, 1.0]]), 16)
    assert torch.allclose(flipped, img.float().flip(-1) / 255, atol=1e-6)
    corner = crop_views(img, torch.tensor([[1.0, 0.0, 1.0, 0.0]]), 8)  # top-right 8x8, 1:1
    assert torch.allclose(corner, img[..., :8, 8:].float() / 255, atol=1e-6)
    zoomed = crop_views(img, torch.tensor([[2.0, 0.0, 0.0, 0.0]]), 8)  # 4x4 source pixels -> 8x8
    assert zoomed.shape == (1, 3, 8, 8)
    assert torch.allclose(zoomed[..., ::2, ::2].mean(), img[..., :4, :4].float().mean() / 255, atol=0.05)
    assert whole_views(img, 8).shape == (1, 3, 8, 8)


def test_plans_are_a_pure_function_of_seed_step_and_rank():
    kw = dict(seed=3, batch_size=4, n_content=10, n_style=7, content_zoom=(1.0, 2.0))
    a, b = draw_plan(5, **kw), draw_plan(5, **kw)
    assert torch.equal(a.content, b.content) and torch.equal(a.style_view, b.style_view) and a.mode == b.mode
    c = draw_plan(6, **kw)
    assert not torch.equal(a.content_view, c.content_view)
    r1 = draw_plan(5, rank=1, **kw)
    assert not torch.equal(a.content_view, r1.content_view)
    z = a.content_view[:, 0]
    assert bool(((z >= 1.0) & (z <= 2.0)).all())


def test_decode_square_keeps_the_centre(tmp_path):
    a = np.zeros((20, 40, 3), np.uint8)
    a[:, 10:30] = 200  # the centre square is bright, the sides dark
    Image.fromarray(a).save(tmp_path / "c.png")
    sq = decode_square(tmp_path / "c.png", 20)
    assert sq.shape == (20, 20, 3) and sq.min() == 200
