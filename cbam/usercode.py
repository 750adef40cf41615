"""The user's own network: built by their Python code, or from a weights file alone.

``--model-code FILE.py:FUNCTION`` names trusted local code: the person who types the command
chooses the file, exactly as when running ``python FILE.py``. (Never pass a path that came from
someone else, such as an upload: importing a file runs it.)

* ``load_model_code(spec)`` imports FILE.py and returns ``FUNCTION()``, an ``nn.Module``.
* ``network_from_code(spec, weights)`` does that, loads the weights (``cbam.checkpoints.load``, then
  a strict ``load_state_dict``, with one conversion attempt for another CBAM-ResNet layout), runs
  ``cbam.adopt`` and returns the network in eval mode with a ``ModelCard`` describing it.
* ``model_from_weights(weights)`` builds the CBAM-ResNet-18/34/50/101 that a weights file belongs to,
  in the authors', pytorchcv's, timm's (``attn_layer="cbam"``) or CBAM Lab's layout, detected from
  its keys (no code needed: the network is ``cbam.models.cbam_resnet*``).

Every failure is a ``ModelCodeError`` (a ``ValueError``) whose one-line message says which case it
is; ``kind`` names it for programs: "spec", "missing file", "import", "missing function",
"function raised", "not a module", "weights", "adopt" or "no cbam".
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections.abc import Mapping
from hashlib import sha1
from pathlib import Path

import torch
from torch import nn

from . import checkpoints, imagenet, models
from .adopt import AdoptError, adopt
from .checkpoints import CheckpointError
from .compat import convert_state_dict
from .i18n import t
from .zoo import IMAGENET_MEAN, IMAGENET_STD, ModelCard

__all__ = ["ModelCodeError", "one_line", "parse_spec", "load_model_code", "load_weights", "network_from_code",
           "model_from_weights", "LAYOUTS"]

LAYOUTS: dict[str, str] = {
    "official": "the authors' (Jongchan/attention-module)",
    "pytorchcv": "pytorchcv's",
    "timm": "timm's (attn_layer='cbam')",
    "cbam_lab": "CBAM Lab's",
}
"""The weights layouts ``model_from_weights`` reads, as ``cbam.imagenet.detect_format`` names them."""


class ModelCodeError(ValueError):
    """The user's network could not be built; the message (one line) says why, ``kind`` which case.
    ``args[0]`` is the message as worded (a ``cbam.i18n.Text``: ``i18n.again`` words it anew)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __str__(self) -> str:
        return one_line(self.args[0])


def one_line(message: object) -> str:
    """A message of several lines (e.g. a ``CheckpointError`` listing keys) on one: "a:\\n- b\\n- c" → "a: b; c"."""
    lines = [line.strip(" -") for line in str(message).splitlines() if line.strip()]
    return "".join(line if i == 0 else (" " if lines[i - 1].endswith(":") else "; ") + line
                   for i, line in enumerate(lines))


def parse_spec(spec: str) -> tuple[Path, str]:
    """``"models/net.py:build"`` → (Path("models/net.py"), "build"). The last ':' separates them."""
    path, colon, function = str(spec).rpartition(":")
    if not colon or not path or not function.isidentifier():
        raise ModelCodeError("spec", t("uc.spec", spec=repr(spec)))
    return Path(path).expanduser(), function


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def load_model_code(spec: str) -> nn.Module:
    """Import FILE.py and return what FUNCTION() returns, which must be an ``nn.Module``.

    The file's folder is on ``sys.path`` while it is imported and FUNCTION runs, so it may import its
    neighbours. Raises ``ModelCodeError``: bad spec, missing file, import failure, missing function,
    the function raised, or returned something else than a module.
    """
    path, function = parse_spec(spec)
    if not path.is_file():
        raise ModelCodeError("missing file", t("uc.missing_file", path=path, spec=spec))
    digest = sha1(str(path.resolve()).encode()).hexdigest()[:8]
    stem = re.sub(r"\W", "_", path.stem)
    name = f"cbam_usercode_{stem}_{digest}"
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    try:
        try:
            module_spec = importlib.util.spec_from_file_location(name, path)
            if module_spec is None or module_spec.loader is None:
                raise ImportError(f"{path} is not a Python file")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[name] = module  # dataclasses and pickling look classes up here
            module_spec.loader.exec_module(module)
        except (Exception, SystemExit) as error:  # noqa: BLE001 - whatever the file does, it is one case
            sys.modules.pop(name, None)
            raise ModelCodeError("import", t("uc.import", path=path, error=_first_line(error))) from None
        build = getattr(module, function, None)
        if not callable(build):
            defined = sorted(k for k, v in vars(module).items() if callable(v) and not k.startswith("_")
                             and getattr(v, "__module__", None) == name)
            defines = t("uc.defines", names=", ".join(defined)) if defined else ""
            raise ModelCodeError("missing function", t("uc.no_function", path=path, function=repr(function),
                                                       defines=defines))
        try:
            model = build()
        except (Exception, SystemExit) as error:  # noqa: BLE001
            raise ModelCodeError("function raised", t("uc.raised", function=function, path=path,
                                                       error=_first_line(error))) from None
    finally:
        if folder in sys.path:
            sys.path.remove(folder)
    if not isinstance(model, nn.Module):
        raise ModelCodeError("not a module", t("uc.not_module", function=function, path=path,
                                               kind=type(model).__name__))
    return model


