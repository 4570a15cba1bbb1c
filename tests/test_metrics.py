import numpy as np

from dinstyle.metrics import stripe_energy


def test_stripe_figure_is_zero_on_smooth_images_and_the_offset_on_alternate_rows():
    yy, xx = np.mgrid[0:64, 0:80]
    # (the box filter passes half of a ramp's slope: smooth means gentle here, under ~1 level per pixel)
    smooth = np.stack([96 + 20 * np.sin(xx / 15.0) + 10 * np.cos(yy / 13.0)] * 3, -1).round().astype(np.uint8)
    assert stripe_energy(smooth) < 0.6
    rows = smooth.astype(int)
    rows[0::2] += 10
    rows[1::2] -= 10
    assert abs(stripe_energy(rows.clip(0, 255).astype(np.uint8)) - 10.0) < 0.6
    cols = smooth.astype(int)
    cols[:, 0::2] += 4
    cols[:, 1::2] -= 4
    checker = smooth.astype(int) + 6 * np.where((yy + xx) % 2 == 0, 1, -1)[..., None]
    assert abs(stripe_energy(cols.astype(np.uint8)) - 4.0) < 0.6
    assert abs(stripe_energy(checker.clip(0, 255).astype(np.uint8)) - 6.0) < 0.6


def test_stripe_figure_of_a_tiny_image_is_nan():
    assert np.isnan(stripe_energy(np.zeros((12, 12, 3), np.uint8)))


def test_colour_distance_is_zero_for_one_palette_and_one_for_disjoint_palettes():
    import numpy as np

    from dinstyle.metrics import color_distance

    rng = np.random.default_rng(0)
    a = rng.integers(0, 128, (32, 32, 3), dtype=np.uint8)
    assert color_distance(a, a[::-1, ::-1]) < 1e-6  # the same colours in other places
    assert color_distance(a, a + 128) == 1.0  # no colour in common
    assert 0.0 < color_distance(a, np.clip(a.astype(int) + 40, 0, 255).astype(np.uint8)) < 1.0
