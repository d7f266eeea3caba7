"""Deletion / insertion AUC on a model whose answer is known, and the pointing game."""

import keras
import numpy as np
import pytest
from keras import layers

from tb_cnnvis.algorithms import cam
from tb_cnnvis.algorithms import faithfulness as fa

SIZE, SIDE = 32, 6


def bright_square_model():
    """Class 0 = "there are bright pixels": a hand-set bright-pixel detector, GAP, softmax.

    The detector is relu(mean(RGB) - 0.8), so only pixels brighter than 0.8 count (a
    blurred or mean-filled square does not); the logits are (+1000, -1000) times their mean.
    """
    model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            layers.Conv2D(1, 1, activation="relu", name="detector"),
            layers.GlobalAveragePooling2D(name="gap"),
            layers.Dense(2, activation="softmax", name="head"),
        ]
    )
    model.get_layer("detector").set_weights(
        [np.full((1, 1, 3, 1), 1 / 3, np.float32), np.array([-0.8], np.float32)]
    )
    model.get_layer("head").set_weights(
        [np.array([[1000.0, -1000.0]], np.float32), np.zeros(2, np.float32)]
    )
    return model


@pytest.fixture(scope="module")
def model():
    return bright_square_model()


@pytest.fixture(scope="module")
def squares():
    """Black images with one white 6x6 square each (off the edges, where the reflected blur
    would stay bright), and the squares' masks."""
    rng = np.random.default_rng(0)
    images = np.zeros((6, SIZE, SIZE, 3), np.float32)
    masks = np.zeros((6, SIZE, SIZE), bool)
    for i, (y, x) in enumerate(rng.integers(4, SIZE - SIDE - 4, (6, 2))):  # off the edges
        images[i, y : y + SIDE, x : x + SIDE] = 1.0
        masks[i, y : y + SIDE, x : x + SIDE] = True
    return images, masks


@pytest.fixture(scope="module")
def cams(model, squares):
    return cam.grad_cam(model, squares[0], "detector")


def test_grad_cam_on_the_detector_is_the_square(cams, squares):
    np.testing.assert_array_equal(cams > 0.5, squares[1])


@pytest.mark.parametrize("baseline", ["blur", "mean", "zero"])
def test_grad_cam_deletes_faster_and_inserts_faster_than_a_random_map(
    model, squares, cams, baseline
):
    scores = fa.faithfulness_scores(model, squares[0], cams, baseline=baseline, steps=16)
    assert (scores.deletion < scores.deletion_random - 0.3).all()
    assert (scores.insertion > scores.insertion_random).all()
    np.testing.assert_array_equal(scores.class_index, 0)
    means = scores.means()
    assert set(means) == {
        "deletion_auc",
        "deletion_auc_random",
        "insertion_auc",
        "insertion_auc_random",
    }
    assert means["deletion_auc"] == pytest.approx(scores.deletion.mean())


def test_deletion_auc_equals_the_hand_computed_area(model, squares, cams):
    # Step 0: probability 1 (the square is seen); from step 1 on (64 >= 36 pixels removed,
    # the square first) both logits are 0, probability 0.5. Trapezoids over 1/16 wide steps:
    # (1 + 0.5) / 2 / 16 + 0.5 * 15 / 16 = 0.515625.
    fractions, curves, _ = fa.deletion_curves(model, squares[0], cams, steps=16, baseline="mean")
    np.testing.assert_allclose(fractions, np.arange(17) / 16)
    np.testing.assert_allclose(curves[:, 0], 1.0, atol=1e-6)
    np.testing.assert_allclose(curves[:, 1:], 0.5, atol=1e-6)
    np.testing.assert_allclose(fa.curve_auc(fractions, curves), 0.515625, atol=1e-6)


def test_insertion_curve_runs_from_baseline_to_image(model, squares, cams):
    _, curves, _ = fa.deletion_curves(model, squares[0], cams, steps=8, insertion=True)
    np.testing.assert_allclose(curves[:, 0], 0.5, atol=1e-6)  # the blurred square is too dim
    np.testing.assert_allclose(curves[:, 1:], 1.0, atol=1e-6)


def test_batch_size_and_map_resolution_do_not_change_the_curves(model, squares, cams):
    _, big, _ = fa.deletion_curves(model, squares[0], cams, steps=8, batch_size=64)
    _, small, _ = fa.deletion_curves(model, squares[0], cams, steps=8, batch_size=5)
    np.testing.assert_allclose(big, small, atol=1e-6)  # batched float sums: rounding only
    coloured = np.repeat(-cams[..., None], 3, axis=-1)  # signed RGB maps: max |value|
    _, signed, _ = fa.deletion_curves(model, squares[0], coloured, steps=8)
    np.testing.assert_allclose(signed, big, atol=1e-6)


