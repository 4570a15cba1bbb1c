"""Image and video quality figures on uint8 RGB arrays (numpy + OpenCV, no torch)."""
from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two uint8 RGB images on their luma (Wang et al. 2004 constants, 11x11 Gaussian)."""
    ga = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY).astype(np.float64)
    gb = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY).astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5)

    mu_a, mu_b = blur(ga), blur(gb)
    va = blur(ga * ga) - mu_a**2
    vb = blur(gb * gb) - mu_b**2
    cov = blur(ga * gb) - mu_a * mu_b
    s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (va + vb + c2))
    return float(s.mean())


def stripe_energy(rgb: np.ndarray, box: int = 8, margin: int = 8) -> float:
    """Energy of 2-pixel (Nyquist) patterns: the thin lines and checkerboards a sub-pixel decoder
    head can print. Y = grey levels 0..255; Z = Y * (-1)^row, box-filtered ``box`` x ``box`` and
    RMS over the interior (``margin`` px); the same with (-1)^col and (-1)^(row+col); the figure
    is the largest of the three. ~0 on smooth images, ~A for alternate rows offset by +-A."""
    y = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float64) if rgb.ndim == 3 else rgb.astype(np.float64)
    h, w = y.shape
    if h <= 2 * margin or w <= 2 * margin:
        return float("nan")
    sr = np.where(np.arange(h) % 2 == 0, 1.0, -1.0)[:, None]
    sc = np.where(np.arange(w) % 2 == 0, 1.0, -1.0)[None, :]
    best = 0.0
    for sign in (sr, sc, sr * sc):
        z = cv2.blur(y * sign, (box, box), borderType=cv2.BORDER_REFLECT)
        inner = z[margin:h - margin, margin:w - margin]
        best = max(best, float(np.sqrt(np.mean(inner * inner))))
    return best


def color_distance(a: np.ndarray, b: np.ndarray, bins: int = 8) -> float:
    """How far the palette of ``a`` is from that of ``b`` (uint8 RGB, any sizes): the Hellinger
    distance of their ``bins``^3 RGB histograms, 0 (same colours in the same shares) .. 1 (no
    colour in common). A photo against a painting scores ~0.8; a faithful transfer well below."""
    def hist(x: np.ndarray) -> np.ndarray:
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[2] != 3:
            raise ValueError(f"color_distance wants uint8 RGB images, got {x.dtype} {x.shape}")
        h = cv2.calcHist([np.ascontiguousarray(x)], [0, 1, 2], None, [bins] * 3, [0, 256] * 3).ravel().astype(np.float64)
        return h / max(h.sum(), 1.0)

    bc = float(np.sqrt(hist(a) * hist(b)).sum())  # Bhattacharyya coefficient
    return float(np.sqrt(max(0.0, 1.0 - bc)))


def grey_rgb(rgb: np.ndarray) -> np.ndarray:
    """A uint8 RGB image's grey levels as a three-channel RGB image (palette removed)."""
    return np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)


def local_std(rgb: np.ndarray, window: int = 5) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mean = cv2.blur(g, (window, window))
    return np.sqrt(np.maximum(cv2.blur(g * g, (window, window)) - mean * mean, 0))


def flat_fraction(rgb: np.ndarray, threshold: float = 2.0) -> float:
    """Share of pixels inside uniform regions (5x5 grey-level std below ``threshold``). Clip art,
    logos and UI screenshots score high (> 0.5); photos low. Used by --mode auto."""
    return float((local_std(rgb) < threshold).mean())


