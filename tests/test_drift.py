"""Drift between epochs: rank correlation, SSIM, dead filters and sparsity on known arrays."""

import numpy as np
import pytest

from tb_cnnvis.algorithms import drift


def test_identical_maps_correlate_one_and_reversed_ranks_minus_one():
    maps = np.random.default_rng(0).random((3, 8, 8))
    np.testing.assert_allclose(drift.spearman(maps, maps), 1.0)
    reversed_ranks = -maps  # every pixel's rank reversed
    np.testing.assert_allclose(drift.spearman(maps, reversed_ranks), -1.0)
    assert drift.cam_drift(maps, maps) == pytest.approx(1.0)
    assert drift.cam_drift(maps, reversed_ranks) == pytest.approx(-1.0)


def test_rank_correlation_ignores_monotone_rescaling():
    maps = np.random.default_rng(1).random((2, 5, 5))
    np.testing.assert_allclose(drift.spearman(maps, np.exp(3 * maps) + 7), 1.0)


def test_spearman_matches_hand_computed_values_with_ties():
    # a ranks [0, 1, 2, 3]; b = [1, 1, 3, 2] ranks [0.5, 0.5, 3, 2].
    # centred: a [-1.5, -0.5, 0.5, 1.5], b [-1, -1, 1.5, 0.5]
    # sum(a*b) = 1.5 + 0.5 + 0.75 + 0.75 = 3.5; |a|^2 = 5, |b|^2 = 4.5
    rho = drift.spearman([[10, 20, 30, 40]], [[1, 1, 3, 2]])
    assert rho[0] == pytest.approx(3.5 / np.sqrt(5 * 4.5))
    np.testing.assert_allclose(
        drift.rank_rows(np.array([[5.0, 1.0, 5.0, 2.0]])), [[2.5, 0, 2.5, 1]]
    )


def test_constant_maps_give_zero_or_one_never_nan():
    flat = np.zeros((1, 4, 4))
    varied = np.arange(16.0).reshape(1, 4, 4)
    assert drift.spearman(flat, varied)[0] == 0.0
    assert drift.spearman(flat, flat)[0] == 1.0
    assert drift.spearman(flat, flat + 1)[0] == 0.0


def test_absolute_compares_magnitudes_of_signed_maps():
    signed = np.array([[-3.0, 1.0, 2.0, -4.0]])
    magnitudes = np.array([[3.0, 1.0, 2.0, 4.0]])
    assert drift.spearman(signed, magnitudes, absolute=True)[0] == pytest.approx(1.0)
    assert drift.spearman(signed, magnitudes)[0] < 0.5


def test_pattern_drift_is_per_filter():
    patterns = np.random.default_rng(2).random((3, 6, 6, 3))
    later = patterns.copy()
    later[1] = 1 - later[1]
    np.testing.assert_allclose(drift.pattern_drift(patterns, later), [1.0, -1.0, 1.0])


def test_ssim_is_one_for_identical_maps_and_lower_for_noise():
    rng = np.random.default_rng(3)
    maps = rng.random((2, 16, 16))
    np.testing.assert_allclose(drift.ssim(maps, maps * 5 + 1), 1.0, atol=1e-5)
    assert (drift.ssim(maps, rng.random((2, 16, 16))) < 0.3).all()


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="same shape"):
        drift.spearman(np.zeros((2, 4, 4)), np.zeros((2, 4, 5)))
    with pytest.raises(ValueError, match="channels"):
        drift.dead_filters(np.zeros((4, 4, 3)))


def test_dead_filters_and_sparsity_of_known_feature_maps():
    maps = np.zeros((2, 3, 3, 4), np.float32)
    maps[0, 1, 1, 0] = 2.0  # channel 0 fires once
    maps[:, :, :, 2] = 1.0  # channel 2 always fires
    maps[1, 0, 0, 3] = -1.0  # channel 3 responds with a negative value once: alive
    # Dead: channel 1 (0 everywhere) and channel 2 (1 everywhere): neither ever varies.
    np.testing.assert_array_equal(drift.dead_filters(maps), [1, 2])
    assert drift.activation_sparsity(maps) == pytest.approx(1 - 19 / 72)
    np.testing.assert_array_equal(drift.dead_filters(maps, threshold=1.0), [1, 2, 3])


def test_a_normalized_filter_with_negative_responses_is_not_dead():
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(2, 4, 4, 3)).astype(np.float32) - 5.0  # always negative
    maps[..., 1] = -0.17  # a constant: no response to anything
    np.testing.assert_array_equal(drift.dead_filters(maps), [1])