def test_curves_of_any_points_probes_or_batch_share_one_trace_of_the_logits(squares, cams):
    from tb_cnnvis import capture

    model = bright_square_model()  # one no other test has traced
    for steps, probes, batch_size in ((8, 4, 64), (4, 4, 64), (8, 2, 5), (16, 3, 7)):
        fa.deletion_curves(model, squares[0][:probes], cams[:probes], steps=steps,
                           batch_size=batch_size)  # fmt: skip
    assert capture.CACHE.trace_count(model) == 1
    assert capture.CACHE.trace_count(model, ("logits", 0)) == 1
    # Occlusion scores its occluded copies (batches of its own size) through it too, and
    # called first its trace serves the curves after it.
    from tb_cnnvis.algorithms import attribution

    model = bright_square_model()
    attribution.attribution(model, squares[0][:3], "occlusion")
    fa.deletion_curves(model, squares[0][:2], cams[:2], steps=8)
    assert capture.CACHE.trace_count(model, ("logits", 0)) == 1


def test_explaining_the_other_class_reverses_the_curve(model, squares, cams):
    _, curves, classes = fa.deletion_curves(model, squares[0], cams, class_index=1, steps=4)
    np.testing.assert_array_equal(classes, 1)
    np.testing.assert_allclose(curves[:, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(curves[:, -1], 0.5, atol=1e-6)


def test_random_map_is_the_same_for_the_same_seed(model, squares, cams):
    first = fa.faithfulness_scores(model, squares[0], cams, insertion=False, seed=3)
    again = fa.faithfulness_scores(model, squares[0], cams, insertion=False, seed=3)
    np.testing.assert_array_equal(first.deletion_random, again.deletion_random)
    assert first.insertion is None and "insertion_auc" not in first.means()


def test_baselines_keep_the_image_mean_where_they_should():
    rng = np.random.default_rng(1)
    images = rng.random((2, 16, 16, 3)).astype(np.float32)
    blurred = fa.baseline_images(images, "blur")
    assert blurred.std() < images.std() / 2
    np.testing.assert_allclose(blurred.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=0.02)
    flat = np.full((1, 16, 16, 3), 0.25, np.float32)
    np.testing.assert_allclose(fa.gaussian_blur(flat, 2.0), 0.25, atol=1e-6)
    np.testing.assert_allclose(
        fa.baseline_images(images, "mean")[:, 3, 5], images.mean(axis=(1, 2)), rtol=1e-6
    )


def test_bad_maps_or_baseline_are_refused(model, squares, cams):
    with pytest.raises(ValueError, match=r"maps must have shape"):
        fa.deletion_curves(model, squares[0], cams[:2])
    with pytest.raises(ValueError, match="Unknown baseline"):
        fa.deletion_curves(model, squares[0], cams, baseline="noise")
    with pytest.raises(ValueError, match="class_index"):
        fa.deletion_curves(model, squares[0], cams, class_index=2)


def test_pointing_game_counts_hits_on_the_mask_within_the_tolerance():
    masks = np.zeros((4, 10, 10), bool)
    masks[:, 2:4, 2:4] = True
    maps = np.zeros((4, 10, 10), np.float32)
    maps[0, 3, 3] = 1.0  # on the object
    maps[1, 3, 6] = 1.0  # 3 px right of it
    maps[2, 9, 9] = 1.0  # far away
    # maps[3] is constant: no maximum, a miss
    result = fa.pointing_game(maps, masks)
    np.testing.assert_array_equal(result.hits, [True, False, False, False])
    np.testing.assert_array_equal(result.points[:3], [[3, 3], [3, 6], [9, 9]])
    assert result.accuracy == 0.25
    assert fa.pointing_game(maps, masks, tolerance=3).hits.tolist() == [True, True, False, False]
    assert fa.pointing_game(maps, masks, tolerance=2.9).accuracy == 0.25


def test_pointing_game_resizes_low_resolution_maps(cams, squares):
    small = cams[:, ::4, ::4]  # 8x8 maps for 32x32 masks
    assert fa.pointing_game(small, squares[1], tolerance=2).accuracy == 1.0
    assert fa.pointing_game(cams, squares[1]).accuracy == 1.0
    assert fa.pointing_game(1 - cams, squares[1]).accuracy == 0.0