def flat_output_fraction(output: np.ndarray, content: np.ndarray, threshold: float = 2.0) -> float:
    """Among pixels in uniform regions of the content (local std < threshold), the share that
    stay near-constant in the output: the flat patches standard DIN leaves on clip art.

    Both images are first averaged over 2x2 pixel blocks: the network's pixel-shuffle output may
    alternate by a few grey levels between neighbouring pixels, which nobody sees as texture (at
    full resolution that pattern alone would count a visibly flat patch as textured).
    NaN when the content has no uniform region."""
    h, w = content.shape[:2]
    size = (max(1, w // 2), max(1, h // 2))
    content = cv2.resize(content, size, interpolation=cv2.INTER_AREA)
    output = cv2.resize(output, size, interpolation=cv2.INTER_AREA)
    flat_in = local_std(content) < threshold
    if not flat_in.any():
        return float("nan")
    return float((local_std(output)[flat_in] < threshold).mean())


def dark_patches(output: np.ndarray, content: np.ndarray, window: int = 16, light: int = 128, dark: int = 64) -> float:
    """Among the content's light areas (grey level >= ``light`` after a ``window``-pixel box blur),
    the share that come out dark (blurred grey < ``dark``) in the output: patches of near-black laid
    over faces and skies. The blur averages fine strokes and outlines away, so an etched line
    texture scores low and only a dark area about ``window`` pixels wide or more counts. NaN when
    the content has no light area."""
    def grey(x: np.ndarray) -> np.ndarray:
        return cv2.blur(cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY).astype(np.float32), (window, window))

    lit = grey(content) >= light
    if not lit.any():
        return float("nan")
    return float((grey(output)[lit] < dark).mean())


def _flow(a_gray: np.ndarray, b_gray: np.ndarray) -> np.ndarray:
    """Dense flow that maps pixels of ``a`` to ``b`` (Farneback)."""
    return cv2.calcOpticalFlowFarneback(a_gray, b_gray, None, 0.5, 3, 15, 3, 5, 1.2, 0)


def _warp(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(img, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warping_error(inputs: Iterable[np.ndarray], outputs: Iterable[np.ndarray]) -> dict[str, float]:
    """Temporal stability of ``outputs`` given the ``inputs`` they were made from (streamed pairs).

    warping_error: for each consecutive pair, flow is estimated on the *input* frames (t -> t-1),
    the previous output is warped onto frame t, and the mean absolute difference (0..255 scale) is
    taken over non-occluded pixels (forward-backward consistency); averaged over the clip.
    flicker: mean absolute change of the output's mean luma between frames, minus the input's.
    """
    errs, flick_out, flick_in = [], [], []
    g_prev = prev_out = None
    prev_lum_out = 0.0
    for fin, fout in zip(inputs, outputs):
        if fout.shape[:2] != fin.shape[:2]:
            fout = cv2.resize(fout, (fin.shape[1], fin.shape[0]), interpolation=cv2.INTER_AREA)
        gin = cv2.cvtColor(fin, cv2.COLOR_RGB2GRAY)
        lum_out = float(cv2.cvtColor(fout, cv2.COLOR_RGB2GRAY).mean())
        if g_prev is not None:
            if np.array_equal(gin, g_prev):  # no motion: skip the estimator's sub-pixel noise
                bwd = fwd = np.zeros((*gin.shape, 2), np.float32)
            else:
                bwd = _flow(gin, g_prev)  # t -> t-1
                fwd = _flow(g_prev, gin)  # t-1 -> t
            # a pixel is visible in both frames when going t -> t-1 -> t returns to the start
            back = _warp(fwd, bwd)
            cons = np.linalg.norm(bwd + back, axis=2)
            mag = np.linalg.norm(bwd, axis=2) ** 2 + np.linalg.norm(back, axis=2) ** 2
            mask = cons**2 <= 0.01 * mag + 0.5
            warped = _warp(prev_out, bwd).astype(np.float32)
            diff = np.abs(fout.astype(np.float32) - warped).mean(axis=2)
            errs.append(float(diff[mask].mean()) if mask.any() else 0.0)
            flick_out.append(abs(lum_out - prev_lum_out))
            flick_in.append(abs(float(gin.mean()) - float(g_prev.mean())))
        g_prev, prev_out, prev_lum_out = gin, fout, lum_out  # each frame converted to grey once
    n = len(errs)
    return {"pairs": n, "warping_error": float(np.mean(errs)) if n else 0.0,
            "flicker": float(np.mean(flick_out) - np.mean(flick_in)) if n else 0.0,
            "output_luma_change": float(np.mean(flick_out)) if n else 0.0}


def video_stability(original, stylized) -> dict[str, float]:
    """``warping_error`` of a stylized video file against its input; refuses clips that are not a
    stylized version of it (other pictures, other lengths) or too short to score."""
    from dinstyle.errors import InputError
    from dinstyle.io.files import q
    from dinstyle.io.video import read_video

    info_a, a = read_video(original)
    info_b, b = read_video(stylized)
    (wa, ha), (wb, hb) = info_a.size, info_b.size
    if abs(wa / ha - wb / hb) > 0.03 * wa / ha:  # the same picture, maybe scaled (--max-size) or padded
        raise InputError(f"{q(stylized)}: {wb}x{hb} frames, {q(original)}: {wa}x{ha}; not a stylized version "
                         "of it (the pictures differ)")
    counts = [0, 0]

    def counted(frames, i):
        for fr in frames:
            counts[i] += 1
            yield fr

    ca, cb = counted(a, 0), counted(b, 1)
    res = warping_error(ca, cb)
    counts[0] += sum(1 for _ in ca)  # what the shorter clip left unscored
    counts[1] += sum(1 for _ in cb)
    if min(counts) < 2:
        short = original if counts[0] < 2 else stylized
        raise InputError(f"{q(short)}: {min(counts)} frame(s); scoring needs two videos of two or more frames")
    if abs(counts[0] - counts[1]) > 1:
        raise InputError(f"{q(stylized)} has {counts[1]} frames, {q(original)} has {counts[0]}: not a stylized "
                         "version of it (the lengths differ)")
    return res
