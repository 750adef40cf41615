"""Loading weights safely: the one loader that the app, the CLI and downloads go through.

A PyTorch checkpoint is a zip archive holding a pickle. An ordinary pickle can run any code when it
is loaded, so a checkpoint from an upload or a download must never be unpickled freely. ``load``
always calls ``torch.load(..., weights_only=True, map_location="cpu")``: PyTorch's restricted
unpickler, which builds only tensors, dicts, lists, numbers and strings and refuses anything else
(a pickle that asks for ``os.system`` is rejected before anything runs).

Every failure becomes one exception type, ``CheckpointError`` (a ``ValueError``), whose message is
written for a person: "no such file", "too large", "not a PyTorch checkpoint", "refused: it would
run code", "not a dict of tensors", "missing keys ...".

    >>> from cbam import checkpoints
    >>> sd = checkpoints.load("cbam_resnet50.pth")            # doctest: +SKIP
    >>> checkpoints.load_into(model, checkpoints.extract_state_dict(sd))  # doctest: +SKIP

What ``load`` returns
---------------------
* a *state dict* (a dict mapping parameter names to tensors) is returned as it is;
* a *checkpoint container*, a dict with a ``"state_dict"`` entry that is a state dict (as the
  authors' training script saves: ``{"epoch", "arch", "state_dict", "best_prec1", "optimizer"}``),
  is returned whole, so that its other entries stay readable. ``extract_state_dict`` takes the state
  dict out of either form.

Anything else (a bare tensor, a list, a dict of numbers, an empty dict) is a ``CheckpointError``.
"""

from __future__ import annotations

import io
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import torch
from torch import nn

from .i18n import t

__all__ = [
    "CheckpointError",
    "DEFAULT_MAX_BYTES",
    "CONTAINER_KEY",
    "load",
    "extract_state_dict",
    "load_into",
]

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
"""512 MiB: room for CBAM-ResNet-101 (about 200 MB of fp32 weights) with its optimizer state."""

CONTAINER_KEY = "state_dict"
"""The entry of a checkpoint container that holds the state dict."""

MAX_LISTED = 10
"""How many keys an error message lists before it says "... and N more"."""

Source = str | os.PathLike | bytes | bytearray | memoryview | BinaryIO


class CheckpointError(ValueError):
    """A checkpoint could not be read or does not fit the model; the message says why, for a person."""


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 2**20:.1f} MiB"


def _too_large(size: int, max_bytes: int) -> CheckpointError:
    return CheckpointError(t("ckpt.too_large", size=_megabytes(size), limit=_megabytes(max_bytes)))


