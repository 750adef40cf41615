"""cbam.images against good, odd and hostile files, every one built here from Pillow, numpy or bytes."""

import io
import random
import struct
import time
import tracemalloc
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from cbam.images import (
    SUPPORTED_EXTENSIONS,
    ImageError,
    describe,
    load_image,
    tensor_to_display,
    to_tensor,
)

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


# ----------------------------------------------------------------------------------------------
# Building files
# ----------------------------------------------------------------------------------------------


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_declaring(width: int, height: int, image_data: bytes = b"") -> bytes:
    """A PNG whose header says width × height, 1-bit greyscale, followed by ``image_data`` as IDAT."""
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = zlib.compress(image_data or b"\x00" * 64, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", header) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def frames_file(fmt: str, colours, **options) -> bytes:
    first, *rest = [Image.new("RGB", (16, 16), colour) for colour in colours]
    return encode(first, fmt, save_all=True, append_images=rest, **options)


def colour_at(image: Image.Image, x: int, y: int) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)[y, x]


def assert_close(actual, expected, tolerance: int = 6) -> None:
    difference = np.abs(np.asarray(actual, dtype=np.int16) - np.asarray(expected, dtype=np.int16))
    assert difference.max() <= tolerance, (actual, expected)


GOOD_PNG = encode(noise(32, 24), "PNG")


def assert_rejected(source, *keywords: str, **options) -> str:
    """load_image raises ImageError with a message naming ``keywords``; a good image still loads after."""
    with pytest.raises(ImageError) as caught:
        load_image(source, **options)
    message = str(caught.value)
    assert message.strip()
    for keyword in keywords:
        assert keyword.lower() in message.lower(), message
    assert load_image(GOOD_PNG).size == (32, 24)
    return message


# ----------------------------------------------------------------------------------------------
# Files that are not images, or not whole ones
# ----------------------------------------------------------------------------------------------


def test_empty_bytes():
    assert_rejected(b"", "empty")


def test_text_named_png(tmp_path: Path):
    path = tmp_path / "notes.png"
    path.write_text("These are my lecture notes about attention.\nNothing to see here.\n")
    assert_rejected(path, "not an image", "text")


def test_html_named_png(tmp_path: Path):
    path = tmp_path / "download.png"
    path.write_text("<!DOCTYPE html>\n<html><head><title>404</title></head><body>Not found</body></html>")
    assert_rejected(path, "not an image", "HTML")


def test_svg():
    svg = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"></svg>'
    assert_rejected(svg, "SVG")