def load_weights(model: nn.Module, weights: str | Path | Mapping, *, what: str | None = None) -> nn.Module:
    """Load a weights file (or a loaded state dict) into ``model`` strictly.

    When the keys do not fit and the file is a CBAM-ResNet in another layout (the authors',
    pytorchcv's, timm's), it is converted with ``cbam.compat.convert_state_dict`` and tried once more.
    Raises ``ModelCodeError`` ("weights") naming the missing, unexpected and wrongly shaped keys.
    """
    try:
        loaded = weights if isinstance(weights, Mapping) else checkpoints.load(weights)
        state = checkpoints.extract_state_dict(loaded)
    except CheckpointError as error:
        raise ModelCodeError("weights", t("uc.weights_unreadable", error=error)) from None
    try:
        return checkpoints.load_into(model, state)
    except CheckpointError as error:
        mismatch = error
    try:
        layout = imagenet.detect_format(state)
        converted = (
            {k.removeprefix("module."): v for k, v in state.items()} if layout == "cbam_lab"
            else convert_state_dict(state, layout)
        )
        return checkpoints.load_into(model, converted)
    except (CheckpointError, ValueError):
        raise ModelCodeError("weights", t("uc.weights_misfit", what=what or t("uc.the_network"),
                                          mismatch=mismatch)) from None


def network_from_code(
    spec: str,
    weights: str | Path | Mapping | None = None,
    *,
    input_size: int = imagenet.INPUT_SIZE,
    mean: tuple[float, float, float] = IMAGENET_MEAN,
    std: tuple[float, float, float] = IMAGENET_STD,
) -> tuple[nn.Module, ModelCard, dict[str, str]]:
    """The network FUNCTION() of FILE.py builds, with ``weights`` loaded and its CBAM blocks adopted.

    Returns ``(model in eval mode, card, adopted)``: the card describes it for ``cbam.report`` and
    the app (its input size, mean and std; ImageNet's class names, used when it has 1000 outputs);
    ``adopted`` is ``cbam.adopt``'s ``{block: implementation}``. ``cbam.adopt``'s ``AdoptWarning``s
    pass through to the caller.

    Raises:
        ModelCodeError: any case of ``load_model_code`` and ``load_weights``; "adopt" when a block's
            check failed; "no cbam" when the network has no CBAM block.
    """
    model = load_model_code(spec)
    path, function = parse_spec(spec)
    if weights is not None:
        load_weights(model, weights, what=t("uc.network_of", spec=spec))
    try:
        adopted = adopt(model)
    except AdoptError as error:
        raise ModelCodeError("adopt", t("uc.adopt", spec=spec, error=error)) from None
    if not adopted:
        raise ModelCodeError("no cbam", t("uc.no_cbam", spec=spec))
    source = f"weights from {weights}" if isinstance(weights, (str, Path)) else (
        "the weights given" if weights is not None else f"the weights {function}() gave it")
    card = ModelCard(
        name=spec, title=f"{function}() of {path.name}",
        description=f"The network that {function}() in {path} builds, with {source}; {len(adopted)} CBAM "
        f"block(s): " + ", ".join(f"{k} ({v})" for k, v in adopted.items()),
        trained=True, input_size=input_size, mean=tuple(mean), std=tuple(std),
        class_names=tuple(imagenet.IMAGENET_CLASSES),
    )
    return model.eval(), card, adopted


