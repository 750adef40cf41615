"""The sample images bundled in ``assets/samples`` (see LICENSES.md there), with their credits, and
``unseen_images()``: a few more images that no model of CBAM Lab was trained on or is shown with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SAMPLES_DIR = ASSETS / "samples"

__all__ = ["SampleImage", "sample_images", "get_sample", "unseen_images", "probe_inputs", "ASSETS", "SAMPLES_DIR"]


@dataclass(frozen=True)
class SampleImage:
    file: str
    title: str
    kind: str  # "task" (an image of the shapes task the bundled models learned), "photo" or "synthetic"
    credit: str
    licence: str

    @property
    def path(self) -> Path:
        return SAMPLES_DIR / self.file


def sample_images() -> list[SampleImage]:
    """Every bundled sample image in the order of ``samples.json``: the shapes task first, then photos."""
    entries = json.loads((SAMPLES_DIR / "samples.json").read_text(encoding="utf-8"))
    return [SampleImage(**entry) for entry in entries]


def get_sample(file: str) -> SampleImage:
    for sample in sample_images():
        if sample.file == file:
            return sample
    raise KeyError(f"no sample image named {file!r}")


# --------------------------------------------------------------------------------------------
# Images no model has seen: for checking that attention stays alive off the training distribution
# --------------------------------------------------------------------------------------------


def unseen_images() -> dict[str, Image.Image]:
    """Natural-looking RGB images that are neither bundled samples nor shapes images, by name.

    Three come with matplotlib (its ``sample_data``): a photo of a wrapped present, a shaded relief
    of the Jacksboro fault's elevation model, and a slice of an MRI scan. Four are drawn here from
    fixed seeds (no network, always the same pixels): clouds (1/f noise in sky colours), a sunset
    over hills, pebbles on soil, and a brick wall. ``tests/test_live_attention.py`` checks that no
    shipped model's attention dies on them; they are not used for training.
    """
    from matplotlib import cbook, colormaps
    from matplotlib.colors import LightSource

    present = Image.open(cbook.get_sample_data("Minduka_Present_Blue_Pack.png"))
    present = Image.alpha_composite(Image.new("RGBA", present.size, (255, 255, 255, 255)), present.convert("RGBA"))
    elevation = cbook.get_sample_data("jacksboro_fault_dem.npz")["elevation"]
    relief = LightSource(azdeg=315, altdeg=45).shade(elevation, cmap=colormaps["gist_earth"], blend_mode="overlay")
    with cbook.get_sample_data("s1045.ima.gz") as f:
        mri = np.frombuffer(f.read(), np.uint16).reshape(256, 256).astype(np.float64)
    return {
        "present": present.convert("RGB"),
        "relief": _to_image(relief[..., :3]),
        "mri": _to_image(np.repeat((mri / mri.max())[..., None], 3, axis=2)),
        "clouds": _clouds(),
        "sunset": _sunset(),
        "pebbles": _pebbles(),
        "bricks": _bricks(),
    }


def _to_image(unit: np.ndarray) -> Image.Image:
    """A float (H, W, 3) array in [0, 1] as an RGB image."""
    return Image.fromarray((np.clip(unit, 0, 1) * 255).round().astype(np.uint8), "RGB")


def _pink_noise(rng: np.random.Generator, size: int, exponent: float = 1.8) -> np.ndarray:
    """A (size, size) field of 1/f^exponent noise scaled to [0, 1]: the texture of clouds and terrain."""
    spectrum = rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))
    fy, fx = np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij")
    frequency = np.hypot(fx, fy)
    frequency[0, 0] = 1.0
    field = np.real(np.fft.ifft2(spectrum / frequency**exponent))
    return (field - field.min()) / (field.max() - field.min())


def _clouds(size: int = 192) -> Image.Image:
    rng = np.random.default_rng(101)
    cover = np.clip((_pink_noise(rng, size) - 0.45) * 2.5, 0, 1)[..., None]
    sky = np.linspace(0.0, 1.0, size)[:, None, None] * np.array([0.25, 0.35, 0.2]) + np.array([0.25, 0.45, 0.8])
    return _to_image(sky * (1 - cover) + cover * np.array([0.97, 0.97, 0.98]))


def _sunset(size: int = 192) -> Image.Image:
    rng = np.random.default_rng(102)
    t = np.linspace(0.0, 1.0, size)[:, None, None]
    sky = (1 - t) * np.array([0.35, 0.2, 0.45]) + t * np.array([1.0, 0.6, 0.25])
    image = np.broadcast_to(sky, (size, size, 3)).copy()
    yy, xx = np.mgrid[0:size, 0:size]
    image[np.hypot(yy - 0.62 * size, xx - 0.6 * size) < 0.11 * size] = (1.0, 0.9, 0.55)
    ridge = 0.7 * size + 0.08 * size * np.sin(np.arange(size) / size * 7 + 1) + 4 * _pink_noise(rng, size)[0]
    image[yy > ridge[None, :]] = (0.12, 0.1, 0.15)
    return _to_image(image + rng.normal(0, 0.015, image.shape))


def _pebbles(size: int = 192) -> Image.Image:
    rng = np.random.default_rng(103)
    soil = np.array([0.42, 0.32, 0.22]) + 0.15 * (_pink_noise(rng, size, 1.2)[..., None] - 0.5)
    image = Image.fromarray((np.clip(soil, 0, 1) * 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(60):
        x, y = rng.uniform(0, size, 2)
        rx, ry = rng.uniform(5, 16, 2)
        grey = rng.uniform(0.45, 0.85)
        tint = grey * np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.8, 1.0)])
        draw.ellipse((x - rx, y - ry, x + rx, y + ry), fill=tuple(int(255 * c) for c in tint))
    pixels = np.asarray(image, dtype=np.float64) / 255
    return _to_image(pixels + rng.normal(0, 0.03, pixels.shape))


def _bricks(size: int = 192, brick: tuple[int, int] = (40, 18)) -> Image.Image:
    rng = np.random.default_rng(104)
    image = np.empty((size, size, 3))
    image[:] = (0.78, 0.76, 0.72)  # mortar
    width, height = brick
    for row, top in enumerate(range(0, size, height)):
        offset = (row % 2) * width // 2
        for left in range(-offset, size, width):
            colour = np.array([0.6, 0.25, 0.18]) * rng.uniform(0.8, 1.15)
            image[top + 2:top + height - 1, max(0, left + 2):max(0, left + width - 1)] = colour
    return _to_image(image + rng.normal(0, 0.04, image.shape))


def probe_inputs(size: int, mean, std) -> dict[str, torch.Tensor]:
    """Every bundled sample and every ``unseen_images()`` image as a model input (1, 3, size, size),
    by name (the sample's file name, or the unseen image's name), normalised with ``mean`` and ``std``
    as a ``ModelCard`` gives them (see ``cbam.images.to_tensor``)."""
    from . import images

    inputs = {s.file: images.to_tensor(images.load_image(s.path), size, mean, std) for s in sample_images()}
    for name, picture in unseen_images().items():
        inputs[name] = images.to_tensor(picture, size, mean, std)
    return inputs
