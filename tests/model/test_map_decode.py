"""Device-side map decoding agrees with the numpy reference (scipy blur, scikit-image peaks, maps_to_rects)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.feature import peak_local_max

from prg.grasp.maps import GraspMaps, maps_to_rects
from prg.model.map_decode import blur_like_scipy, decode_maps, peaks_like_skimage


def smooth_maps(seed: int, shape: tuple[int, int] = (120, 160)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    raw = np.stack([ndimage.gaussian_filter(rng.random(shape), 4).astype(np.float32) for _ in range(4)])
    raw[0] = (raw[0] - raw[0].min()) / (raw[0].max() - raw[0].min())
    raw[1:3] = 2 * raw[1:3] - 1
    return raw


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_blur_equals_scipy_including_borders(sigma: float) -> None:
    image = np.random.default_rng(0).random((37, 53)).astype(np.float32)
    ours = blur_like_scipy(torch.from_numpy(image), sigma).numpy()
    np.testing.assert_allclose(ours, ndimage.gaussian_filter(image, sigma), rtol=0, atol=2e-7)


@pytest.mark.parametrize("seed", range(4))
def test_peaks_equal_peak_local_max(seed: int) -> None:
    q = ndimage.gaussian_filter(smooth_maps(seed)[0], 2.0)
    q[0, 7] = q[-1, -1] = 2.0  # border peaks
    q[50:60, 80:95] = 1.5  # a plateau: many equal maxima, kept in raster order, then spaced
    for min_distance, threshold in ((20, 0.2), (5, 0.5), (1, 0.3)):
        ours = peaks_like_skimage(torch.from_numpy(q), min_distance, threshold)
        ref = peak_local_max(q, min_distance=min_distance, threshold_abs=threshold, exclude_border=False)
        np.testing.assert_array_equal(ours, ref)
    assert peaks_like_skimage(torch.zeros(30, 30), 5, -1.0).shape == (0, 2)  # constant map: no peak


@pytest.mark.parametrize("seed", range(3))
def test_decode_maps_equals_maps_to_rects(seed: int) -> None:
    raw = smooth_maps(seed)
    ref = maps_to_rects(GraspMaps.from_stack(raw), k=5, width_scale=150.0, min_distance=10)
    ours = decode_maps(torch.from_numpy(raw), k=5, width_scale=150.0, min_distance=10)
    assert len(ours) == len(ref) >= 2
    for a, b in zip(ours, ref, strict=True):
        assert (a.x, a.y) == (b.x, b.y)
        assert a.quality == pytest.approx(b.quality, abs=1e-6)
        assert a.angle == pytest.approx(b.angle, abs=1e-6) and a.width == pytest.approx(b.width, rel=1e-6)
    tiny = smooth_maps(seed, (6, 40))  # smaller than the blur radius: the reference path
    assert [r.x for r in decode_maps(torch.from_numpy(tiny), 3, 150.0, 2)] == [
        r.x for r in maps_to_rects(GraspMaps.from_stack(tiny), k=3, width_scale=150.0, min_distance=2)
    ]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_decode_maps_on_gpu_equals_cpu() -> None:
    raw = torch.from_numpy(smooth_maps(5, (480, 640)))
    ref = decode_maps(raw, k=5, width_scale=150.0)
    ours = decode_maps(raw.cuda(), k=5, width_scale=150.0)
    assert [(r.x, r.y) for r in ours] == [(r.x, r.y) for r in ref] and len(ref) >= 1
    for a, b in zip(ours, ref, strict=True):
        assert a.angle == pytest.approx(b.angle, abs=1e-5)
