"""The models CBAM Lab offers, by name: what each is, how to build it, and its weights.

Every model has a ``ModelCard``. ``model_cards()`` lists them in the order the app shows them;
``load_model(name)`` returns the network in eval mode with its card. Untrained entries say so in
their title: random weights are never presented as learned ones.

Trained models live in ``assets/models/``: for each, ``NAME.pt`` (the state dict) and ``NAME.json``
(its metadata: the training configuration and seed, the held-out accuracy and attention scores,
the training time, and the SHA-256 of ``NAME.pt``). They were all trained by ``cbam.train`` on the
cluttered-shapes task of ``cbam.data``; ``python -m cbam train`` reproduces them.

The trained models: ``demo`` (8 epochs, its last stage without stride: a 12×12 last map at 96 px),
and the rows of the ablation study (docs/ablations.md), all trained with the shorter 3-epoch recipe
from seed 0 and a strided last stage (6×6): ``baseline`` (no attention), ``reference`` (the demo's
CBAM configuration, with the strided last stage), ``pool-avg``, ``pool-max``, ``kernel-3``, ``arrangement-spatial-channel``,
``arrangement-parallel``, ``ratio-4`` and ``ratio-8``. ``ablations.json`` holds the study's
mean ± std over three seeds. Every CBAM model is trained with live attention (``cbam.train.LIVE_ATTENTION``:
at least 4 hidden units per MLP, so the first blocks' r is 4 and 8, a non-negative W0 at the start, and
the ablation rows' spatial kernels learning 5× faster; ``kernel-3``'s 35/3× and ``pool-max``'s with a weight
decay of 0.5, see ``cbam.train.VARIANTS``): no block's channel attention is dead and no mask flat on the
bundled samples or on held-out images (``tests/test_live_attention.py``).

Weights are stored in float16 to keep the repository small (each model is about 0.6 MB, 6 MB in
all); they are upcast to float32 when loaded, so the network computes in float32 as it was trained.
The metrics in the metadata were measured on the float16-rounded weights, exactly as shipped.

Loading is defensive: the file's SHA-256 must match the metadata (a corrupted or swapped file is
refused with ``WeightsIntegrityError``), and ``torch.load`` runs with ``weights_only=True``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import torch
from torch import nn

from . import data, models

__all__ = [
    "IMAGENET_MODEL",
    "ablation_results",
    "ModelCard",
    "model_cards",
    "get_card",
    "load_model",
    "find_variant",
    "UnknownModelError",
    "WeightsIntegrityError",
    "MODELS_DIR",
    "sha256_of",
    "save_trained_model",
    "load_state_dict_checked",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

MODELS_DIR = Path(__file__).resolve().parent.parent / "assets" / "models"

# Display order of the trained models; anything else found in MODELS_DIR follows, by name.
_TRAINED_ORDER = (
    "demo",
    "baseline",
    "reference",
    "pool-avg",
    "pool-max",
    "kernel-3",
    "arrangement-spatial-channel",
    "arrangement-parallel",
    "ratio-4",
    "ratio-8",
)


class UnknownModelError(KeyError):
    """No model of that name."""


class WeightsIntegrityError(RuntimeError):
    """A weights file is missing, or its SHA-256 does not match its metadata."""


@dataclass(frozen=True)
class ModelCard:
    """What a model is, for people and for the code that feeds it images."""

    name: str  # the key used by the CLI (--model NAME) and the app
    title: str  # what the app's "Model" select shows
    description: str
    trained: bool
    input_size: int  # images are resized to input_size × input_size
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    class_names: tuple[str, ...] = ()
    metrics: dict = field(default_factory=dict)  # held-out scores, as in the metadata's "metrics"
    build: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)
    # Trained models only:
    config: dict | None = field(default=None, compare=False)  # cbam.train.TrainConfig.to_dict()
    cbam_options: dict | None = field(default=None, compare=False)  # the CBAM blocks' options; None: no CBAM
    variant: dict = field(default_factory=dict, compare=False)  # {"axis": ..., "value": ...} for ablation variants
    weights_path: Path | None = field(default=None, compare=False)
    sha256: str | None = field(default=None, compare=False)
    metadata: dict = field(default_factory=dict, repr=False, compare=False)  # the whole JSON file


def _untrained(build: Callable[[], nn.Module], seed: int = 0) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build()

    return make


_UNTRAINED_CARDS: list[ModelCard] = [
    ModelCard(
        name="untrained-smallnet",
        title="Small CBAM net — untrained (random weights)",
        description="The small four-stage CBAM network with random weights (seed 0): its attention is "
        "not learned and means nothing yet.",
        trained=False,
        input_size=96,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        build=_untrained(lambda: models.cbam_smallnet(num_classes=10)),
    ),
    ModelCard(
        name="untrained-resnet50",
        title="CBAM-ResNet-50 — untrained (random weights)",
        description="CBAM-ResNet-50 as the authors built it, with random weights (seed 0): 16 CBAM "
        "blocks whose attention is not learned.",
        trained=False,
        input_size=224,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        build=_untrained(lambda: models.cbam_resnet50(num_classes=1000)),
    ),
]


# --------------------------------------------------------------------------------------------
# Trained models: metadata files in MODELS_DIR
# --------------------------------------------------------------------------------------------


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _card_from_metadata(meta_path: Path) -> ModelCard:
    from .train import TrainConfig, build_model  # late import: cbam.train imports the training stack

    meta = json.loads(meta_path.read_text())
    config = TrainConfig.from_dict(meta["config"])
    return ModelCard(
        name=meta["name"],
        title=meta["title"],
        description=meta["description"],
        trained=True,
        input_size=config.image_size,
        mean=tuple(meta.get("mean", data.MEAN)),
        std=tuple(meta.get("std", data.STD)),
        class_names=tuple(meta.get("class_names", data.CLASS_NAMES)),
        metrics=meta.get("metrics", {}),
        build=lambda: build_model(config),
        config=config.to_dict(),
        cbam_options=config.cbam_options(),
        variant=meta.get("variant", {}),
        weights_path=meta_path.parent / meta["weights"],
        sha256=meta["sha256"],
        metadata=meta,
    )


@cache
def _trained_cards(models_dir: Path) -> tuple[ModelCard, ...]:
    if not models_dir.is_dir():
        return ()
    cards = [
        _card_from_metadata(p) for p in sorted(models_dir.glob("*.json")) if p.name != "ablations.json"
    ]
    rank = {name: i for i, name in enumerate(_TRAINED_ORDER)}
    return tuple(sorted(cards, key=lambda c: (rank.get(c.name, len(rank)), c.name)))


IMAGENET_MODEL = "imagenet-resnet50"


def _imagenet_card() -> ModelCard:
    from . import imagenet

    return ModelCard(
        name=IMAGENET_MODEL,
        title="CBAM-ResNet-50 (ImageNet)",
        description="CBAM-ResNet-50 trained on ImageNet (osmr's pytorchcv weights, release "
        f"{imagenet.PYTORCHCV_RELEASE}, converted to this library's layout): 16 CBAM blocks, 1000 classes. The "
        "weights (about 113 MB) are downloaded once with their checksum verified, or read from a local file.",
        trained=True,
        input_size=imagenet.INPUT_SIZE,
        mean=imagenet.MEAN,
        std=imagenet.STD,
        class_names=tuple(imagenet.IMAGENET_CLASSES),
        build=lambda: imagenet.load_imagenet_model(allow_download=False),
    )


def ablation_results() -> dict:
    """The ablation study of the shipped models (``assets/models/ablations.json``; see docs/ablations.md):
    ``{"description", "reference_setting", "recipe", "evaluation", "rows": [...]}``, each row with
    mean, std and per-seed values of accuracy, pointing game and mass on target."""
    return json.loads((MODELS_DIR / "ablations.json").read_text(encoding="utf-8"))


def model_cards() -> list[ModelCard]:
    """Every model CBAM Lab can offer, in display order: the trained ones first (the shapes models,
    then CBAM-ResNet-50 on ImageNet, whose weights may first have to be fetched), then the untrained."""
    return [*_trained_cards(MODELS_DIR), _imagenet_card(), *_UNTRAINED_CARDS]


def get_card(name: str) -> ModelCard:
    cards = model_cards()
    for card in cards:
        if card.name == name:
            return card
    raise UnknownModelError(f"no model named {name!r}; known: {', '.join(c.name for c in cards)}")


def load_state_dict_checked(path: str | Path, sha256: str) -> dict[str, torch.Tensor]:
    """Read a state dict after checking the file's SHA-256; float tensors come back as float32."""
    path = Path(path)
    if not path.is_file():
        raise WeightsIntegrityError(f"weights file {path} is missing")
    actual = sha256_of(path)
    if actual != sha256:
        raise WeightsIntegrityError(
            f"refusing to load {path}: its SHA-256 is {actual}, but the metadata says {sha256}. "
            "The file is corrupted or was replaced; restore it (git checkout) or retrain it."
        )
    state = torch.load(path, weights_only=True, map_location="cpu")
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_model(name: str, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """Build the named model, load its weights if it has any, and return it in eval mode."""
    card = get_card(name)
    model = card.build()  # ImageNet's build loads its own weights (see _imagenet_card)
    if card.weights_path is not None:
        model.load_state_dict(load_state_dict_checked(card.weights_path, card.sha256))
    return model.eval().to(device), card


# Config fields that never make two models different networks.
_BOOKKEEPING_FIELDS = {"preset", "device", "num_threads"}
# Fields of how a network was trained, not of the network: the ablation variants were trained for fewer
# steps than the demo, and kernel-3's and pool-max's spatial kernels with their own learning-rate scale and
# weight decay (docs/ablations.md, "Live attention in every block").
_RECIPE_FIELDS = {"epochs", "steps_per_epoch", "spatial_lr_scale", "spatial_weight_decay", "spatial_init"}


def find_variant(base_name: str, reduction_ratio: int, kernel_size: int) -> str | None:
    """The name of a trained model identical to ``base_name`` except for r and k, or None.

    A candidate must have the same network, data and seed as the base in every configuration field
    but ``reduction_ratio`` and ``kernel_size``. A candidate trained with exactly the base's recipe
    wins; failing that, one that differs only in how it was trained (its length, its spatial kernels'
    learning-rate scale, weight decay or starting weights) is returned. So
    ``find_variant("reference", 4, 7)`` is ``"ratio-4"`` and ``find_variant("ratio-4", 16, 7)`` is
    ``"reference"``; ``find_variant("demo", 4, 7)`` is None: the demo's last stage has no stride,
    the ablation variants' has, so none of them is the demo's network with r or k changed (they were
    trained before the demo's network changed). ``find_variant(name, r, k)`` with the base's own r and
    k returns the base itself.
    """
    base = get_card(base_name)
    if not base.trained or base.config is None or base.cbam_options is None:
        return None
    if (base.config["reduction_ratio"], base.config["kernel_size"]) == (reduction_ratio, kernel_size):
        return base.name

    def rest(config: dict, ignore: set[str]) -> dict:
        free = {"reduction_ratio", "kernel_size"} | _BOOKKEEPING_FIELDS | ignore
        return {k: v for k, v in config.items() if k not in free}

    candidates = [
        card for card in model_cards()
        if card.trained and card.config is not None and card.cbam_options is not None
        and (card.config["reduction_ratio"], card.config["kernel_size"]) == (reduction_ratio, kernel_size)
    ]
    for ignore in (set(), _RECIPE_FIELDS):
        for card in candidates:
            if rest(card.config, ignore) == rest(base.config, ignore):
                return card.name
    return None


# --------------------------------------------------------------------------------------------
# Writing a trained model
# --------------------------------------------------------------------------------------------


def half_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict on the CPU with float tensors in float16 (the storage format)."""
    return {
        k: (v.detach().cpu().half() if v.is_floating_point() else v.detach().cpu()).clone()
        for k, v in model.state_dict().items()
    }


def save_trained_model(model: nn.Module, out_dir: str | Path, name: str, metadata: dict) -> dict:
    """Write ``out_dir/NAME.pt`` (float16 state dict) and ``out_dir/NAME.json`` (``metadata`` plus
    ``name``, ``weights``, ``sha256``, ``storage_dtype``); return the metadata written."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / f"{name}.pt"
    torch.save(half_state_dict(model), weights)
    meta = {
        "name": name,
        **metadata,
        "weights": weights.name,
        "sha256": sha256_of(weights),
        "storage_dtype": "float16",
    }
    (out_dir / f"{name}.json").write_text(json.dumps(meta, indent=2) + "\n")
    _trained_cards.cache_clear()
    return meta


def round_to_storage(model: nn.Module) -> nn.Module:
    """Round the model's float parameters and buffers through float16, in place, as the shipped file stores them."""
    state = half_state_dict(model)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    return model
