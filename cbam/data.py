"""Cluttered shapes: a small, seeded image task where attending to the right object is the whole point.

Each image holds ONE target object drawn in the fixed target colour (red, ``TARGET_COLOUR``) among
a few distractor objects drawn in other colours, on a textured, noisy background. The label is the
*shape* of the red object. The distractors use the very same shapes (a distractor may well be a
blue copy of the target's shape, or a green star when the target is a heart), so a network cannot
classify the image from "which shapes are present": it must find the red object and look at its
outline. That is what makes the spatial attention of a trained CBAM network meaningful here, and
it is why every image comes with the target's binary mask: the metrics in ``cbam.metrics`` check
whether the learned attention falls on it. The masks are never used for training.

What one image contains (size S × S, default S = 96; anything from 64 to 128 works):

1. Background: a random, low-saturation grey base colour, two random oriented sine gratings
   (stripes) of low contrast, and 4–8 thin random lines in the distractor colours (clutter).
2. Distractors: 3–5 objects, each a random shape from ``CLASS_NAMES`` in a random colour from
   ``DISTRACTOR_COLOURS`` (green, blue, yellow, cyan, purple, white: none of them reddish), with a
   random size, position and rotation.
3. The target: one object of the class's shape in ``TARGET_COLOUR``, drawn last (on top), so its
   mask is exactly the pixels it covers. Its circumscribed radius is 14–21 % of S (a 27–40 px wide
   object at 96 px; the distractors' is 11–19 %), and objects are placed so they barely overlap.
   The target covers about 6 % of the image on average.
4. Pixel noise: Gaussian, σ = 6 grey levels, over the whole image (so the pixels under the mask are
   the target colour ± noise).

Sizes are relative to S, so a 64 px and a 128 px image of one seed show the same scene at two
resolutions (up to pixel rounding).

Determinism. Image ``i`` of the stream with seed ``s`` is drawn from its own NumPy generator,
``numpy.random.default_rng([s, i])``: the same ``(s, i)`` gives the same image bit for bit, on any
machine, whatever order images are asked for in, and batches can be cut from the stream anywhere.
Training uses streams whose seed is the training seed (below ``HELDOUT_SEED_START``); evaluation
uses seeds at or above ``HELDOUT_SEED_START`` (default ``EVAL_SEED``), which no training run uses.

Speed (measured on one core of the shared 2-core build machine, 96 px): about 1,400 images/s for
``make_sample`` and about 1,000 images/s for ``make_batch`` (which also stacks and normalises them
into a tensor). Training the small network consumes about 250 images/s on two cores, so images
are generated on the fly, in the training process, at a cost of about a fifth of the step time.

    >>> from cbam.data import make_sample, make_batch, CLASS_NAMES
    >>> s = make_sample(7)              # seed 7, image 0
    >>> s.image.shape, s.mask.shape, CLASS_NAMES[s.label]
    ((96, 96, 3), (96, 96), 'heart')
    >>> images, labels, masks = make_batch(8, seed=7)
    >>> images.shape, labels.shape, masks.shape
    (torch.Size([8, 3, 96, 96]), torch.Size([8]), torch.Size([8, 96, 96]))
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset, IterableDataset

__all__ = [
    "CLASS_NAMES",
    "TARGET_COLOUR",
    "DISTRACTOR_COLOURS",
    "MEAN",
    "STD",
    "DEFAULT_SIZE",
    "EVAL_SEED",
    "HELDOUT_SEED_START",
    "Sample",
    "make_sample",
    "make_samples",
    "make_batch",
    "normalize",
    "denormalize",
    "ShapesDataset",
    "ShapesStream",
]

CLASS_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "heart")
TARGET_COLOUR: tuple[int, int, int] = (220, 30, 30)
DISTRACTOR_COLOURS: tuple[tuple[int, int, int], ...] = (
    (40, 170, 60),  # green
    (50, 90, 220),  # blue
    (230, 200, 40),  # yellow
    (40, 190, 200),  # cyan
    (140, 70, 200),  # purple
    (235, 235, 235),  # white
)
DEFAULT_SIZE = 96

# Held-out seeds: training streams use seeds below HELDOUT_SEED_START, evaluation at or above it.
HELDOUT_SEED_START = 1_000_000
EVAL_SEED = 1_000_000

# Per-channel mean and standard deviation of the pixels (in [0, 1]) of 4,000 images of seed 0 at
# 96 px; ``normalize`` maps images to roughly zero mean and unit variance with them.
MEAN: tuple[float, float, float] = (0.4578, 0.4484, 0.4474)
STD: tuple[float, float, float] = (0.1882, 0.1683, 0.1867)

NOISE_SIGMA = 6.0
TARGET_RADIUS = (0.14, 0.21)  # circumscribed radius, as a fraction of the image size
DISTRACTOR_RADIUS = (0.11, 0.19)
N_DISTRACTORS = (3, 5)


@dataclass(frozen=True)
class Sample:
    """One image of the task."""

    image: np.ndarray  # (H, W, 3) uint8 RGB
    mask: np.ndarray  # (H, W) bool: the pixels of the target object
    label: int  # index into CLASS_NAMES: the target's shape

    @property
    def class_name(self) -> str:
        return CLASS_NAMES[self.label]


# --------------------------------------------------------------------------------------------
# Shapes: polygons of circumscribed radius 1 around the origin, as (N, 2) arrays of (x, y).
# --------------------------------------------------------------------------------------------


def _regular_polygon(n: int, phase: float = 0.0) -> np.ndarray:
    t = phase + 2 * math.pi * np.arange(n) / n
    return np.stack([np.cos(t), np.sin(t)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    t = -math.pi / 2 + math.pi * np.arange(2 * points) / points
    radius = np.where(np.arange(2 * points) % 2 == 0, 1.0, inner)
    return np.stack([radius * np.cos(t), radius * np.sin(t)], axis=1)


def _cross(arm: float = 0.36) -> np.ndarray:
    """A plus sign whose four arms are 2·arm wide; its corners lie on the unit circle."""
    a = arm
    b = math.sqrt(1.0 - a * a)  # arm length so that the outer corners (±a, ±b) have radius 1
    return np.array([(a, b), (a, a), (b, a), (b, -a), (a, -a), (a, -b), (-a, -b), (-a, -a), (-b, -a), (-b, a), (-a, a), (-a, b)])


def _heart(n: int = 48) -> np.ndarray:
    """The classic parametric heart, centred and scaled to radius 1, point down (image y grows down)."""
    t = 2 * math.pi * np.arange(n) / n
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    points = np.stack([x, y], axis=1)
    points -= (points.max(axis=0) + points.min(axis=0)) / 2
    return points / np.linalg.norm(points, axis=1).max()


SHAPES: dict[str, np.ndarray] = {
    "circle": _regular_polygon(40),
    "square": _regular_polygon(4, math.pi / 4),
    "triangle": _regular_polygon(3, -math.pi / 2),
    "star": _star(),
    "cross": _cross(),
    "heart": _heart(),
}
assert tuple(SHAPES) == CLASS_NAMES


def _polygon(shape: str, cx: float, cy: float, radius: float, angle: float) -> list[tuple[float, float]]:
    """The shape's vertices in pixel coordinates: rotated by ``angle``, scaled, moved to (cx, cy)."""
    c, s = math.cos(angle), math.sin(angle)
    rotation = np.array([[c, -s], [s, c]])
    points = SHAPES[shape] @ rotation.T * radius + (cx, cy)
    return [tuple(p) for p in points.tolist()]


