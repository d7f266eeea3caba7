"""imaging: per-channel normalization, atlases, signed maps and PNG round trips."""

import numpy as np
import pytest

from tb_cnnvis import imaging


@pytest.mark.parametrize(
    ("count", "tile", "expected"),
    [
        (1, (4, 4), (1, 1)),
        (4, (4, 4), (2, 2)),
        (5, (4, 4), (2, 3)),
        (10, (8, 8), (3, 4)),
        (16, (3, 3), (4, 4)),
        (8, (2, 8), (4, 2)),
    ],
)
def test_grid_shape_is_near_square_and_tight(count, tile, expected):
    rows, cols = imaging.grid_shape(count, tile)
    assert (rows, cols) == expected
    assert rows * cols >= count > (rows - 1) * cols


def test_grid_shape_rejects_empty():
    with pytest.raises(ValueError, match="at least one tile"):
        imaging.grid_shape(0)


def test_tile_atlas_places_tile_k_row_major_and_untiles_back():
    tiles = np.arange(5 * 2 * 3, dtype=np.uint8).reshape(5, 2, 3) + 1
    atlas, grid = imaging.tile_atlas(tiles)
    assert grid == (3, 2)  # wide tiles: fewer columns, a square atlas
    assert atlas.shape == (6, 6)
    # tile 3 sits at row 1, column 1; tile 4 at row 2, column 0
    np.testing.assert_array_equal(atlas[2:4, 3:6], tiles[3])
    np.testing.assert_array_equal(atlas[4:6, 0:3], tiles[4])
    assert (atlas[4:6, 3:6] == 0).all()  # unused cell
    np.testing.assert_array_equal(imaging.untile_atlas(atlas, grid, (2, 3), 5), tiles)


def test_tile_atlas_keeps_colour_channels():
    tiles = np.random.default_rng(0).integers(0, 255, (3, 4, 5, 3), dtype=np.uint8)
    atlas, _ = imaging.tile_atlas(tiles, grid=(3, 1))
    assert atlas.shape == (12, 5, 3)
    np.testing.assert_array_equal(atlas[8:12], tiles[2])


def test_normalize_channels_uses_each_channels_own_range():
    maps = np.zeros((1, 2, 2, 3))
    maps[0, :, :, 0] = [[0.0, 1.0], [2.0, 4.0]]
    maps[0, :, :, 1] = [[-10.0, -10.0], [10.0, 10.0]]
    maps[0, :, :, 2] = 7.0  # constant channel
    pixels, low, high, mean = imaging.normalize_channels(maps)
    assert pixels.dtype == np.uint8
    np.testing.assert_array_equal(pixels[0, :, :, 0], [[0, 64], [128, 255]])
    np.testing.assert_array_equal(pixels[0, :, :, 1], [[0, 0], [255, 255]])
    np.testing.assert_array_equal(pixels[0, :, :, 2], 0)
    np.testing.assert_allclose(low, [[0.0, -10.0, 7.0]])
    np.testing.assert_allclose(high, [[4.0, 10.0, 7.0]])
    np.testing.assert_allclose(mean, [[1.75, 0.0, 7.0]])


def test_normalize_channels_ignores_non_finite_values():
    maps = np.array([[[[1.0], [np.nan]], [[3.0], [np.inf]]]])
    pixels, low, high, _ = imaging.normalize_channels(maps)
    assert (low, high) == (1.0, 3.0)
    np.testing.assert_array_equal(pixels[0, :, :, 0], [[0, 0], [255, 0]])


def test_signed_to_rgb_maps_zero_to_grey_and_keeps_scale():
    rgb, scale = imaging.signed_to_rgb(np.array([[[-2.0, 0.0, 2.0], [1.0, -1.0, 0.5]]]))
    assert scale == 2.0
    np.testing.assert_array_equal(rgb[0, 0], [0, 128, 255])
    np.testing.assert_array_equal(rgb[0, 1], [191, 64, 159])
    grey, zero = imaging.signed_to_rgb(np.zeros((2, 2, 1)))
    assert zero == 0.0 and grey.shape == (2, 2, 3) and (grey == 128).all()


def test_as_rgb_repeats_grey_and_rejects_other_channel_counts():
    assert imaging.as_rgb(np.ones((2, 3, 3, 1))).shape == (2, 3, 3, 3)
    with pytest.raises(ValueError, match="expected 1 or 3"):
        imaging.as_rgb(np.ones((3, 3, 2)))


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1), (5, 7, 3)])
def test_png_round_trip_is_lossless(shape):
    pixels = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    data = imaging.encode_png(pixels)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    decoded = imaging.decode_png(data)
    np.testing.assert_array_equal(decoded.reshape(pixels.shape), pixels)


def test_encode_png_refuses_floats():
    with pytest.raises(ValueError, match="uint8"):
        imaging.encode_png(np.zeros((2, 2)))
