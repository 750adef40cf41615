"""The models CBAM Lab offers, by name: what each is, how to build it, and its weights.

Every model has a ``ModelCard``. ``model_cards()`` lists them in the order the app shows them;
``load_model(name)`` returns the network in eval mode with its card. Untrained entries say so in
their title: random weights are never presented as learned ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from . import models

__all__ = ["ModelCard", "model_cards", "get_card", "load_model", "UnknownModelError"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class UnknownModelError(KeyError):
    """No model of that name."""


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
    metrics: dict = field(default_factory=dict)
    build: Callable[[], nn.Module] | None = field(default=None, repr=False, compare=False)


def _untrained(build: Callable[[], nn.Module], seed: int = 0) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build()

    return make


_CARDS: list[ModelCard] = [
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


def model_cards() -> list[ModelCard]:
    """Every model CBAM Lab can offer, in display order."""
    return list(_CARDS)


def get_card(name: str) -> ModelCard:
    for card in _CARDS:
        if card.name == name:
            return card
    raise UnknownModelError(f"no model named {name!r}; known: {', '.join(c.name for c in _CARDS)}")


def load_model(name: str, device: str | torch.device = "cpu") -> tuple[nn.Module, ModelCard]:
    """Build the named model, load its weights if it has any, and return it in eval mode."""
    card = get_card(name)
    model = card.build()
    return model.eval().to(device), card