def test_zip_renamed_jpg(tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("photo.jpg", GOOD_PNG)
    path = tmp_path / "photo.jpg"
    path.write_bytes(buffer.getvalue())
    assert_rejected(path, "ZIP")


def test_random_bytes():
    assert_rejected(random.Random(0).randbytes(4096), "not an image", "PNG, JPEG")


def test_format_pillow_reads_but_the_app_does_not():
    portable_pixmap = encode(noise(16, 16), "PPM")
    assert Image.open(io.BytesIO(portable_pixmap)).format == "PPM"  # Pillow itself could read it
    assert_rejected(portable_pixmap, "not an image", "PNG, JPEG")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(fmt: str):
    whole = encode(noise(64, 64), fmt)
    assert_rejected(whole[: len(whole) // 2], "truncated", fmt)


def test_bytes_over_max_bytes():
    message = assert_rejected(GOOD_PNG, max_bytes=len(GOOD_PNG) - 1)
    size = len(GOOD_PNG)
    assert message == f"The file is {size:,} bytes; the limit is {size - 1:,} bytes."  # exact: they round alike
    assert_rejected(GOOD_PNG, "limit is 1000 bytes", max_bytes=1000)
    assert load_image(GOOD_PNG, max_bytes=len(GOOD_PNG)).size == (32, 24)


def test_path_over_max_bytes_is_refused_before_reading(tmp_path: Path):
    path = tmp_path / "big.png"
    path.write_bytes(GOOD_PNG + b"\x00" * 2_000_000)  # trailing junk after IEND: still a valid PNG
    assert_rejected(path, "1.9 MiB", "limit is 1.0 MiB", max_bytes=1024 * 1024)


def test_missing_path_and_folder(tmp_path: Path):
    assert_rejected(tmp_path / "nowhere.png", "no file")
    assert_rejected(tmp_path, "folder")


def test_wrong_source_types_are_programming_errors(tmp_path: Path):
    with pytest.raises(TypeError):
        load_image(12345)
    path = tmp_path / "good.png"
    path.write_bytes(GOOD_PNG)
    with path.open("r", encoding="latin-1") as text_file, pytest.raises(TypeError, match="binary"):
        load_image(text_file)


# ----------------------------------------------------------------------------------------------
# Decompression bombs and shapes
# ----------------------------------------------------------------------------------------------


def reject_without_decoding(data: bytes, monkeypatch) -> str:
    """Reject ``data`` and prove no pixels were decoded: no load(), no Pillow image memory, fast."""
    decode_calls = []
    original_load = ImageFile.ImageFile.load

    def spying_load(self):
        decode_calls.append(self.size)
        return original_load(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", spying_load)
    images_allocated_before = Image.core.get_stats()["new_count"]
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImageError) as caught:
            load_image(data)
        seconds = time.perf_counter() - started
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert decode_calls == []
    assert Image.core.get_stats()["new_count"] == images_allocated_before  # no pixel storage at all
    assert seconds < 1.0
    assert peak_bytes < 50 * 1024 * 1024
    assert load_image(GOOD_PNG).size == (32, 24)
    return str(caught.value)


def test_tiny_file_declaring_900_megapixels(monkeypatch):
    bomb = png_declaring(30000, 30000)
    assert len(bomb) < 200
    message = reject_without_decoding(bomb, monkeypatch)
    assert "900 megapixels" in message and "limit is 40 megapixels" in message


def test_valid_compressed_64_megapixel_png_is_refused_by_our_own_limit(monkeypatch):
    # A real, complete 8000 × 8000 1-bit PNG of ~8 KB: 64 megapixels, under Pillow's ~89 MP check.
    rows = (b"\x00" + b"\x00" * 1000) * 8000
    bomb = png_declaring(8000, 8000, image_data=rows)
    assert len(bomb) < 100_000
    message = reject_without_decoding(bomb, monkeypatch)
    assert message.startswith("The image is 8000×8000 = 64 megapixels; the limit is 40 megapixels")


def test_pillow_bomb_warning_becomes_an_error_and_leaks_no_warning():
    filters_before = list(warnings.filters)
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        # 100 megapixels: above Pillow's warning level (~89 MP), below its error level (~179 MP).
        message = assert_rejected(png_declaring(10000, 10000), "megapixels", max_pixels=200_000_000)
    assert "100 megapixels" in message
    assert not [w for w in recorded if issubclass(w.category, Image.DecompressionBombWarning)]
    assert warnings.filters == filters_before


@pytest.mark.parametrize("size", [(1, 1), (10000, 4), (7, 100)])
def test_too_small(size):
    assert_rejected(encode(Image.new("L", size), "PNG"), "too small", f"{size[0]}×{size[1]}")


def test_aspect_ratio_limit():
    assert load_image(encode(Image.new("RGB", (400, 20)), "PNG")).size == (400, 20)  # exactly 20 : 1
    assert_rejected(encode(Image.new("RGB", (20, 500)), "PNG"), "20×500", "centre")


# ----------------------------------------------------------------------------------------------
# Sources
# ----------------------------------------------------------------------------------------------


class FakeUploadedFile:
    """Streamlit's UploadedFile as far as load_image cares: getvalue() and a read() already used up."""

    def __init__(self, data: bytes):
        self._data = data

    def getvalue(self) -> bytes:
        return self._data

    def read(self, *_):
        return b""


def test_sources_bytes_path_and_file_objects(tmp_path: Path):
    path = tmp_path / "photo.png"
    path.write_bytes(GOOD_PNG)
    expected = np.asarray(Image.open(io.BytesIO(GOOD_PNG)).convert("RGB"))
    with path.open("rb") as opened_file:
        sources = [GOOD_PNG, bytearray(GOOD_PNG), str(path), path, io.BytesIO(GOOD_PNG), opened_file]
        for source in sources + [FakeUploadedFile(GOOD_PNG)]:
            image = load_image(source)
            assert image.mode == "RGB"
            np.testing.assert_array_equal(np.asarray(image), expected)


def test_result_is_decoded_and_independent_of_the_file(tmp_path: Path):
    path = tmp_path / "photo.png"
    path.write_bytes(GOOD_PNG)
    image = load_image(path)
    path.unlink()
    assert describe(image) == "32×24 RGB"
    assert np.asarray(image).shape == (24, 32, 3)


# ----------------------------------------------------------------------------------------------
# Formats and colour modes
# ----------------------------------------------------------------------------------------------


def test_bmp_and_jpeg_and_webp():
    picture = noise(40, 30)
    assert np.array_equal(np.asarray(load_image(encode(picture, "BMP"))), np.asarray(picture))
    assert load_image(encode(picture, "JPEG")).size == (40, 30)
    assert np.array_equal(np.asarray(load_image(encode(picture, "WEBP", lossless=True))), np.asarray(picture))


@pytest.mark.parametrize("mode, value, expected", [("1", 1, WHITE), ("L", 77, (77, 77, 77))])
def test_one_bit_and_grey(mode, value, expected):
    image = load_image(encode(Image.new(mode, (16, 16), value), "PNG"))
    assert image.mode == "RGB"
    assert tuple(colour_at(image, 3, 3)) == expected


def test_sixteen_bit_gradient_is_stretched_to_0_255():
    row = 1000 + 100 * np.arange(256, dtype=np.uint16)  # 1000 .. 26500
    source = Image.fromarray(np.tile(row, (16, 1)))
    assert source.mode == "I;16"
    image = load_image(encode(source, "PNG"))
    grey = np.asarray(image)[3, :, 0]
    np.testing.assert_array_equal(grey, np.arange(256))
    assert np.all(np.asarray(image)[..., 1] == np.asarray(image)[..., 0])


def test_sixteen_bit_constant_image_is_mid_grey():
    image = load_image(encode(Image.fromarray(np.full((8, 8), 4242, dtype=np.uint16)), "PNG"))
    assert np.all(np.asarray(image) == 128)


def test_big_endian_sixteen_bit_tiff():
    values = np.tile(np.array([0, 32768, 65535], dtype=">u2"), (8, 3))  # 9 wide, 8 high
    source = Image.frombytes("I;16B", (9, 8), values.tobytes())
    image = load_image(encode(source, "TIFF"))
    np.testing.assert_array_equal(np.asarray(image)[0, :3, 0], [0, 128, 255])


def test_thirty_two_bit_integer_tiff_with_negative_values():
    values = np.tile(np.array([-100_000, 0, 100_000], dtype=np.int32), (8, 3))
    source = Image.fromarray(values)
    assert source.mode == "I"
    image = load_image(encode(source, "TIFF"))
    np.testing.assert_array_equal(np.asarray(image)[0, :3, 0], [0, 128, 255])


def test_float_tiff_scaled_and_non_finite_values_handled():
    values = np.tile(np.linspace(-1.0, 3.0, 16, dtype=np.float32), (8, 1))
    values[0, 5], values[0, 6], values[0, 7] = np.nan, np.inf, -np.inf
    source = Image.fromarray(values)
    assert source.mode == "F"
    grey = np.asarray(load_image(encode(source, "TIFF")))[..., 0]
    np.testing.assert_array_equal(grey[1, [0, 15]], [0, 255])  # range from the finite values
    np.testing.assert_array_equal(grey[0, 5:8], [0, 255, 0])  # NaN black, +inf white, -inf black
    assert np.all(np.diff(grey[1].astype(int)) >= 0)


def test_float_tiff_with_nothing_finite():
    nothing = Image.fromarray(np.full((8, 8), np.nan, dtype=np.float32))
    assert_rejected(encode(nothing, "TIFF"), "NaN")


def test_cmyk_jpeg():
    cmyk_red = Image.new("CMYK", (32, 32), (0, 255, 255, 0))
    image = load_image(encode(cmyk_red, "JPEG", quality=95))
    assert image.mode == "RGB"
    assert_close(colour_at(image, 16, 16), RED, tolerance=10)


def test_palette_transparency_becomes_background():
    palette_image = Image.new("P", (16, 16), 0)
    palette_image.putpalette([0, 0, 0, 255, 0, 0])
    palette_image.paste(1, (0, 0, 8, 16))  # left half red, right half palette index 0 = transparent
    image = load_image(encode(palette_image, "PNG", transparency=0), background=GREEN)
    assert tuple(colour_at(image, 2, 8)) == RED
    assert tuple(colour_at(image, 12, 8)) == GREEN


def test_rgb_png_with_a_transparent_colour_key():
    keyed = Image.new("RGB", (16, 16), BLUE)
    keyed.paste(RED, (0, 0, 8, 16))
    image = load_image(encode(keyed, "PNG", transparency=BLUE), background=GREEN)
    assert tuple(colour_at(image, 2, 8)) == RED
    assert tuple(colour_at(image, 12, 8)) == GREEN


def test_grey_with_alpha_is_composited():
    grey_alpha = Image.new("LA", (16, 16), (0, 0))  # black, fully transparent
    grey_alpha.paste((0, 255), (0, 0, 8, 16))  # left half black, opaque
    image = load_image(encode(grey_alpha, "PNG"))
    assert tuple(colour_at(image, 2, 8)) == (0, 0, 0)
    assert tuple(colour_at(image, 12, 8)) == WHITE


def test_rgba_transparency_and_half_transparency():
    rgba = Image.new("RGBA", (16, 16), (255, 0, 0, 0))
    rgba.paste((0, 0, 255, 128), (0, 0, 8, 16))
    image = load_image(encode(rgba, "PNG"), background=(0, 0, 0))
    assert tuple(colour_at(image, 12, 8)) == (0, 0, 0)
    assert_close(colour_at(image, 2, 8), (0, 0, 128), tolerance=1)


@pytest.mark.parametrize(
    "fmt, options",
    [("GIF", {"duration": 100, "loop": 0}), ("WEBP", {"lossless": True, "duration": 100}), ("PNG", {"duration": 100})],
    ids=["animated-gif", "animated-webp", "apng"],
)
def test_animation_gives_its_first_frame(fmt, options):
    data = frames_file(fmt, [RED, BLUE, GREEN], **options)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3
    assert_close(colour_at(load_image(data), 8, 8), RED, tolerance=2)


def test_multi_page_tiff_gives_its_first_page():
    data = frames_file("TIFF", [GREEN, BLUE])
    assert Image.open(io.BytesIO(data)).n_frames == 2
    assert tuple(colour_at(load_image(data), 8, 8)) == GREEN


def test_exif_orientation_is_applied():
    stored = Image.new("RGB", (64, 32), (128, 128, 128))  # wide as stored
    stored.paste(RED, (0, 0, 16, 16))  # a marker in the stored top-left corner
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: turn 90° clockwise to display
    image = load_image(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    assert image.size == (32, 64)  # tall once upright
    assert_close(colour_at(image, 24, 8), RED, tolerance=12)  # the stored top-left is now top-right
    assert_close(colour_at(image, 8, 8), (128, 128, 128), tolerance=12)
    assert_close(colour_at(image, 24, 56), (128, 128, 128), tolerance=12)


def test_supported_extensions_and_describe():
    assert SUPPORTED_EXTENSIONS == ("png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff")
    assert describe(Image.new("RGB", (640, 480))) == "640×480 RGB"


# ----------------------------------------------------------------------------------------------
# to_tensor and tensor_to_display
# ----------------------------------------------------------------------------------------------

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def test_to_tensor_shape_and_normalisation():
    uniform = Image.new("RGB", (50, 30), (255, 0, 51))
    tensor = to_tensor(uniform, 24, (0.5, 0.5, 0.5), (0.25, 0.5, 0.1))
    assert tensor.shape == (1, 3, 24, 24) and tensor.dtype == torch.float32
    expected = torch.tensor([(1.0 - 0.5) / 0.25, (0.0 - 0.5) / 0.5, (0.2 - 0.5) / 0.1])
    torch.testing.assert_close(tensor[0].mean(dim=(1, 2)), expected)
    torch.testing.assert_close(tensor[0].amax(dim=(1, 2)), tensor[0].amin(dim=(1, 2)))


@pytest.mark.parametrize("size", [(90, 60), (60, 90), (8, 8), (500, 400)])
def test_tensor_comes_from_exactly_the_displayed_pixels(size):
    picture = noise(*size, seed=3)
    shown = tensor_to_display(picture, 32)
    assert shown.shape == (32, 32, 3) and shown.dtype == np.uint8
    tensor = to_tensor(picture, 32, MEAN, STD)[0]
    unnormalised = tensor * torch.tensor(STD).view(3, 1, 1) + torch.tensor(MEAN).view(3, 1, 1)
    recovered = (unnormalised * 255).permute(1, 2, 0).numpy()
    np.testing.assert_allclose(recovered, shown.astype(np.float32), atol=1e-3)


@pytest.mark.parametrize("wide", [True, False])
def test_display_is_the_centre_square(wide: bool):
    thirds = Image.new("RGB", (300, 100), RED)
    thirds.paste(GREEN, (100, 0, 200, 100))
    thirds.paste(BLUE, (200, 0, 300, 100))
    if not wide:
        thirds = thirds.transpose(Image.Transpose.TRANSPOSE)  # 100 × 300, red on top
    shown = tensor_to_display(thirds, 50).astype(np.int16)
    assert np.all(shown[1:-1, 1:-1] == GREEN)  # edge rows/columns may take a little from the neighbours
    assert np.all(np.abs(shown - GREEN).max(axis=-1) <= 80)


def test_to_tensor_on_a_loaded_upright_photo():
    stored = Image.new("RGB", (64, 32), (128, 128, 128))
    exif = Image.Exif()
    exif[0x0112] = 6
    image = load_image(encode(stored, "JPEG", exif=exif.tobytes()))
    assert to_tensor(image, 16, MEAN, STD).shape == (1, 3, 16, 16)


def test_to_tensor_rejects_bad_arguments():
    picture = noise(16, 16)
    with pytest.raises(ValueError, match="mean"):
        to_tensor(picture, 8, (0.5, 0.5), STD)
    with pytest.raises(ValueError, match="std"):
        to_tensor(picture, 8, MEAN, (0.2, 0.2, 0.2, 0.2))
    with pytest.raises(ValueError, match="positive"):
        to_tensor(picture, 8, MEAN, (0.2, 0.0, 0.2))
    with pytest.raises(ValueError, match="size"):
        to_tensor(picture, 0, MEAN, STD)
    with pytest.raises(ValueError, match="size"):
        tensor_to_display(picture, 2.5)


def test_load_image_rejects_bad_arguments():
    with pytest.raises(ValueError, match="background"):
        load_image(GOOD_PNG, background=(0, 0, 300))
    with pytest.raises(ValueError, match="max_bytes"):
        load_image(GOOD_PNG, max_bytes=0)