# --------------------------------------------------------------------------------------------
# One image
# --------------------------------------------------------------------------------------------


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """Grey base colour with a slight tint, plus two low-contrast sine gratings. (H, W, 3) float."""
    base = rng.uniform(70, 150) + rng.uniform(-12, 12, size=3)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    image = np.broadcast_to(base.astype(np.float32), (size, size, 3)).copy()
    for _ in range(2):
        theta = rng.uniform(0, math.pi)
        frequency = rng.uniform(2, 9)  # periods per image width
        phase = rng.uniform(0, 2 * math.pi)
        amplitude = rng.uniform(6, 20)
        tint = rng.uniform(0.6, 1.0, size=3).astype(np.float32)  # near-grey stripes
        wave = np.sin(2 * math.pi * frequency * (xx * math.cos(theta) + yy * math.sin(theta)) + phase)
        image += amplitude * wave[:, :, None] * tint
    return image


def _place(rng: np.random.Generator, size: int, radius: float, placed: list[tuple[float, float, float]]):
    """A centre for an object of ``radius`` fully inside the image and apart from ``placed``, or None."""
    for _ in range(20):
        cx, cy = rng.uniform(radius + 1, size - radius - 1, size=2)
        if all(math.hypot(cx - x, cy - y) > 0.9 * (radius + r) for x, y, r in placed):
            return float(cx), float(cy)
    return None


