"""ImageNet weights for CBAM-ResNet-50: found on disk or downloaded safely, never required.

Two public sets of ImageNet weights exist for CBAM-ResNet-50 (``cbam.models.cbam_resnet50``):

* osmr's ``cbam_resnet50`` in the pytorchcv model store (``PYTORCHCV_CBAM_RESNET50``): a zip on a
  GitHub release whose one ``.pth`` file has a published SHA-1. CBAM Lab downloads it by itself.
* the authors' checkpoint, linked from the README of github.com/Jongchan/attention-module
  (``AUTHORS_CHECKPOINT_URL``): a training checkpoint ``{"state_dict": {"module.conv1.weight": ...},
  "epoch": ..., "best_prec1": ...}`` on Dropbox, with no published checksum. A person downloads it
  by hand and hands it over like any local file.

``imagenet_weights`` looks for the weights in this order and takes the first it finds:

1. its ``local_path`` argument;
2. the file named by the environment variable ``CBAM_LAB_IMAGENET_WEIGHTS``;
3. the cached download, ``cache_dir() / PYTORCHCV_CBAM_RESNET50.file_name``, trusted only if its
   SHA-1 is the published one (a corrupt cache file is deleted);
4. a new download, when ``allow_download`` is true.

A local file (1, 2, or an upload: ``from_uploaded_bytes``) may be pytorchcv's ``.pth``, the zip that
the model store serves, the authors' checkpoint, a timm ResNet-50 with CBAM, or a state dict in CBAM Lab's layout; the
layout is recognised from the keys. Everything is read by ``cbam.checkpoints.load``
(``weights_only=True``, size limit) and converted by ``cbam.compat.convert_state_dict``.

    >>> from cbam import imagenet
    >>> model = imagenet.load_imagenet_model(progress=imagenet.tqdm_progress())  # doctest: +SKIP
    >>> imagenet.top_k(model(image_tensor), k=3)                                # doctest: +SKIP
    [('tabby', 0.61), ('tiger cat', 0.22), ('Egyptian cat', 0.09)]

Errors, by what went wrong:

* ``WeightsError`` (a ``RuntimeError``): no usable file could be had: the download failed, was
  cut short, was too large or had the wrong checksum; a configured path does not exist.
* ``OfflineError`` (a ``WeightsError``): the model store could not be reached, or downloading is
  not allowed and no file is present. Its message tells a person how to get the file by hand.
* ``cbam.checkpoints.CheckpointError`` (a ``ValueError``): a file was found but is not usable
  CBAM-ResNet-50 weights (not a checkpoint, would run code, other keys, wrong shapes).

Downloads use only ``urllib`` (system proxies apply, as in any ``urllib`` program). Nothing here
touches the network unless ``imagenet_weights`` or ``load_imagenet_model`` needs to download, or
``download`` / ``download_weights`` is called.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch
import torch.hub
from torch import nn
from tqdm.auto import tqdm

from . import checkpoints, models
from .checkpoints import CheckpointError
from .compat import convert_state_dict
from .i18n import t

__all__ = [
    "WeightsSource",
    "PYTORCHCV_CBAM_RESNET50",
    "PYTORCHCV_RELEASE",
    "PYTORCHCV_ERROR_FIELD",
    "PYTORCHCV_SHA1",
    "PYTORCHCV_FILE_NAME",
    "PYTORCHCV_URL",
    "PYTORCHCV_PARAMETERS",
    "AUTHORS_CHECKPOINT_URL",
    "AUTHORS_FILE_NAME",
    "ENV_VAR",
    "MAX_DOWNLOAD_BYTES",
    "DEFAULT_TIMEOUT",
    "INPUT_SIZE",
    "MEAN",
    "STD",
    "IMAGENET_CLASSES",
    "WeightsError",
    "OfflineError",
    "Progress",
    "cache_dir",
    "cached_path",
    "sha1_of",
    "download",
    "download_weights",
    "tqdm_progress",
    "detect_format",
    "weights_file",
    "imagenet_weights",
    "from_uploaded_bytes",
    "build_imagenet_model",
    "load_imagenet_model",
    "is_available_offline",
    "top_k",
]

Progress = Callable[[int, "int | None"], None]
"""``progress(bytes_done, total_bytes)``, called as a download goes; ``total_bytes`` is None when
the server does not say how large the file is."""

# --------------------------------------------------------------------------------------------
# Where the weights come from
# --------------------------------------------------------------------------------------------

ENV_VAR = "CBAM_LAB_IMAGENET_WEIGHTS"
"""The environment variable that names a local weights file (pytorchcv's or the authors')."""

MAX_DOWNLOAD_BYTES = 256 * 1024 * 1024
"""256 MiB: the largest download (and unpacked file) accepted. pytorchcv's file holds 28,089,624
float32 parameters plus BatchNorm statistics, about 113 MB."""

DEFAULT_TIMEOUT = 30.0
"""Seconds that a connection or a single read may wait before the download gives up."""

CHUNK_BYTES = 1024 * 1024
"""Downloads are read and reported in pieces of this size."""

# The facts of pytorchcv's own model store, as the installed package (pytorchcv 0.0.74) lists them:
# pytorchcv/models/common/model_metainfos.csv has the row
#   "cbam_resnet50",28089624,0505,"d8cf8488efb97afecd6b3287a3ca9fa093fc3127","v0.0.537",...
# (model name, parameter count, error value, SHA-1, release), and get_model_file() in
# pytorchcv/models/common/model_store.py names the file "{name}-{error}-{sha1[:8]}.pth", downloads
# "https://github.com/osmr/imgclsmob/releases/download/{release}/{file name}.zip", unzips it and
# checks the SHA-1 of the unzipped .pth file (the zip itself has no published checksum).
PYTORCHCV_RELEASE = "v0.0.537"
PYTORCHCV_ERROR_FIELD = "0505"
PYTORCHCV_SHA1 = "d8cf8488efb97afecd6b3287a3ca9fa093fc3127"
PYTORCHCV_PARAMETERS = 28_089_624
PYTORCHCV_FILE_NAME = f"cbam_resnet50-{PYTORCHCV_ERROR_FIELD}-{PYTORCHCV_SHA1[:8]}.pth"
PYTORCHCV_URL = f"https://github.com/osmr/imgclsmob/releases/download/{PYTORCHCV_RELEASE}/{PYTORCHCV_FILE_NAME}.zip"

# The authors' checkpoint, from the README of github.com/Jongchan/attention-module ("ResNet50+CBAM
# (trained for 100 epochs) checkpoint", ACC@1 = 77.622, ACC@5 = 93.948). No checksum is published
# and Dropbox serves an HTML page unless asked for the raw file, so CBAM Lab never downloads it
# itself: a person does, and passes the file as a local path or an upload.
AUTHORS_CHECKPOINT_URL = "https://www.dropbox.com/s/bt6zty02h9ibufi/RESNET50_CBAM_new_name_wrap.pth?dl=0"
AUTHORS_FILE_NAME = "RESNET50_CBAM_new_name_wrap.pth"

# The input both sets of weights expect: 224 × 224 RGB, scaled to [0, 1], normalised with
# ImageNet's mean and standard deviation (pytorchcv evaluates at 224 px with a 0.875 centre crop).
INPUT_SIZE = 224
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class WeightsSource:
    """A weights file on the internet and the facts to check it by.

    Attributes:
        description: what the file is, for messages.
        url: where to download it from.
        file_name: the weights file's name: in the cache and, for an archive, inside the archive.
        sha1: SHA-1 (hex) of the weights file itself (after unzipping, for an archive).
        archive: "zip" when ``url`` serves a zip that holds ``file_name``; None for the bare file.
        max_bytes: the largest download and the largest unpacked file accepted.
    """

    description: str
    url: str
    file_name: str
    sha1: str
    archive: str | None = None
    max_bytes: int = MAX_DOWNLOAD_BYTES


PYTORCHCV_CBAM_RESNET50 = WeightsSource(
    description=f"pytorchcv's cbam_resnet50 (osmr/imgclsmob release {PYTORCHCV_RELEASE})",
    url=PYTORCHCV_URL,
    file_name=PYTORCHCV_FILE_NAME,
    sha1=PYTORCHCV_SHA1,
    archive="zip",
)


class WeightsError(RuntimeError):
    """The ImageNet weights could not be had; the message says why, for a person."""


class OfflineError(WeightsError):
    """The model store could not be reached, or downloading is off and no weights file is present."""


def cache_dir() -> Path:
    """Where downloaded weights are kept: ``torch.hub.get_dir() / "checkpoints"``.

    As for torchvision's weights: ``$TORCH_HOME/hub/checkpoints``, ``TORCH_HOME`` defaulting to
    ``~/.cache/torch`` (or a folder set with ``torch.hub.set_dir``).
    """
    return Path(torch.hub.get_dir()) / "checkpoints"


def cached_path(source: WeightsSource = PYTORCHCV_CBAM_RESNET50) -> Path:
    """The path that ``source``'s weights file has in the cache (whether or not it is there)."""
    return cache_dir() / source.file_name


