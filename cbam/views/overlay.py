"""Maps laid over the user's photo, as RGB arrays: colour-mapped with NumPy, no figure drawn.

The network sees the photo's centre square, resized to its input size (``images.tensor_to_display``).
So a mask belongs over that square: ``on_photo`` upsamples it bilinearly to the square's size in
the photo (at the photo's own shape, long side up to ``DISPLAY_SIDE``), blends it there, and dims
what the network never saw.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .base import Chart, Scale, colorize

__all__ = ["DISPLAY_SIDE", "display_photo", "crop_box", "colorize", "on_photo", "mark_window", "colorbar",
           "normalised"]

DISPLAY_SIDE = 512
"""The long side, in pixels, of the photo the overlays are drawn on."""

WINDOW_RGB = (0, 255, 255)


def display_photo(image: Image.Image, long_side: int = DISPLAY_SIDE) -> np.ndarray:
    """The photo at its own aspect ratio, long side at most ``long_side``, as (h, w, 3) uint8."""
    image = image.convert("RGB") if image.mode != "RGB" else image
    scale = min(1.0, long_side / max(image.size))
    if scale < 1.0:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(image, dtype=np.uint8).copy()


def crop_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the centre square the network sees, in a photo of that size."""
    side = min(height, width)
    return (height - side) // 2, (width - side) // 2, side


def upsample(map2d: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear upsampling (``F.interpolate``, align_corners=False), as the PNG figures draw it."""
    t = torch.from_numpy(np.ascontiguousarray(map2d, dtype=np.float32))[None, None]
    return F.interpolate(t, size=(height, width), mode="bilinear", align_corners=False)[0, 0].numpy()


def normalised(map2d: np.ndarray) -> np.ndarray:
    """min → 0, max → 1 (a constant map becomes 0), as Grad-CAM is shown."""
    low, high = float(map2d.min()), float(map2d.max())
    return (map2d - low) / (high - low) if high > low else np.zeros_like(map2d)


def on_photo(photo: np.ndarray, map2d: np.ndarray, scale: Scale, *, alpha: float = 0.55,
             dim_outside: float = 0.45) -> np.ndarray:
    """``map2d`` over the part of ``photo`` the network saw (its centre square), blended with
    opacity ``alpha``; outside that square the photo is dimmed. Returns (h, w, 3) uint8."""
    h, w = photo.shape[:2]
    top, left, side = crop_box(h, w)
    out = photo.astype(np.float32) * dim_outside + 255 * (1 - dim_outside) * 0.5
    square = photo[top:top + side, left:left + side].astype(np.float32)
    colours = colorize(upsample(map2d, side, side), scale).astype(np.float32)
    out[top:top + side, left:left + side] = (1 - alpha) * square + alpha * colours
    return out.round().clip(0, 255).astype(np.uint8)


def mark_window(rgb: np.ndarray, map_shape: tuple[int, int], row: int, col: int, size: int) -> np.ndarray:
    """Outline the size×size window of feature pixels centred on (row, col), in the photo's centre
    square, with a cyan line on a black one. Returns a copy."""
    out = rgb.copy()
    h, w = out.shape[:2]
    top, left, side = crop_box(h, w)
    sy, sx = side / map_shape[0], side / map_shape[1]
    y0 = int(round(top + (row - size // 2) * sy))
    x0 = int(round(left + (col - size // 2) * sx))
    y1 = int(round(top + (row - size // 2 + size) * sy)) - 1
    x1 = int(round(left + (col - size // 2 + size) * sx)) - 1
    line = max(1, round(min(h, w) / 256))  # the outline keeps its look on small and large photos
    for thickness, colour in ((2 * line, (0, 0, 0)), (line - 1, WINDOW_RGB)):
        for d in range(-thickness, thickness + 1):
            for y in (y0 + d, y1 + d):
                if 0 <= y < h:
                    out[y, max(0, x0):min(w, x1 + 1)] = colour
            for x in (x0 + d, x1 + d):
                if 0 <= x < w:
                    out[max(0, y0):min(h, y1 + 1), x] = colour
    return out


def colorbar(scale: Scale, label: str, *, width: int = 260) -> Chart:
    """A horizontal colour bar for ``scale``: the legend of an overlay."""
    values = np.linspace(scale.low, scale.high, 64)
    step = values[1] - values[0]
    spec = {
        "data": {"name": "main"}, "width": width, "height": 14,
        "mark": {"type": "rect"},
        "encoding": {
            "x": {"field": "v", "type": "quantitative", "title": label, "scale": {"domain": [scale.low, scale.high],
                                                                                "nice": False}},
            "x2": {"field": "v2"},
            "color": {"field": "v", "type": "quantitative", "scale": scale.vega(), "legend": None},
            "tooltip": [{"field": "v", "type": "quantitative", "title": label, "format": ".3f"}],
        },
        "config": {"view": {"stroke": None}},
        "autosize": {"type": "pad"},  # the bar keeps its 14 px; the axis comes below it
    }
    return Chart(spec, {"main": {"v": values, "v2": values + step}})
