"""Untrusted bytes in, a clean RGB picture and a model input out.

Everything a user uploads goes through ``load_image``. It either returns a fully decoded RGB
``PIL.Image.Image`` or raises ``ImageError`` with a message written for a student ("This file is
not an image Pillow can read (it looks like HTML)"). No Pillow, OS or decoder error escapes raw.

    >>> from cbam.images import load_image, to_tensor, tensor_to_display
    >>> image = load_image(uploaded_file)                 # bytes, a path, or a binary file object
    >>> x = to_tensor(image, card.input_size, card.mean, card.std)      # (1, 3, size, size)
    >>> seen = tensor_to_display(image, card.input_size)   # the same pixels, as uint8 (size, size, 3)

Limits and decisions (all checked before any pixel data is decoded, except where noted):

* File size: at most ``max_bytes`` (20 MiB by default). A path is checked with ``os.stat`` before
  it is read; a file object is read at most one byte past the limit.
* Formats: PNG (also APNG), JPEG (also MPO, which some cameras write), WebP, BMP, GIF and TIFF. Only
  these Pillow plugins are asked to open the data, so exotic decoders (EPS runs Ghostscript, for
  one) are never reached. Anything else is rejected; SVG, HTML, XML, plain text, ZIP, PDF, gzip,
  HEIC/AVIF and MP4 are named in the message.
* Pixels: width × height at most ``max_pixels`` (40 megapixels by default), checked from the header
  before decoding, so a small file that declares a huge image (a decompression bomb) costs nothing.
  Pillow's own bomb check (``Image.MAX_IMAGE_PIXELS``, about 89 megapixels by default) also turns
  into ``ImageError``, its warning included, so the limit in force is the smaller of the two.
  To make that warning an error, ``load_image`` opens images inside ``warnings.catch_warnings()``
  with a filter for ``DecompressionBombWarning`` only. That is Python's standard way, but the
  filter list is process-wide: while an image is being opened, another thread's
  ``DecompressionBombWarning`` would also be raised as an error. No other global state (Pillow's
  ``MAX_IMAGE_PIXELS`` or ``LOAD_TRUNCATED_IMAGES``) is read for the limits or changed.
* Shape: the shorter side must be at least ``min_side`` (8 px by default; a 1×1 or a 10000×4 image
  is rejected as too small) and the longer side at most ``max_aspect_ratio`` (20 by default) times
  the shorter, because the model sees only the centre square (see ``to_tensor``).
* Truncated or damaged files fail inside ``load_image``: the pixels are decoded there (``.load()``).
  This relies on Pillow's default ``ImageFile.LOAD_TRUNCATED_IMAGES = False``; if other code sets it
  to True, Pillow itself pads truncated images with grey and they are accepted.
* Orientation: the EXIF orientation tag is applied (a phone photo comes out upright). A damaged EXIF
  block is ignored and the image is used as stored.
* Animations (GIF, WebP, APNG) and multi-page TIFFs: the first frame or page is used.
* Colour modes become RGB: transparency (RGBA, LA, PA, or a palette, grey or RGB image with a
  transparent colour) is composited over ``background`` (white by default); CMYK, YCbCr, 1-bit, L and palette
  images are converted by Pillow; 16- and 32-bit integer (I;16, I;16B, I) and floating-point (F)
  images are scaled linearly so their smallest value is 0 and their largest 255. An image with a
  single value throughout becomes mid-grey (128). In float images NaN becomes black, +inf white and
  -inf black, and the range is taken over the finite values; an image with no finite value is
  rejected. (A transparent colour in a 16-bit image is ignored.)
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .i18n import t

__all__ = [
    "ImageError",
    "load_image",
    "describe",
    "to_tensor",
    "tensor_to_display",
    "SUPPORTED_EXTENSIONS",
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MIN_SIDE",
    "DEFAULT_MAX_ASPECT_RATIO",
]

#: File name extensions the app's uploader accepts (without the dot).
SUPPORTED_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff")

#: The Pillow plugins ``load_image`` lets open a file; nothing else is tried.
PILLOW_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")  # Pillow's JPEG opener also reads MPO
_FORMAT_NAMES_FOR_PEOPLE = "PNG, JPEG, WebP, BMP, GIF or TIFF"

DEFAULT_MAX_BYTES = 20 * 1024 * 1024  # 20 MiB
DEFAULT_MAX_PIXELS = 40_000_000  # 40 megapixels: an 8000 × 5000 photo, 120 MB once decoded as RGB
DEFAULT_MIN_SIDE = 8  # pixels
DEFAULT_MAX_ASPECT_RATIO = 20.0  # longer side ÷ shorter side

ImageSource = bytes | bytearray | memoryview | str | os.PathLike | BinaryIO

_TRANSPARENT_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
_MID_GREY = 128


class ImageError(ValueError):
    """The input is not a usable image. ``str(error)`` is a sentence a student can act on."""


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def load_image(
    source: ImageSource,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_side: int = DEFAULT_MIN_SIDE,
    max_aspect_ratio: float = DEFAULT_MAX_ASPECT_RATIO,
    background: tuple[int, int, int] = (255, 255, 255),
) -> Image.Image:
    """Read an image from untrusted input and return it fully decoded, upright, in RGB mode.

    ``source`` is the file's bytes, a path (``str`` or ``pathlib.Path``), or a binary file-like
    object: one with ``getvalue()`` (``io.BytesIO``, Streamlit's ``UploadedFile``) is read whole,
    any other is ``read()`` from its current position.

    Limits: at most ``max_bytes`` bytes (default 20 MiB) and ``max_pixels`` pixels (default 40
    million, checked before decoding); the shorter side at least ``min_side`` pixels (default 8);
    the longer side at most ``max_aspect_ratio`` times the shorter (default 20). Transparent parts
    are composited over ``background``. See the module docstring for every decision.

    Raises ``ImageError`` (a ``ValueError``) for anything that is not a usable image, ``TypeError``
    for a source of the wrong type (a text-mode file, a number) and ``ValueError`` for bad limits.
    """
    _check_limits(max_bytes, max_pixels, min_side, max_aspect_ratio)
    background = _check_colour(background)
    data = _read_source(source, max_bytes)
    if not data:
        raise ImageError(t("image.empty"))

    with warnings.catch_warnings():
        # Pillow warns, rather than fails, for images between MAX_IMAGE_PIXELS and twice that.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        image = _open(data, max_pixels)
        try:
            _check_size(image.size, max_pixels, min_side, max_aspect_ratio)
            _decode_pixels(image, max_pixels)
            upright = _apply_exif_orientation(image)  # a new image, independent of the file
        finally:
            image.close()
    return _to_rgb(upright, background)


def _open(data: bytes, max_pixels: int) -> Image.Image:
    """Parse the header only; no pixel data is decoded here."""
    try:
        return Image.open(io.BytesIO(data), formats=PILLOW_FORMATS)
    except UnidentifiedImageError:
        kind = _looks_like(data)
        if kind is not None:
            raise ImageError(t("image.looks_like", kind=t(kind))) from None
        raise ImageError(t("image.unknown", formats=_FORMAT_NAMES_FOR_PEOPLE)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(_pillow_bomb_message(str(error), max_pixels)) from None
    except Exception as error:  # a malformed header can raise almost anything
        raise ImageError(t("image.header", error=_short(error))) from None


def _decode_pixels(image: Image.Image, max_pixels: int) -> None:
    """Decode the first frame now, so a truncated or corrupt file fails here and not later."""
    try:
        image.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageError(_pillow_bomb_message(str(error), max_pixels)) from None
    except MemoryError:
        raise ImageError(t("image.memory")) from None
    except Exception as error:  # decoders raise OSError, SyntaxError, struct.error, ...
        raise ImageError(t("image.truncated", format=image.format or t("image.known_format"), error=_short(error))) from None


def _check_size(size: tuple[int, int], max_pixels: int, min_side: int, max_aspect_ratio: float) -> None:
    width, height = size
    pixels = width * height
    if pixels > max_pixels:
        declared, limit = _megapixel_pair(pixels, max_pixels)
        raise ImageError(t("image.too_many_pixels", width=width, height=height, declared=declared, limit=limit))
    if min(width, height) < min_side:
        raise ImageError(t("image.too_small", width=width, height=height, min_side=min_side))
    ratio = max(width, height) / min(width, height)
    if ratio > max_aspect_ratio:
        raise ImageError(t("image.too_long", width=width, height=height, ratio=ratio, limit=max_aspect_ratio))


def _apply_exif_orientation(image: Image.Image) -> Image.Image:
    """Turn the image upright as its EXIF orientation tag says; always returns a new image."""
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # a damaged EXIF block only costs us the rotation
        return image.copy()
    return upright if upright is not None else image.copy()


# --------------------------------------------------------------------------------------------
# Colour modes
# --------------------------------------------------------------------------------------------


def _to_rgb(image: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    """Any Pillow mode to RGB, as the module docstring describes."""
    mode = image.mode
    if mode in _HIGH_DEPTH_MODES:
        return _scale_to_rgb(image)
    try:
        if mode in _TRANSPARENT_MODES or "transparency" in image.info:
            return _composite(image.convert("RGBA"), background)
        return image if mode == "RGB" else image.convert("RGB")
    except Exception as error:  # e.g. LAB has no conversion to RGB in Pillow
        raise ImageError(t("image.colour_mode", mode=mode, error=_short(error))) from None


def _composite(rgba: Image.Image, background: tuple[int, int, int]) -> Image.Image:
    canvas = Image.new("RGB", rgba.size, background)
    canvas.paste(rgba, mask=rgba.getchannel("A"))
    return canvas


def _scale_to_rgb(image: Image.Image) -> Image.Image:
    """A one-channel 16/32-bit integer or float image, stretched from its own min..max to 0..255."""
    values = np.asarray(image).astype(np.float64)
    finite = np.isfinite(values)
    if not finite.any():
        raise ImageError(t("image.no_numbers"))
    low = values[finite].min()
    high = values[finite].max()
    if high > low:
        scaled = (values - low) * (255.0 / (high - low))
    else:
        scaled = np.full_like(values, _MID_GREY)
    scaled[np.isnan(values)] = 0.0
    scaled[values == np.inf] = 255.0
    scaled[values == -np.inf] = 0.0
    grey = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([grey, grey, grey], axis=-1), "RGB")


# --------------------------------------------------------------------------------------------
# Reading the source
# --------------------------------------------------------------------------------------------


def _read_source(source: ImageSource, max_bytes: int) -> bytes:
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    elif isinstance(source, (str, os.PathLike)):
        data = _read_path(Path(source), max_bytes)
    elif hasattr(source, "getvalue") or hasattr(source, "read"):
        data = _read_file_object(source, max_bytes)
    else:
        raise TypeError(f"load_image needs bytes, a path or a binary file object, not {type(source).__name__}")
    if len(data) > max_bytes:
        raise ImageError(_too_many_bytes_message(len(data), max_bytes))
    return data


def _read_path(path: Path, max_bytes: int) -> bytes:
    try:
        if path.is_dir():
            raise ImageError(t("image.folder", path=path))
        size = path.stat().st_size
        if size > max_bytes:
            raise ImageError(_too_many_bytes_message(size, max_bytes))
        with path.open("rb") as file:
            return file.read(max_bytes + 1)
    except FileNotFoundError:
        raise ImageError(t("image.no_file", path=path)) from None
    except PermissionError:
        raise ImageError(t("image.permission", path=path)) from None
    except OSError as error:
        raise ImageError(t("image.unreadable", path=path, error=_short(error))) from None


def _read_file_object(file: BinaryIO, max_bytes: int) -> bytes:
    try:
        if hasattr(file, "getvalue"):
            data = file.getvalue()
        else:
            data = file.read(max_bytes + 1)
    except OSError as error:
        raise ImageError(t("image.upload_unreadable", error=_short(error))) from None
    if isinstance(data, str):
        raise TypeError("load_image needs a file opened in binary mode ('rb'), not text mode")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"reading the file object gave {type(data).__name__}, not bytes")
    return bytes(data)


# --------------------------------------------------------------------------------------------
# Naming what a non-image looks like
# --------------------------------------------------------------------------------------------

_MAGIC_PREFIXES = (
    (b"PK\x03\x04", "image.kind.zip"),
    (b"PK\x05\x06", "image.kind.empty_zip"),
    (b"%PDF", "image.kind.pdf"),
    (b"\x1f\x8b", "image.kind.gzip"),
    (b"Rar!", "image.kind.rar"),
    (b"7z\xbc\xaf\x27\x1c", "image.kind.7z"),
    (b"8BPS", "image.kind.psd"),
)
_ISO_MEDIA_BRANDS = (
    (
        (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"),
        "image.kind.heic",
    ),
    ((b"avif", b"avis"), "image.kind.avif"),
)


def _looks_like(data: bytes) -> str | None:
    """The catalogue key of a short description of a file that is not a supported image, or None if
    unrecognised."""
    for prefix, kind in _MAGIC_PREFIXES:
        if data.startswith(prefix):
            return kind
    if data[4:8] == b"ftyp":
        brand = data[8:12]
        for brands, kind in _ISO_MEDIA_BRANDS:
            if brand in brands:
                return kind
        return "image.kind.video"
    head = data[:4096]
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if head.startswith(bom):
            head = head[len(bom) :]
    text = head.lstrip().lower()
    if b"<svg" in text:
        return "image.kind.svg"
    if text.startswith(b"<!doctype html") or re.search(rb"<(html|head|body)[\s>]", text):
        return "image.kind.html"
    if text.startswith(b"<?xml"):
        return "image.kind.xml"
    if _is_text(head):
        return "image.kind.text"
    return None


def _is_text(head: bytes) -> bool:
    try:
        decoded = head.decode("utf-8")
    except UnicodeDecodeError:
        # The 4096-byte window may cut a multi-byte character at its end.
        try:
            decoded = head[:-3].decode("utf-8")
        except UnicodeDecodeError:
            return False
    printable = sum(character.isprintable() or character in "\t\r\n" for character in decoded)
    return bool(decoded) and printable / len(decoded) > 0.95


# --------------------------------------------------------------------------------------------
# Messages and argument checks
# --------------------------------------------------------------------------------------------


def _megapixel_pair(pixels: int, limit: int) -> tuple[str, str]:
    """Two megapixel counts as text, exact counts where rounding would make them look equal."""
    shown_pixels = f"{pixels / 1e6:.2f}".rstrip("0").rstrip(".")
    shown_limit = f"{limit / 1e6:.2f}".rstrip("0").rstrip(".")
    if shown_pixels == shown_limit:
        return f"{pixels / 1e6:.6f}", f"{limit / 1e6:.6f}"
    return shown_pixels, shown_limit


def _pillow_bomb_message(pillow_message: str, max_pixels: int) -> str:
    limit = max_pixels if Image.MAX_IMAGE_PIXELS is None else min(max_pixels, Image.MAX_IMAGE_PIXELS)
    match = re.search(r"\((\d+) pixels\)", pillow_message)
    if match is None:
        return t("image.bomb", limit=limit / 1e6)
    declared_text, limit_text = _megapixel_pair(int(match.group(1)), limit)
    return t("image.declares", declared=declared_text, limit=limit_text)


def _too_many_bytes_message(size: int, max_bytes: int) -> str:
    shown_size, shown_limit = _format_bytes(size), _format_bytes(max_bytes)
    if shown_size == shown_limit:  # rounding hid the difference: give exact counts
        shown_size, shown_limit = t("image.bytes", count=f"{size:,}"), t("image.bytes", count=f"{max_bytes:,}")
    return t("image.too_many_bytes", size=shown_size, limit=shown_limit)


def _format_bytes(count: int) -> str:
    if count < 1024:
        return t("image.bytes", count=count)
    if count < 1024 * 1024:
        return f"{count / 1024:.1f} KiB"
    return f"{count / (1024 * 1024):.1f} MiB"


def _short(error: BaseException, limit: int = 160) -> str:
    text = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _check_limits(max_bytes: int, max_pixels: int, min_side: int, max_aspect_ratio: float) -> None:
    if max_bytes < 1 or max_pixels < 1 or min_side < 1:
        raise ValueError("max_bytes, max_pixels and min_side must be at least 1")
    if not max_aspect_ratio >= 1:
        raise ValueError("max_aspect_ratio must be at least 1")


def _check_colour(colour: Sequence[int]) -> tuple[int, int, int]:
    values = tuple(colour)
    if len(values) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in values):
        raise ValueError(f"background must be three integers from 0 to 255, got {colour!r}")
    return (int(values[0]), int(values[1]), int(values[2]))


# --------------------------------------------------------------------------------------------
# For the app and the model
# --------------------------------------------------------------------------------------------


def describe(image: Image.Image) -> str:
    """A short description such as ``"640×480 RGB"``."""
    return f"{image.width}×{image.height} {image.mode}"


def tensor_to_display(image: Image.Image, size: int) -> np.ndarray:
    """The exact pixels ``to_tensor`` feeds the network, as a uint8 array of shape (size, size, 3).

    The centre square of the image (side = its shorter side) is resized to size × size with
    Pillow's antialiased bilinear filter. That equals the ImageNet convention (resize the shorter
    side to ``size``, then centre-crop) up to sub-pixel rounding, but never builds the large
    intermediate image. Draw attention masks over this array: it is what the network saw.
    """
    size = _check_size_argument(size)
    if image.mode != "RGB":
        image = image.convert("RGB")
    width, height = image.size
    side = min(width, height)
    left = (width - side) / 2
    top = (height - side) / 2
    square = image.resize((size, size), Image.Resampling.BILINEAR, box=(left, top, left + side, top + side))
    return np.asarray(square, dtype=np.uint8).copy()


def to_tensor(image: Image.Image, size: int, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """The model input: a float32 tensor of shape (1, 3, size, size).

    The image is centre-cropped to a square and resized to size × size (see ``tensor_to_display``,
    which returns the same pixels), scaled to [0, 1], and normalised per channel:
    ``(value - mean[c]) / std[c]``. ``mean`` and ``std`` are three numbers each, as on a
    ``ModelCard``; an RGB image is expected (others are converted with ``Image.convert("RGB")``).
    """
    mean_values = _check_channel_numbers("mean", mean)
    std_values = _check_channel_numbers("std", std)
    if any(value <= 0 for value in std_values):
        raise ValueError(f"std values must be positive, got {tuple(std)}")
    pixels = tensor_to_display(image, size)
    unit = torch.from_numpy(pixels).permute(2, 0, 1).to(torch.float32) / 255.0
    mean_tensor = torch.tensor(mean_values, dtype=torch.float32).view(3, 1, 1)
    std_tensor = torch.tensor(std_values, dtype=torch.float32).view(3, 1, 1)
    return ((unit - mean_tensor) / std_tensor).unsqueeze(0).contiguous()


def _check_size_argument(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")
    return int(size)


def _check_channel_numbers(name: str, values: Sequence[float]) -> tuple[float, float, float]:
    numbers = tuple(float(value) for value in values)
    if len(numbers) != 3:
        raise ValueError(f"{name} needs one number per RGB channel (3), got {len(numbers)}")
    if not all(np.isfinite(numbers)):
        raise ValueError(f"{name} values must be finite, got {numbers}")
    return numbers
