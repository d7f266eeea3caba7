"""Top-activating examples: the true top k, exact receptive fields, patches and projections."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import layers

from tb_cnnvis.algorithms import feature_maps as fm
from tb_cnnvis.algorithms import top_examples as te
from tests import models


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(1)
    return models.sequential()


@pytest.fixture(scope="module")
def reference():
    return np.random.default_rng(2).random((40, models.SIZE, models.SIZE, 3), dtype=np.float32)


@pytest.fixture(scope="module")
def top(model, reference):
    return te.top_examples(model, reference, "conv2", k=5, batch_size=7)


def brute_force_top(model, images, layer, k):
    """Per channel, the k images with the largest maximum (ties: earlier image), by sorting."""
    maxima = fm.feature_maps(model, images, layer).max(axis=(1, 2))  # (N, C)
    order = np.stack([np.lexsort((np.arange(len(maxima)), -column)) for column in maxima.T])
    return order[:, :k], np.take_along_axis(maxima.T, order[:, :k], axis=1)


def test_top_k_are_the_k_strongest_images_of_each_filter(model, reference, top):
    indices, values = brute_force_top(model, reference, "conv2", 5)
    np.testing.assert_array_equal(top.indices, indices)
    np.testing.assert_allclose(top.activations, values, rtol=1e-5)
    assert top.indices.shape == (6, 5) and top.count == 40
    assert (np.diff(top.activations, axis=1) <= 0).all()


def test_positions_hold_the_maximum_activation(model, reference, top):
    maps = fm.feature_maps(model, reference, "conv2")
    for f, channel in enumerate(top.filters):
        for j, image in enumerate(top.indices[f]):
            y, x = top.positions[f, j]
            assert maps[image, y, x, channel] == pytest.approx(top.activations[f, j], rel=1e-5)


def test_batch_size_does_not_change_the_result(model, reference, top):
    other = te.top_examples(model, reference, "conv2", k=5, batch_size=64)
    np.testing.assert_array_equal(other.indices, top.indices)
    np.testing.assert_array_equal(other.positions, top.positions)
    np.testing.assert_allclose(other.activations, top.activations, rtol=1e-6)
    np.testing.assert_array_equal(other.patches, top.patches)
    np.testing.assert_allclose(other.projections, top.projections, rtol=1e-5, atol=1e-7)


def test_dataset_of_images_and_labels_gives_the_same_result(model, reference, top):
    labels = np.arange(len(reference))
    for dataset in (
        tf.data.Dataset.from_tensor_slices((reference, labels)),
        tf.data.Dataset.from_tensor_slices(reference).batch(11),
    ):
        result = te.top_examples(model, dataset, "conv2", k=5, batch_size=7, with_projections=False)
        np.testing.assert_array_equal(result.indices, top.indices)
        np.testing.assert_array_equal(result.patches, top.patches)
        assert result.projections is None


def test_filter_subset_equals_those_rows_of_all_filters(model, reference, top):
    subset = te.top_examples(model, reference, "conv2", k=5, filters=[4, 1])
    np.testing.assert_array_equal(subset.filters, [4, 1])
    np.testing.assert_array_equal(subset.indices, top.indices[[4, 1]])
    np.testing.assert_allclose(subset.projections, top.projections[[4, 1]], rtol=1e-5, atol=1e-7)


def test_fewer_images_than_k_gives_every_image(model, reference):
    result = te.top_examples(model, reference[:3], "conv1", k=9, with_projections=False)
    assert result.indices.shape == (4, 3)
    assert sorted(result.indices[0].tolist()) == [0, 1, 2]


def test_receptive_field_of_a_known_stack_matches_hand_computation():
    # 32 -> conv3 valid (30) -> maxpool2 (15) -> conv3 s2 same (8, pads 1 before)
    #    -> conv3 dilation 2 valid (4) -> zero-pad 1 (6) -> avgpool3 s1 (4)
    model = keras.Sequential(
        [
            keras.Input((32, 32, 1)),
            layers.Conv2D(2, 3, name="a"),
            layers.MaxPooling2D(2, name="b"),
            layers.Conv2D(2, 3, strides=2, padding="same", name="c"),
            layers.Conv2D(2, 3, dilation_rate=2, name="d"),
            layers.ZeroPadding2D(1, name="e"),
            layers.AveragePooling2D(3, strides=1, name="f"),
        ]
    )
    expected = {  # size, stride, start, output size
        "a": (3, 1, 0, 30),
        "b": (4, 2, 0, 15),
        "c": (8, 4, -2, 8),
        "d": (24, 4, -2, 4),
        "e": (24, 4, -6, 6),
        "f": (32, 4, -6, 4),
    }
    for name, (size, stride, start, out) in expected.items():
        field = te.receptive_field(model, name)
        assert field.size == (size, size), name
        assert field.stride == (stride, stride), name
        assert field.start == (start, start), name
        assert field.output_size == (out, out) == model.get_layer(name).output.shape[1:3]


def test_receptive_field_equals_the_support_of_a_unit_gradient():
    # Positive weights and no ReLU: every input pixel in a unit's field gets a nonzero
    # gradient, every other pixel none. Odd sizes and "same" strides pad unevenly.
    model = keras.Sequential(
        [
            keras.Input((21, 19, 1)),
            layers.Conv2D(1, (3, 5), strides=2, padding="same", name="c1"),
            layers.AveragePooling2D((2, 3), strides=(2, 1), padding="same", name="p1"),
            layers.Conv2D(1, 3, dilation_rate=(1, 2), padding="same", name="c2"),
        ]
    )
    for layer in model.layers:
        layer.set_weights([np.full(w.shape, 0.5, np.float32) for w in layer.get_weights()])
    field = te.receptive_field(model, "c2")
    height, width = field.output_size
    image = tf.ones((1, 21, 19, 1))
    for y, x in [(0, 0), (height - 1, width - 1), (height // 2, 1)]:
        with tf.GradientTape() as tape:
            tape.watch(image)
            unit = model(image)[0, y, x, 0]
        support = np.argwhere(tape.gradient(unit, image).numpy()[0, ..., 0] != 0)
        top = field.start[0] + y * field.stride[0]
        left = field.start[1] + x * field.stride[1]
        expected = [
            max(top, 0),
            max(left, 0),
            min(top + field.size[0], 21) - 1,
            min(left + field.size[1], 19) - 1,
        ]
        assert [*support.min(axis=0), *support.max(axis=0)] == expected


def test_receptive_field_of_a_branching_model_is_the_union():
    field = te.receptive_field(models.functional(), "add")  # conv 3x3 + conv 1x1
    assert field.size == (3, 3) and field.start == (-1, -1)
    nested = te.receptive_field(models.nested(), "base/conv2")
    assert nested.size == (8, 8) and nested.stride == (2, 2)


def test_patches_are_the_image_under_the_field_and_contain_the_unit(reference, top):
    field = top.receptive_field
    assert top.patches.shape[2:4] == field.patch_size == (8, 8)
    for f in range(len(top.filters)):
        for j, image in enumerate(top.indices[f]):
            y0, x0, y1, x1 = top.boxes[f, j]
            centre = np.array(field.start) + top.positions[f, j] * field.stride + 3.5
            assert y0 <= centre[0] <= y1 and x0 <= centre[1] <= x1
            corner = np.array(field.start) + top.positions[f, j] * field.stride
            dy, dx = y0 - corner[0], x0 - corner[1]
            patch = top.patches[f, j]
            np.testing.assert_array_equal(
                patch[dy : dy + y1 - y0, dx : dx + x1 - x0], reference[image, y0:y1, x0:x1]
            )
            assert patch.sum() == pytest.approx(reference[image, y0:y1, x0:x1].sum(), rel=1e-5)


def test_windows_over_the_border_are_padded_with_zeros_in_place():
    image = np.arange(25, dtype=np.float32).reshape(1, 5, 5, 1) + 1
    patches, boxes = te.crop_windows(image, np.array([[-2, 3]]), (4, 4))
    np.testing.assert_array_equal(boxes, [[0, 3, 2, 5]])
    expected = np.zeros((4, 4), np.float32)
    expected[2:, :2] = image[0, :2, 3:, 0]
    np.testing.assert_array_equal(patches[0, ..., 0], expected)


def test_projections_are_zero_outside_the_receptive_field(model, reference, top):
    images = reference[top.indices[:, 0]]
    units = np.concatenate([top.filters[:, None], top.positions[:, 0]], axis=1)
    full = te.project_units(model, images, "conv2", units)
    for f in range(len(top.filters)):
        y0, x0, y1, x1 = top.boxes[f, 0]
        inside = np.abs(full[f, y0:y1, x0:x1]).sum()
        assert np.abs(full[f]).sum() == pytest.approx(inside, rel=1e-6)
        assert inside > 0
        np.testing.assert_allclose(top.projections[f, 0].sum(), full[f].sum(), rtol=1e-5, atol=1e-7)


def test_deconvnet_projection_of_the_strongest_unit_matches_backprop(model, reference):
    from tb_cnnvis.algorithms import backprop

    details = backprop.projection_details(model, reference[:4], "conv2", channel=2)
    units = np.concatenate([details.channel[:, None], details.position], axis=1)
    ours = te.project_units(model, reference[:4], "conv2", units, rule="deconvnet")
    np.testing.assert_allclose(ours, details.projections, rtol=1e-5, atol=1e-7)


def test_bad_arguments_are_refused_with_what_is_allowed(model, reference):
    with pytest.raises(ValueError, match="channels"):
        te.top_examples(model, reference, "conv2", filters=[6])
    with pytest.raises(ValueError, match="rule"):
        te.top_examples(model, reference, "conv2", rule="lrp")
    with pytest.raises(ValueError, match="k and batch_size"):
        te.top_examples(model, reference, "conv2", k=0)
    with pytest.raises(ValueError, match="not found"):
        te.top_examples(model, reference, "conv9")
    with pytest.raises(ValueError, match="reference dataset must yield images"):
        te.top_examples(model, tf.data.Dataset.from_tensor_slices({"x": reference}), "conv2")
    upsampled = keras.Sequential(
        [keras.Input((8, 8, 1)), layers.UpSampling2D(name="up"), layers.Conv2D(1, 3, name="c")]
    )
    with pytest.raises(ValueError, match="UpSampling2D"):
        te.receptive_field(upsampled, "c")