def make_sample(seed: int | np.random.Generator, size: int = DEFAULT_SIZE, index: int = 0) -> Sample:
    """Draw one image of the task.

    Args:
        seed: an int (the stream's seed; the image is number ``index`` of it, drawn with
            ``numpy.random.default_rng([seed, index])``) or a NumPy ``Generator`` to draw from
            (``index`` is then ignored).
        size: the image's side in pixels (64–128 recommended).
        index: which image of the stream.
    """
    if size < 32:
        raise ValueError(f"size must be at least 32 px, got {size}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng([int(seed), int(index)])
    label = int(rng.integers(len(CLASS_NAMES)))

    # The target's place first, so the distractors are placed around it.
    target_radius = rng.uniform(*TARGET_RADIUS) * size
    target_angle = rng.uniform(0, 2 * math.pi)
    tx, ty = _place(rng, size, target_radius, [])
    placed = [(tx, ty, target_radius)]

    # 1. Background and clutter lines.
    background = _background(rng, size)
    canvas = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(4, 9))):
        x0, y0, x1, y1 = rng.uniform(0, size, size=4)
        colour = DISTRACTOR_COLOURS[int(rng.integers(len(DISTRACTOR_COLOURS)))]
        draw.line([(x0, y0), (x1, y1)], fill=colour, width=int(rng.integers(1, 3)))

    # 2. Distractors: any shape (the target's included), never the target colour.
    for _ in range(int(rng.integers(N_DISTRACTORS[0], N_DISTRACTORS[1] + 1))):
        shape = CLASS_NAMES[int(rng.integers(len(CLASS_NAMES)))]
        colour = DISTRACTOR_COLOURS[int(rng.integers(len(DISTRACTOR_COLOURS)))]
        radius = rng.uniform(*DISTRACTOR_RADIUS) * size
        angle = rng.uniform(0, 2 * math.pi)
        centre = _place(rng, size, radius, placed)
        if centre is None:  # no room left: fewer distractors in this image
            continue
        placed.append((*centre, radius))
        draw.polygon(_polygon(shape, *centre, radius, angle), fill=colour)

    # 3. The target, on top; its mask is the same polygon drawn on an empty canvas.
    target = _polygon(CLASS_NAMES[label], tx, ty, target_radius, target_angle)
    draw.polygon(target, fill=TARGET_COLOUR)
    mask_canvas = Image.new("L", (size, size), 0)
    ImageDraw.Draw(mask_canvas).polygon(target, fill=255)

    # 4. Pixel noise over everything.
    noise = rng.normal(0.0, NOISE_SIGMA, size=(size, size, 3)).astype(np.float32)
    image = np.clip(np.asarray(canvas, dtype=np.float32) + noise, 0, 255).round().astype(np.uint8)
    return Sample(image=image, mask=np.asarray(mask_canvas) > 0, label=label)


# --------------------------------------------------------------------------------------------
# Batches and datasets
# --------------------------------------------------------------------------------------------


def normalize(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 images (N, H, W, 3) or (H, W, 3) to a float tensor (N, 3, H, W) normalised with MEAN/STD."""
    x = torch.as_tensor(np.asarray(images))
    if x.dim() == 3:
        x = x[None]
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def denormalize(x: torch.Tensor) -> np.ndarray:
    """Inverse of ``normalize``: (N, 3, H, W) float tensor to (N, H, W, 3) uint8 images."""
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    pixels = (x.detach().cpu().float() * std + mean).clamp(0, 1) * 255
    return pixels.round().byte().permute(0, 2, 3, 1).numpy()


def make_samples(n: int, seed: int, size: int = DEFAULT_SIZE, start: int = 0) -> list[Sample]:
    """Images ``start, ..., start + n - 1`` of the stream with ``seed``."""
    return [make_sample(seed, size, index) for index in range(start, start + n)]


def make_batch(n: int, seed: int, size: int = DEFAULT_SIZE, start: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Images ``start .. start + n - 1`` of stream ``seed``, ready for a network.

    Returns ``(images, labels, masks)``: a float tensor (n, 3, size, size) normalised with
    MEAN/STD, a long tensor (n,) of class indices, and a bool tensor (n, size, size) of target masks.
    """
    samples = make_samples(n, seed, size, start)
    images = normalize(np.stack([s.image for s in samples]))
    labels = torch.tensor([s.label for s in samples], dtype=torch.long)
    masks = torch.from_numpy(np.stack([s.mask for s in samples]))
    return images, labels, masks


class ShapesDataset(Dataset):
    """A fixed-length, map-style dataset: item ``i`` is image ``i`` of stream ``seed``.

    Items are ``(image, label, mask)``: a normalised (3, S, S) float tensor, an int, a (S, S) bool tensor.
    """

    def __init__(self, length: int, seed: int = EVAL_SEED, size: int = DEFAULT_SIZE) -> None:
        self.length, self.seed, self.size = length, seed, size

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        if not 0 <= index < self.length:
            raise IndexError(index)
        sample = make_sample(self.seed, self.size, index)
        return normalize(sample.image)[0], sample.label, torch.from_numpy(sample.mask)


class ShapesStream(IterableDataset):
    """An endless stream of batches ``make_batch(batch_size, seed, size, start=k * batch_size)``, k = 0, 1, ...

    Batches (not single images), because generating a batch at once is what training wants; use it
    with ``DataLoader(stream, batch_size=None)`` or iterate over it directly.
    """

    def __init__(self, batch_size: int, seed: int = 0, size: int = DEFAULT_SIZE, first_batch: int = 0) -> None:
        self.batch_size, self.seed, self.size, self.first_batch = batch_size, seed, size, first_batch

    def __iter__(self):
        k = self.first_batch
        while True:
            yield make_batch(self.batch_size, self.seed, self.size, start=k * self.batch_size)
            k += 1
