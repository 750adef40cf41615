"""The sample images bundled in ``assets/samples`` (see LICENSES.md there), with their credits."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SAMPLES_DIR = ASSETS / "samples"

__all__ = ["SampleImage", "sample_images", "get_sample", "ASSETS", "SAMPLES_DIR"]


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
