"""The synthetic shape data set: determinism, balance, faithful masks, colour without class."""

import numpy as np
import pytest

from demo.shapes import CLASS_NAMES, make_shapes, shape_masks

K = len(CLASS_NAMES)


@pytest.fixture(scope="module")
def data():
    """3000 images: enough for class statistics, fast to generate."""
    return make_shapes(3000, seed=0)


def _nearest_centroid_accuracy(features, labels, split=0.5):
    """Fit class means on the first part, return the accuracy on the rest."""
    cut = int(len(labels) * split)
    mean = features[:cut].mean(axis=0)
    std = features[:cut].std(axis=0) + 1e-6
    features = (features - mean) / std
    centroids = np.stack([features[:cut][labels[:cut] == k].mean(axis=0) for k in range(K)])
    distance = ((features[cut:, None] - centroids[None]) ** 2).sum(axis=-1)
    return float((distance.argmin(axis=1) == labels[cut:]).mean())


def test_arrays_have_the_documented_shapes_types_and_range(data):
    images, labels, masks = data
    assert images.shape == (3000, 64, 64, 3) and images.dtype == np.float32
    assert labels.shape == (3000,) and labels.dtype == np.int64
    assert masks.shape == (3000, 64, 64) and masks.dtype == bool
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert set(np.unique(labels)) == set(range(K))
    assert len(CLASS_NAMES) == len(set(CLASS_NAMES)) >= 5


def test_same_seed_gives_same_data_and_other_seed_other_data():
    first = make_shapes(40, size=32, seed=7)
    again = make_shapes(40, size=32, seed=7)
    other = make_shapes(40, size=32, seed=8)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[2], other[2])


@pytest.mark.parametrize("n", [0, 1, 5, 601])
def test_classes_are_balanced_within_one(n):
    _, labels, _ = make_shapes(n, size=16, seed=3)
    counts = np.bincount(labels, minlength=K)
    assert counts.sum() == n
    assert counts.max() - counts.min() <= 1


def test_labels_are_shuffled_not_cyclic(data):
    _, labels, _ = data
    assert not np.array_equal(labels[:60], np.arange(60) % K)


def test_each_mask_covers_one_flat_coloured_shape_that_stands_out(data):
    images, _, masks = data
    area = masks.sum(axis=(1, 2))
    assert area.min() >= 60 and area.max() <= 0.35 * 64 * 64
    # No shape is cut by the image border.
    border = masks[:, 0].sum() + masks[:, -1].sum() + masks[:, :, 0].sum() + masks[:, :, -1].sum()
    assert border == 0
    # Inside the mask: one colour plus pixel noise (sigma <= 0.06).
    ring = np.zeros_like(masks)
    for dy in (-2, 0, 2):
        for dx in (-2, 0, 2):
            ring |= np.roll(masks, (dy, dx), axis=(1, 2))
    ring &= ~masks
    for image, mask, around in zip(images[:300], masks[:300], ring[:300]):
        colour = np.median(image[mask], axis=0)
        assert np.abs(image[mask] - colour).mean() < 0.06
        # Just outside the mask: the background, visibly different from the shape.
        assert np.linalg.norm(image[around].mean(axis=0) - colour) > 0.3


def test_colour_carries_no_class_information(data):
    images, labels, masks = data
    weights = masks[..., None].astype(np.float32)
    object_colour = (images * weights).sum(axis=(1, 2)) / weights.sum(axis=(1, 2))
    image_colour = images.mean(axis=(1, 2))
    per_class = np.stack([object_colour[labels == k].mean(axis=0) for k in range(K)])
    # Class means of the shape colour differ by no more than sampling noise (6 standard errors).
    standard_error = object_colour.std(axis=0) / np.sqrt(len(labels) / K)
    assert (np.ptp(per_class, axis=0) < 6 * standard_error).all()
    features = np.concatenate([object_colour, image_colour], axis=1)
    assert _nearest_centroid_accuracy(features, labels) < 1 / K + 0.05


def test_the_colour_probe_would_detect_class_information_if_there_were_some(data):
    # The same classifier on geometric facts of the mask finds the class well above chance,
    # so the near-chance result above is about colour, not a classifier unable to learn.
    _, labels, masks = data
    rows, cols = masks.any(axis=2), masks.any(axis=1)
    height, width = rows.sum(axis=1), cols.sum(axis=1)
    fill = masks.sum(axis=(1, 2)) / (height * width)
    centre = [
        mask[int(np.nonzero(r)[0].mean()), int(np.nonzero(c)[0].mean())]
        for mask, r, c in zip(masks, rows, cols)
    ]
    features = np.stack([fill, np.array(centre, dtype=np.float32)], axis=1)
    assert _nearest_centroid_accuracy(features, labels) > 2.5 / K


def test_circle_and_ring_areas_match_their_geometry():
    scale = 20.0
    circle, ring = shape_masks(
        [CLASS_NAMES.index("circle"), CLASS_NAMES.index("ring")],
        [[32, 32]] * 2,
        [scale] * 2,
        [0, 0],
    )
    assert circle.sum() == pytest.approx(np.pi * (0.85 * scale) ** 2, rel=0.03)
    assert ring.sum() == pytest.approx(np.pi * (1 - 0.55**2) * scale**2, rel=0.05)
    assert circle[32, 32] and not ring[32, 32]


def test_cross_holds_its_centre_and_arms_but_not_its_corners():
    (cross,) = shape_masks([CLASS_NAMES.index("cross")], [[32, 32]], [20.0], [0.0])
    assert cross[32, 32] and cross[32, 50] and cross[14, 32]
    assert not cross[46, 46] and not cross[18, 18]


@pytest.mark.parametrize(("name", "symmetry"), [("square", 4), ("triangle", 3), ("star", 5)])
def test_polygons_have_their_rotational_symmetry_and_not_less(name, symmetry):
    label = CLASS_NAMES.index(name)
    angles = [0.3, 0.3 + 2 * np.pi / symmetry, 0.3 + np.pi / symmetry]
    base, turned, half_turned = shape_masks([label] * 3, [[32, 32]] * 3, [20.0] * 3, angles)

    def iou(a, b):
        return (a & b).sum() / (a | b).sum()

    assert iou(base, turned) > 0.97
    assert iou(base, half_turned) < 0.9


def test_bad_arguments_are_rejected_with_what_was_expected():
    with pytest.raises(ValueError, match="n must be"):
        make_shapes(-1)
    with pytest.raises(ValueError, match="at least 16"):
        make_shapes(4, size=8)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 6\)"):
        shape_masks([6], [[8, 8]], [4.0], [0.0], size=16)
    with pytest.raises(ValueError, match="one entry per image"):
        shape_masks([0, 1], [[8, 8]], [4.0], [0.0], size=16)