def _read_limited(source: Source, max_bytes: int) -> tuple[str | Path, io.BytesIO | Path]:
    """Check the size of ``source`` before reading it; return (a name for messages, what to load).

    A path is checked with ``stat`` and handed to ``torch.load`` as a path. Bytes are checked with
    ``len``. A file-like object is checked by seeking to its end when it can seek, otherwise by
    reading at most ``max_bytes + 1`` bytes; its content is then loaded from memory.
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        try:
            stat = path.stat()
        except FileNotFoundError:
            raise CheckpointError(t("ckpt.no_file", path=path)) from None
        except OSError as error:
            raise CheckpointError(t("ckpt.cannot_read", name=path, error=error.strerror or error)) from None
        if path.is_dir():
            raise CheckpointError(t("ckpt.folder", path=path))
        if stat.st_size > max_bytes:
            raise _too_large(stat.st_size, max_bytes)
        return str(path), path
    if isinstance(source, (bytes, bytearray, memoryview)):
        size = memoryview(source).nbytes
        if size > max_bytes:
            raise _too_large(size, max_bytes)
        return t("ckpt.uploaded_bytes"), io.BytesIO(bytes(source))
    if hasattr(source, "read"):
        name = str(getattr(source, "name", t("ckpt.uploaded_file")))
        try:
            seekable = getattr(source, "seekable", None)
            if seekable is not None and seekable():
                start = source.tell()
                size = source.seek(0, io.SEEK_END) - start
                source.seek(start)
                if size > max_bytes:
                    raise _too_large(size, max_bytes)
            data = source.read(max_bytes + 1)
        except CheckpointError:
            raise
        except (OSError, ValueError) as error:
            raise CheckpointError(t("ckpt.cannot_read", name=name, error=error)) from None
        if not isinstance(data, (bytes, bytearray)):
            raise CheckpointError(f"{name} is not opened in binary mode (read() gave {type(data).__name__})")
        if len(data) > max_bytes:
            raise CheckpointError(t("ckpt.over_limit", limit=_megabytes(max_bytes)))
        return name, io.BytesIO(data)
    raise CheckpointError(
        f"cannot load a checkpoint from a {type(source).__name__}: give a path, bytes or a binary file object"
    )


def _is_state_dict(obj: object) -> bool:
    """A non-empty mapping from strings to tensors."""
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())
    )


def _describe_non_tensors(obj: Mapping) -> str:
    bad = [f"{k!r} ({type(v).__name__})" for k, v in obj.items() if not isinstance(v, torch.Tensor)]
    return _listed(bad)


def _listed(items: list[str], limit: int = MAX_LISTED) -> str:
    """``a, b, c`` or ``a, b, c ... and 7 more``."""
    shown = ", ".join(items[:limit])
    if len(items) > limit:
        shown = t("ckpt.and_more", shown=shown, more=len(items) - limit)
    return shown


def load(source: Source, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict:
    """Read a PyTorch checkpoint safely and return its state dict or checkpoint container.

    Args:
        source: a path (``str`` or ``Path``), the file's bytes, or a binary file-like object
            (e.g. a Streamlit upload or an open file).
        max_bytes: the largest accepted size, checked before the content is read.

    Returns:
        The loaded dict, all tensors on the CPU: a state dict ``{name: tensor}``, or a checkpoint
        container ``{"state_dict": {name: tensor}, ...}`` returned whole (see the module docstring).

    Raises:
        CheckpointError: the file is missing, too large, not a PyTorch checkpoint (truncated or
            random bytes), holds objects that would run code when unpickled, or is not a dict of
            tensors.
    """
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError(f"max_bytes must be a positive integer, got {max_bytes!r}")
    name, readable = _read_limited(source, max_bytes)
    try:
        loaded = torch.load(readable, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        text = str(error)
        garbage = re.search(r"Unsupported operand (\d+)", text)
        if garbage:  # bytes that are not pickle opcodes: random data, an HTML page, another format
            raise CheckpointError(t("ckpt.not_pickle", name=name, operand=garbage[1])) from None
        wanted = re.search(r"GLOBAL ([\w.]+)", text)  # the object it asked for, e.g. posix.system
        asks = t("ckpt.asks", name=wanted[1]) if wanted else ""
        raise CheckpointError(t("ckpt.unsafe", name=name, asks=asks)) from None
    except Exception as error:  # noqa: BLE001 - any failure to parse means the same thing to the user
        raise CheckpointError(
            t("ckpt.unreadable", name=name, error=f"{type(error).__name__}: {_first_line(error)}")) from None

    if _is_state_dict(loaded):
        return loaded
    if isinstance(loaded, Mapping) and _is_state_dict(loaded.get(CONTAINER_KEY)):
        return loaded
    raise CheckpointError(t("ckpt.not_state_dict", name=name, why=_describe_loaded(loaded)))


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else t("ckpt.no_details")


def _describe_loaded(obj: object) -> str:
    if isinstance(obj, torch.Tensor):
        return t("ckpt.single_tensor", shape=tuple(obj.shape))
    if not isinstance(obj, Mapping):
        return t("ckpt.holds", kind=type(obj).__name__)
    if not obj:
        return t("ckpt.empty_dict")
    if CONTAINER_KEY in obj:
        inner = obj[CONTAINER_KEY]
        if not isinstance(inner, Mapping):
            return t("ckpt.entry_kind", key=repr(CONTAINER_KEY), kind=type(inner).__name__)
        if not inner:
            return t("ckpt.entry_empty", key=repr(CONTAINER_KEY))
        return t("ckpt.entry_not_tensors", key=repr(CONTAINER_KEY), items=_describe_non_tensors(inner))
    non_string = [repr(k) for k in obj if not isinstance(k, str)]
    if non_string:
        return t("ckpt.keys_not_strings", items=_listed(non_string))
    return t("ckpt.not_tensors", items=_describe_non_tensors(obj))


def extract_state_dict(checkpoint: Mapping) -> dict[str, torch.Tensor]:
    """The state dict of what ``load`` returned: the container's ``"state_dict"``, or the dict itself.

    Raises:
        CheckpointError: ``checkpoint`` is neither a state dict nor a container of one.
    """
    if _is_state_dict(checkpoint):
        return dict(checkpoint)
    if isinstance(checkpoint, Mapping) and _is_state_dict(checkpoint.get(CONTAINER_KEY)):
        return dict(checkpoint[CONTAINER_KEY])
    raise CheckpointError(t("ckpt.not_a_state_dict", why=_describe_loaded(checkpoint)))


# --------------------------------------------------------------------------------------------
# Loading into a model
# --------------------------------------------------------------------------------------------


def _mismatch_message(missing: list[str], unexpected: list[str], wrong_shapes: list[tuple[str, tuple, tuple]]) -> str:
    parts = [t("ckpt.mismatch")]
    if missing:
        parts.append(t("ckpt.missing", n=len(missing), items=_listed(missing)))
    if unexpected:
        parts.append(t("ckpt.unexpected", n=len(unexpected), items=_listed(unexpected)))
    if wrong_shapes:
        described = [t("ckpt.wrong_shape", key=key, want=list(want), got=list(got)) for key, want, got in wrong_shapes]
        parts.append(t("ckpt.wrong_shapes", n=len(wrong_shapes), items=_listed(described)))
    if unexpected and all(k.startswith("module.") for k in unexpected):
        parts.append(t("ckpt.module_hint"))
    return "\n".join(parts)


def load_into(model: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load ``state_dict`` into ``model`` strictly (every key present, none extra, every shape equal).

    Returns the model. On a mismatch nothing is loaded and a ``CheckpointError`` names the missing
    keys, the unexpected keys and the keys whose shape differs (key, the model's shape, the
    checkpoint's shape), each list cut to ``MAX_LISTED`` entries with a count of the rest.
    """
    if not _is_state_dict(state_dict):
        raise CheckpointError(t("ckpt.not_a_state_dict", why=_describe_loaded(state_dict)))
    expected = model.state_dict()
    missing = [key for key in expected if key not in state_dict]
    unexpected = [key for key in state_dict if key not in expected]
    wrong_shapes = [
        (key, tuple(expected[key].shape), tuple(state_dict[key].shape))
        for key in expected
        if key in state_dict and expected[key].shape != state_dict[key].shape
    ]
    if missing or unexpected or wrong_shapes:
        raise CheckpointError(_mismatch_message(missing, unexpected, wrong_shapes))
    try:
        model.load_state_dict(state_dict, strict=True)
    except RuntimeError as error:  # e.g. a dtype that cannot be copied
        raise CheckpointError(t("ckpt.does_not_fit", error=_first_line(error))) from None
    return model