# --------------------------------------------------------------------------------------------
# A CBAM-ResNet from its weights alone
# --------------------------------------------------------------------------------------------

_DEPTHS = {(False, (2, 2, 2, 2)): 18, (False, (3, 4, 6, 3)): 34, (True, (3, 4, 6, 3)): 50, (True, (3, 4, 23, 3)): 101}


def _depth(state: Mapping[str, torch.Tensor]) -> int:
    counts = [0, 0, 0, 0]
    for key in state:
        match = re.match(r"layer([1-4])\.(\d+)\.", key)
        if match:
            counts[int(match[1]) - 1] = max(counts[int(match[1]) - 1], int(match[2]) + 1)
    bottleneck = any(key.endswith(".conv3.weight") for key in state)
    depth = _DEPTHS.get((bottleneck, tuple(counts)))
    if depth is None:
        raise CheckpointError(t("ckpt.resnet_depth", counts=tuple(counts),
                                  kind=t("ckpt.bottleneck") if bottleneck else t("ckpt.basic")))
    return depth


def _read(source: object) -> Mapping:
    if isinstance(source, Mapping):
        return source
    if hasattr(source, "read"):
        source = source.read(checkpoints.DEFAULT_MAX_BYTES + 1)
    raw = Path(source) if isinstance(source, (str, Path)) else bytes(source)
    inner = imagenet._inner_weights_bytes(raw, checkpoints.DEFAULT_MAX_BYTES)  # pytorchcv's .pth.zip
    return checkpoints.load(raw if inner is None else inner)


def model_from_weights(weights: Mapping | str | Path | bytes) -> tuple[nn.Module, ModelCard]:
    """The CBAM-ResNet-18/34/50/101 that ``weights`` belong to, holding them, in eval mode, and its card.

    ``weights``: a state dict or checkpoint container (as ``cbam.checkpoints.load`` returns), or a
    path, bytes or binary file to read with it (pytorchcv's ``.pth.zip`` too). The layout (``LAYOUTS``)
    and the depth are read from the keys, the number of classes from ``fc``. The authors' and
    pytorchcv's weights load into the default ``cbam_resnet*`` (``CBAM.authors`` blocks); timm's into
    ``cbam_resnet*(mlp_bias=False, spatial_pool_order="avg-max")``, timm's own variant.

    Raises:
        CheckpointError: not readable, not a CBAM-ResNet, another depth, or keys that do not fit.
    """
    state = checkpoints.extract_state_dict(_read(weights))
    layout = imagenet.detect_format(state)
    if layout == "cbam_lab":
        converted = {k.removeprefix("module."): v for k, v in state.items()}
        conv = next((v for k, v in converted.items() if k.endswith(".spatial_attention.conv.weight")), None)
        options = {
            "mlp_bias": any(k.endswith(".channel_attention.fc1.bias") for k in converted),
            "spatial_batch_norm": any(".spatial_attention.bn." in k for k in converted),
            **({"kernel_size": conv.shape[-1]} if conv is not None else {"spatial": False}),
        }
    else:
        options = {"mlp_bias": False, "spatial_pool_order": "avg-max"} if layout == "timm" else {}
        try:
            converted = convert_state_dict(state, layout, **options)
        except ValueError as error:
            raise CheckpointError(t("ckpt.not_resnet", error=error)) from None
    depth = _depth(converted)
    fc = converted.get("fc.weight")
    num_classes = fc.shape[0] if fc is not None else 1000
    model = getattr(models, f"cbam_resnet{depth}")(num_classes=num_classes, **options)
    checkpoints.load_into(model, converted)
    card = ModelCard(
        name=f"{layout}-cbam-resnet{depth}", title=f"CBAM-ResNet-{depth} ({LAYOUTS[layout]} weights)",
        description=f"CBAM-ResNet-{depth} with {num_classes} classes, holding weights in {LAYOUTS[layout]} "
        "layout, converted to CBAM Lab's", trained=True, input_size=imagenet.INPUT_SIZE,
        mean=imagenet.MEAN, std=imagenet.STD,
        class_names=tuple(imagenet.IMAGENET_CLASSES) if num_classes == len(imagenet.IMAGENET_CLASSES) else (),
    )
    return model.eval(), card