def sha1_of(path: str | os.PathLike) -> str:
    """The SHA-1 of a file's content, in hex."""
    digest = hashlib.sha1()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Downloading
# --------------------------------------------------------------------------------------------

_ALLOWED_SCHEMES = ("https", "http", "file")

# Errors that can come out of reading a response or an archive member once it has started.
_READ_ERRORS = (OSError, EOFError, http.client.HTTPException, zipfile.BadZipFile)


def _mib(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"


def _open_url(url: str, timeout: float):
    """Open ``url`` for reading with urllib. (The one place that connects; tests replace it.)"""
    request = urllib.request.Request(url, headers={"User-Agent": "cbam-lab"})
    return urllib.request.urlopen(request, timeout=timeout)


def _content_length(response) -> int | None:
    value = response.headers.get("Content-Length")
    try:
        length = int(value)
    except (TypeError, ValueError):
        return None
    return length if length >= 0 else None


def _reason(error: BaseException) -> str:
    """A short description of a network error: the inner reason of a URLError if it has one."""
    inner = getattr(error, "reason", None)
    if isinstance(inner, str) and inner:
        return inner
    if isinstance(inner, BaseException):
        error = inner
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise WeightsError(t("dl.folder", folder=folder, error=error)) from None


def _save_stream(
    read: Callable[[int], bytes],
    dest: Path,
    *,
    what: str,
    total: int | None,
    expected_sha1: str | None,
    max_bytes: int,
    progress: Progress | None,
) -> Path:
    """Write what ``read`` yields to ``dest``, all or nothing.

    The bytes go to a temporary file beside ``dest`` (same folder, so that the final rename is
    atomic); only when every byte has arrived, the count matches ``total`` (when known) and the
    SHA-1 matches ``expected_sha1`` (when given) is it renamed to ``dest``. On any failure, or an
    exception from ``progress``, the temporary file is deleted and ``dest`` is left as it was.
    """
    try:
        handle = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part", delete=False)
    except OSError as error:
        raise WeightsError(t("dl.cannot_write", folder=dest.parent, error=error)) from None
    temporary = Path(handle.name)
    try:
        digest = hashlib.sha1()
        done = 0
        with handle:
            if progress is not None:
                progress(0, total)
            while True:
                try:
                    chunk = read(CHUNK_BYTES)
                except _READ_ERRORS as error:
                    raise WeightsError(t("dl.read_failed", what=what, done=_mib(done), reason=_reason(error))) from None
                if not chunk:
                    break
                done += len(chunk)
                if done > max_bytes:
                    raise WeightsError(t("dl.larger", what=what, limit=_mib(max_bytes)))
                digest.update(chunk)
                handle.write(chunk)
                if progress is not None:
                    progress(done, total)
        if total is not None and done != total:
            raise WeightsError(t("dl.cut_short", what=what, done=done, total=total))
        if expected_sha1 is not None and digest.hexdigest() != expected_sha1.lower():
            raise WeightsError(t("dl.checksum", what=what, got=digest.hexdigest(), expected=expected_sha1.lower()))
        os.replace(temporary, dest)
    except OSError as error:  # writing failed: disk full, permissions (reading errors are WeightsErrors)
        temporary.unlink(missing_ok=True)
        raise WeightsError(t("dl.save_failed", what=what, dest=dest, error=error)) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return dest


def download(
    url: str,
    dest: str | os.PathLike,
    *,
    expected_sha1: str | None,
    progress: Progress | None = None,
    max_bytes: int = MAX_DOWNLOAD_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download ``url`` to ``dest``, all or nothing, and return ``dest``.

    The file streams to a temporary file in ``dest``'s folder and is renamed to ``dest`` (an atomic
    replace) only once it is complete and its SHA-1 is ``expected_sha1``: a failed or interrupted
    download never leaves a file at ``dest`` that a later call could trust.

    Args:
        url: an https, http or file URL.
        dest: the file to create (its folder is created if needed; an existing file is replaced).
        expected_sha1: the SHA-1 the content must have, in hex; None only where no checksum is
            published and the caller verifies the content by other means (as for a zip whose
            unpacked file has a known checksum).
        progress: called as ``progress(bytes_done, total_bytes or None)``, first with 0, then after
            every piece (see ``tqdm_progress``).
        max_bytes: the largest accepted size; a larger ``Content-Length`` is refused before any
            byte is read, and the download stops as soon as it passes the limit.
        timeout: seconds a connection or a single read may wait.

    Raises:
        OfflineError: the server could not be reached (no network, DNS failure, connection refused
            or timed out).
        WeightsError: the server answered with an HTTP error, the file is too large, the download
            was cut short or failed midway, or the checksum does not match.
    """
    dest = Path(dest)
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in _ALLOWED_SCHEMES:
        raise ValueError(f"cannot download {url!r}: only {', '.join(_ALLOWED_SCHEMES)} URLs are supported")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    _make_folder(dest.parent)

    try:
        response = _open_url(url, timeout)
    except urllib.error.HTTPError as error:
        raise WeightsError(t("dl.refused", url=url, code=error.code, reason=error.reason)) from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        host = urllib.parse.urlsplit(url).hostname or url
        raise OfflineError(t("dl.connect", host=host, reason=_reason(error))) from None

    with response:
        total = _content_length(response)
        if total is not None and total > max_bytes:
            raise WeightsError(t("dl.over_limit", url=url, size=_mib(total), limit=_mib(max_bytes)))
        return _save_stream(
            response.read,
            dest,
            what=t("dl.the_download", url=url),
            total=total,
            expected_sha1=expected_sha1,
            max_bytes=max_bytes,
            progress=progress,
        )


def _unzip_member(archive: Path, member: str, dest: Path, *, expected_sha1: str, max_bytes: int) -> Path:
    """Extract the one file ``member`` of a zip to ``dest``, all or nothing, checking its SHA-1.

    Only that member is read, never written under a name taken from the archive.
    """
    try:
        with zipfile.ZipFile(archive) as zipped:
            try:
                info = zipped.getinfo(member)
            except KeyError:
                names = ", ".join(zipped.namelist()[:5]) or t("dl.nothing")
                raise WeightsError(t("dl.no_member", member=member, names=names)) from None
            if info.file_size > max_bytes:
                raise WeightsError(t("dl.member_too_large", member=member, size=_mib(info.file_size),
                                     limit=_mib(max_bytes)))
            with zipped.open(info) as packed:
                return _save_stream(
                    packed.read,
                    dest,
                    what=t("dl.unzipped", member=member),
                    total=info.file_size,
                    expected_sha1=expected_sha1,
                    max_bytes=max_bytes,
                    progress=None,
                )
    except zipfile.BadZipFile as error:
        raise WeightsError(t("dl.bad_zip", error=error)) from None


def _offline_message(source: WeightsSource, reason: object, *, tried: bool = True) -> str:
    """The explanation of an ``OfflineError``: what happened, and how to get the weights by hand."""
    what = t("dl.unreachable", reason=reason) if tried else t("dl.no_file_and", reason=reason)
    archive = ".zip" if source.archive == "zip" else ""
    unzip = t("dl.unzip_it") if source.archive == "zip" else ""
    return t("dl.offline", what=what, file=source.file_name, archive=archive, url=source.url, unzip=unzip,
             env=ENV_VAR, authors=AUTHORS_FILE_NAME)


def download_weights(
    source: WeightsSource = PYTORCHCV_CBAM_RESNET50,
    *,
    progress: Progress | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """Download ``source``'s weights file into the cache, verify it, and return its path.

    For a zip source the archive goes to a temporary folder inside the cache folder, the weights
    file is unzipped from it (checked against ``source.sha1``) and the archive is deleted.

    Raises:
        OfflineError: the server could not be reached; the message explains how to get the file by hand.
        WeightsError: any other failure (see ``download``); nothing is left in the cache.
    """
    dest = cached_path(source)
    _make_folder(dest.parent)
    try:
        if source.archive is None:
            download(
                source.url,
                dest,
                expected_sha1=source.sha1,
                progress=progress,
                max_bytes=source.max_bytes,
                timeout=timeout,
            )
        elif source.archive == "zip":
            with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".cbam-lab-download-") as work:
                archive = download(
                    source.url,
                    Path(work) / f"{source.file_name}.zip",
                    expected_sha1=None,  # no published checksum for the zip; its content is checked below
                    progress=progress,
                    max_bytes=source.max_bytes,
                    timeout=timeout,
                )
                _unzip_member(archive, source.file_name, dest, expected_sha1=source.sha1, max_bytes=source.max_bytes)
        else:
            raise ValueError(f"unknown archive kind {source.archive!r}; expected 'zip' or None")
    except OfflineError as error:
        raise OfflineError(_offline_message(source, error)) from None
    _remember_verified(dest)
    return dest


class _TqdmProgress:
    """A ``Progress`` callback that draws a tqdm bar in bytes (see ``tqdm_progress``)."""

    def __init__(self, description: str, tqdm_options: dict) -> None:
        self.description = description
        self.tqdm_options = tqdm_options
        self._bar = None

    def __call__(self, done: int, total: int | None) -> None:
        if self._bar is None or done < self._bar.n:  # the first call, or a new download
            self.close()
            self._bar = tqdm(
                total=total, desc=self.description, unit="B", unit_scale=True, unit_divisor=1024, **self.tqdm_options
            )
        self._bar.update(done - self._bar.n)
        if total is not None and done >= total:
            self.close()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> _TqdmProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def tqdm_progress(description: str = "ImageNet weights", **tqdm_options: Any) -> _TqdmProgress:
    """A progress callback for the command line: a tqdm bar in bytes.

    The bar appears on the first call and closes when the download is complete; ``close()`` (or a
    ``with`` block) closes it early, e.g. after a failure. ``tqdm_options`` go to ``tqdm`` (``file``,
    ``disable``, ``leave``...).
    """
    return _TqdmProgress(description, tqdm_options)


# --------------------------------------------------------------------------------------------
# The cache
# --------------------------------------------------------------------------------------------

# Cached files whose SHA-1 was checked in this process, as (path, size, modification time): the
# 113 MB are hashed once, not at every call. A rewritten file has another size or time.
_verified_files: set[tuple[str, int, int]] = set()


def _file_identity(path: Path) -> tuple[str, int, int] | None:
    try:
        stat = path.stat()
    except OSError:
        return None
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _remember_verified(path: Path) -> None:
    identity = _file_identity(path)
    if identity is not None:
        _verified_files.add(identity)


def _cache_is_valid(source: WeightsSource) -> bool:
    """Whether the cached file exists and has the published SHA-1 (hashed once per process)."""
    path = cached_path(source)
    identity = _file_identity(path)
    if identity is None or not path.is_file():
        return False
    if identity in _verified_files:
        return True
    if sha1_of(path) != source.sha1:
        return False
    _verified_files.add(identity)
    return True


# --------------------------------------------------------------------------------------------
# Finding the file
# --------------------------------------------------------------------------------------------


def _configured_path(local_path: str | os.PathLike | None) -> Path | None:
    """The local file to use: ``local_path``, else the environment variable, else None.

    Raises:
        WeightsError: the path given does not name a file.
    """
    if local_path is not None:
        path = Path(local_path).expanduser()
        if not path.is_file():
            raise WeightsError(t("dl.no_weights_at", path=path))
        return path
    value = os.environ.get(ENV_VAR, "").strip()
    if value:
        path = Path(value).expanduser()
        if not path.is_file():
            raise WeightsError(t("dl.env_missing", env=ENV_VAR, value=repr(value), file=PYTORCHCV_FILE_NAME,
                                 authors=AUTHORS_FILE_NAME))
        return path
    return None


def weights_file(
    *,
    allow_download: bool = True,
    local_path: str | os.PathLike | None = None,
    progress: Progress | None = None,
    source: WeightsSource = PYTORCHCV_CBAM_RESNET50,
    timeout: float = DEFAULT_TIMEOUT,
) -> Path:
    """The path of the weights file that ``imagenet_weights`` would read (see the module docstring).

    Raises:
        WeightsError: the path given (argument or environment variable) does not exist, or the
            download failed.
        OfflineError: no file is present and downloading is off or impossible.
    """
    configured = _configured_path(local_path)
    if configured is not None:
        return configured

    cached = cached_path(source)
    if _cache_is_valid(source):
        return cached
    note = ""
    if cached.is_file():  # present but corrupt: never trusted, never kept
        cached.unlink(missing_ok=True)
        note = t("dl.corrupt_cache", name=cached.name)

    if not allow_download:
        raise OfflineError(_offline_message(source, t("dl.turned_off", note=note), tried=False))
    return download_weights(source, progress=progress, timeout=timeout)


# --------------------------------------------------------------------------------------------
# Reading and converting
# --------------------------------------------------------------------------------------------

_TORCH_ARCHIVE_MARKERS = ("data.pkl", "version", ".data/version")
_WEIGHTS_SUFFIXES = (".pth", ".pt", ".pth.tar", ".tar", ".ckpt")


def _inner_weights_bytes(source: Path | bytes, max_bytes: int) -> bytes | None:
    """The weights file inside a zip like the one pytorchcv's store serves, else None.

    A file saved by ``torch.save`` is itself a zip, so only a zip that is *not* a PyTorch archive
    (no ``data.pkl``) and holds exactly one weights file counts.
    """
    readable = io.BytesIO(source) if isinstance(source, bytes) else source
    if not zipfile.is_zipfile(readable):
        return None
    try:
        with zipfile.ZipFile(readable) as zipped:
            infos = [info for info in zipped.infolist() if not info.is_dir()]
            if any(info.filename.rsplit("/", 1)[-1] in _TORCH_ARCHIVE_MARKERS for info in infos):
                return None  # a torch.save file
            if len(infos) != 1 or not infos[0].filename.lower().endswith(_WEIGHTS_SUFFIXES):
                return None
            if infos[0].file_size > max_bytes:
                raise CheckpointError(t("dl.zip_member_too_large", name=infos[0].filename,
                                         size=_mib(infos[0].file_size), limit=_mib(max_bytes)))
            with zipped.open(infos[0]) as member:
                data = member.read(max_bytes + 1)
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise CheckpointError(t("dl.zip_unreadable", error=error)) from None
    if len(data) > max_bytes:
        raise CheckpointError(t("dl.zip_over_limit", limit=_mib(max_bytes)))
    return data


def detect_format(state_dict: Mapping[str, torch.Tensor]) -> str:
    """The layout of a CBAM-ResNet state dict, from its keys.

    Returns:
        "pytorchcv" (``features.stage1.unit1...``, ``output.weight``), "official" (the authors':
        ``[module.]layer1.0.cbam.ChannelGate...``), "timm" (a timm ResNet with ``attn_layer="cbam"``:
        ``layer1.0.se.channel.fc1...``) or "cbam_lab" (already ours: ``layer1.0.cbam.channel_attention...``).

    Raises:
        CheckpointError: none of them; the message says what the keys look like.
    """
    keys = [key.removeprefix("module.") for key in state_dict]
    if any(key.startswith(("features.", "output.")) for key in keys):
        return "pytorchcv"
    if any(".cbam.ChannelGate." in key or ".cbam.SpatialGate." in key for key in keys):
        return "official"
    if any(".cbam.channel_attention." in key or ".cbam.spatial_attention." in key for key in keys):
        return "cbam_lab"
    if any(".se.channel." in key or ".se.spatial." in key for key in keys):
        return "timm"
    shown = ", ".join(list(state_dict)[:3])
    if any(key.startswith("layer1.") for key in keys):
        raise CheckpointError(t("dl.plain_resnet", keys=shown))
    raise CheckpointError(t("dl.not_cbam_resnet", keys=shown))


def _to_our_layout(loaded: Mapping, name: str) -> dict[str, torch.Tensor]:
    """What ``checkpoints.load`` returned, in the keys of ``cbam.models.cbam_resnet50``."""
    state_dict = checkpoints.extract_state_dict(loaded)
    layout = detect_format(state_dict)
    if layout == "cbam_lab":
        return {key.removeprefix("module."): tensor for key, tensor in state_dict.items()}
    try:
        return convert_state_dict(state_dict, layout)
    except ValueError as error:
        raise CheckpointError(t("dl.unusable", name=name, error=error)) from None


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    max_bytes = checkpoints.DEFAULT_MAX_BYTES
    inner = _inner_weights_bytes(path, max_bytes)
    loaded = checkpoints.load(path if inner is None else inner, max_bytes=max_bytes)
    return _to_our_layout(loaded, str(path))


def imagenet_weights(
    *,
    allow_download: bool = True,
    local_path: str | os.PathLike | None = None,
    progress: Progress | None = None,
    source: WeightsSource = PYTORCHCV_CBAM_RESNET50,
    timeout: float = DEFAULT_TIMEOUT,
) -> dict[str, torch.Tensor]:
    """The ImageNet state dict for ``cbam.models.cbam_resnet50``, from disk or a download.

    The file is the first of: ``local_path``; the file named by ``CBAM_LAB_IMAGENET_WEIGHTS``; the
    verified cached download; a new download (only if ``allow_download``). A local file may be in
    pytorchcv's layout (``.pth`` or its ``.pth.zip``), the authors' (``.pth`` / ``.pth.tar``
    checkpoint) or ours; the layout is recognised from its keys.

    Args:
        allow_download: False never touches the network.
        local_path: a weights file to use instead of the cache.
        progress: download progress callback (see ``download``, ``tqdm_progress``).
        source: what to download; the default is pytorchcv's ``cbam_resnet50``.
        timeout: seconds a connection or a read may wait.

    Returns:
        A state dict with the keys of ``cbam_resnet50()`` (not yet checked against the network:
        ``build_imagenet_model`` does that, naming any missing, extra or wrong-shaped keys).

    Raises:
        OfflineError: no file is present and downloading is off or the model store cannot be reached.
        WeightsError: a configured path does not exist, or the download failed (see ``download``).
        CheckpointError: the file is not usable CBAM-ResNet weights.
    """
    path = weights_file(
        allow_download=allow_download, local_path=local_path, progress=progress, source=source, timeout=timeout
    )
    return _read_weights(path)


def from_uploaded_bytes(data: bytes | bytearray | memoryview | BinaryIO) -> dict[str, torch.Tensor]:
    """The state dict for ``cbam_resnet50`` from an uploaded weights file (its bytes or a binary file).

    Accepts the same files as a local path: pytorchcv's ``.pth`` or ``.pth.zip``, the authors'
    checkpoint, or a state dict in our layout; read safely by ``cbam.checkpoints.load``.

    Raises:
        CheckpointError: too large, not a checkpoint, would run code, or not CBAM-ResNet weights.
    """
    max_bytes = checkpoints.DEFAULT_MAX_BYTES
    if hasattr(data, "read"):
        data = data.read(max_bytes + 1)
    raw = bytes(data)
    if len(raw) > max_bytes:
        raise CheckpointError(t("dl.upload_over_limit", limit=_mib(max_bytes)))
    inner = _inner_weights_bytes(raw, max_bytes)
    loaded = checkpoints.load(raw if inner is None else inner, max_bytes=max_bytes)
    return _to_our_layout(loaded, t("ckpt.uploaded_file"))


def build_imagenet_model(state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """``cbam.models.cbam_resnet50()`` holding ``state_dict``, in eval mode.

    Raises:
        CheckpointError: the weights do not fit; the message names the missing and unexpected keys
            and the keys whose shape differs (``cbam.checkpoints.load_into``).
    """
    return checkpoints.load_into(models.cbam_resnet50(num_classes=len(IMAGENET_CLASSES)), state_dict).eval()


def load_imagenet_model(
    *,
    allow_download: bool = True,
    local_path: str | os.PathLike | None = None,
    progress: Progress | None = None,
    source: WeightsSource = PYTORCHCV_CBAM_RESNET50,
    timeout: float = DEFAULT_TIMEOUT,
) -> nn.Module:
    """CBAM-ResNet-50 with ImageNet weights, in eval mode. Arguments and errors: ``imagenet_weights``."""
    weights = imagenet_weights(
        allow_download=allow_download, local_path=local_path, progress=progress, source=source, timeout=timeout
    )
    return build_imagenet_model(weights)


def is_available_offline(
    *, local_path: str | os.PathLike | None = None, source: WeightsSource = PYTORCHCV_CBAM_RESNET50
) -> bool:
    """Whether ``imagenet_weights(allow_download=False)`` would find a file, without any network.

    True when ``local_path`` or the file named by ``CBAM_LAB_IMAGENET_WEIGHTS`` exists, or when the
    cached download exists and has the published SHA-1 (hashed once per process). The file's
    content is not read otherwise: a configured file that is not usable weights still fails later.
    """
    try:
        if _configured_path(local_path) is not None:
            return True
    except WeightsError:
        return False
    return _cache_is_valid(source)


# --------------------------------------------------------------------------------------------
# Class names
# --------------------------------------------------------------------------------------------

IMAGENET_CLASSES: tuple[str, ...] = tuple(
    (Path(__file__).with_name("imagenet_classes.txt")).read_text(encoding="utf-8").splitlines()
)
"""The 1000 ImageNet class names, in the order of the logits: torchvision's list
(``ResNet50_Weights.IMAGENET1K_V1.meta["categories"]``), kept in ``imagenet_classes.txt`` so that
reading them does not import torchvision (a second of the app's first page);
``tests/test_imagenet.py`` checks that the two lists are the same."""


def top_k(logits: torch.Tensor, k: int = 5) -> list[tuple[str, float]]:
    """The ``k`` most probable ImageNet classes as (name, softmax probability), most probable first.

    ``logits`` has shape (1000,) or (1, 1000).
    """
    scores = logits.detach()
    if scores.dim() == 2 and scores.shape[0] == 1:
        scores = scores[0]
    if scores.dim() != 1 or scores.shape[0] != len(IMAGENET_CLASSES):
        raise ValueError(f"expected logits of shape (1000,) or (1, 1000), got {tuple(logits.shape)}")
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    probabilities = torch.softmax(scores.float(), dim=0)
    values, indices = probabilities.topk(min(k, len(IMAGENET_CLASSES)))
    return [(IMAGENET_CLASSES[index], value) for value, index in zip(values.tolist(), indices.tolist())]
