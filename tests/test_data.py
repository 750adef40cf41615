"""The cluttered-shapes generator: deterministic, masks on the target, balanced labels."""

import time

import numpy as np
import torch

from cbam import data


def test_same_seed_same_bytes_and_different_seeds_differ():
    a = data.make_sample(3, size=96, index=5)
    b = data.make_sample(3, size=96, index=5)
    assert a.image.tobytes() == b.image.tobytes()
    assert a.mask.tobytes() == b.mask.tobytes() and a.label == b.label
    c = data.make_sample(4, size=96, index=5)
    d = data.make_sample(3, size=96, index=6)
    assert c.image.tobytes() != a.image.tobytes()
    assert d.image.tobytes() != a.image.tobytes()


def test_batches_are_cut_from_one_stream():
    images, labels, masks = data.make_batch(6, seed=11, size=64)
    tail_images, tail_labels, tail_masks = data.make_batch(3, seed=11, size=64, start=3)
    assert torch.equal(images[3:], tail_images)
    assert torch.equal(labels[3:], tail_labels) and torch.equal(masks[3:], tail_masks)
    assert images.shape == (6, 3, 64, 64) and images.dtype == torch.float32
    assert labels.dtype == torch.long and masks.dtype == torch.bool and masks.shape == (6, 64, 64)


def test_sample_types_and_sizes():
    for size in (64, 96, 128):
        s = data.make_sample(0, size=size)
        assert s.image.shape == (size, size, 3) and s.image.dtype == np.uint8
        assert s.mask.shape == (size, size) and s.mask.dtype == bool
        assert 0 <= s.label < len(data.CLASS_NAMES)
        assert s.class_name == data.CLASS_NAMES[s.label]


def test_mask_covers_the_target_colour():
    target = np.array(data.TARGET_COLOUR, dtype=float)
    for index in range(20):
        s = data.make_sample(1, index=index)
        assert 0.01 < s.mask.mean() < 0.2  # one object, not empty, not the whole image
        under = s.image[s.mask].astype(float)
        # Every pixel under the mask is the target colour plus the pixel noise (σ = 6).
        assert np.abs(under - target).max() <= 6 * data.NOISE_SIGMA
        assert np.abs(np.median(under, axis=0) - target).max() <= 3
        # Outside the mask the target colour is (almost) absent: no other red object.
        outside = s.image[~s.mask].astype(float)
        near_red = (np.abs(outside - target) <= 4 * data.NOISE_SIGMA).all(axis=1)
        assert near_red.sum() < 0.05 * s.mask.sum()


def test_distractors_can_share_the_target_shape_only_in_other_colours():
    # The distractor palette holds no reddish colour.
    for colour in data.DISTRACTOR_COLOURS:
        r, g, b = colour
        assert not (r > 150 and g < 100 and b < 100)


def test_labels_are_balanced():
    labels = torch.stack([torch.tensor(data.make_sample(2, size=64, index=i).label) for i in range(600)])
    counts = torch.bincount(labels, minlength=len(data.CLASS_NAMES))
    expected = 600 / len(data.CLASS_NAMES)
    assert (counts > 0.6 * expected).all() and (counts < 1.4 * expected).all()


def test_normalisation_round_trip_and_statistics():
    samples = data.make_samples(50, seed=0)
    images = np.stack([s.image for s in samples])
    x = data.normalize(images)
    assert np.array_equal(data.denormalize(x), images)
    # MEAN and STD normalise the images to roughly zero mean, unit variance per channel.
    assert x.mean(dim=(0, 2, 3)).abs().max() < 0.25
    assert ((x.std(dim=(0, 2, 3)) - 1).abs() < 0.25).all()


def test_datasets():
    ds = data.ShapesDataset(5, seed=data.EVAL_SEED, size=64)
    image, label, mask = ds[2]
    s = data.make_sample(data.EVAL_SEED, size=64, index=2)
    assert label == s.label and torch.equal(mask, torch.from_numpy(s.mask))
    assert len(ds) == 5 and image.shape == (3, 64, 64)
    batches = iter(data.ShapesStream(4, seed=9, size=64))
    first, second = next(batches), next(batches)
    assert torch.equal(second[0], data.make_batch(4, 9, 64, start=4)[0])
    assert not torch.equal(first[0], second[0])


def test_generation_speed_is_reported():
    # Not a timing assertion (the machine may be busy): just measure and print it.
    start = time.perf_counter()
    data.make_samples(100, seed=0)
    rate = 100 / (time.perf_counter() - start)
    print(f"{rate:.0f} images/s")
    assert rate > 0
