import numpy as np

from dinstyle.color import keep_luminance_of, match_colors, rgb_to_ycc


def test_colour_controls():
    rng = np.random.default_rng(0)
    content = rng.integers(90, 170, (20, 20, 3), dtype=np.uint8)  # in gamut after a luminance swap
    stylized = np.full((20, 20, 3), (160, 110, 100), np.uint8)
    kept = keep_luminance_of(stylized, content)
    assert np.abs(rgb_to_ycc(kept)[..., 1:] - rgb_to_ycc(content)[..., 1:]).mean() < 1.5
    style = (rng.random((30, 30, 3)) * [255, 60, 40]).astype(np.uint8)
    matched = match_colors(style, content).reshape(-1, 3).astype(float)
    assert np.allclose(matched.mean(0), content.reshape(-1, 3).mean(0), atol=3)
