"""Fonts for figures in Chinese: matplotlib's own DejaVu Sans has no CJK glyphs.

A Chinese figure is drawn with the font list ``["DejaVu Sans", <a CJK font>]``: matplotlib (≥ 3.6)
takes each glyph from the first font that has it, so Latin letters, digits and symbols look as in
an English figure and only the Chinese characters come from the CJK font (Debian's
``fonts-noto-cjk``, installed by the Dockerfile and scripts/test.sh). Without any CJK font the
figure is still drawn, its Chinese characters as empty boxes, after one warning.
"""

from __future__ import annotations

import warnings
from functools import cache
from pathlib import Path

from matplotlib import font_manager

from . import i18n

__all__ = ["LATIN_FAMILY", "CJK_FAMILIES", "cjk_family", "font_settings"]

LATIN_FAMILY = "DejaVu Sans"
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "Noto Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
                "Droid Sans Fallback")
"""CJK fonts a figure may take its Chinese glyphs from, the preferred first."""

_FILE_MARKS = ("notosanscjk", "sourcehansans", "notosanssc", "wqy", "droidsansfallback")
"""Parts of the file names of those fonts (lower case), to find one matplotlib's font cache predates."""


def _known_family() -> str | None:
    names = {font.name for font in font_manager.fontManager.ttflist}
    return next((family for family in CJK_FAMILIES if family in names), None)


@cache
def cjk_family() -> str | None:
    """The CJK font family matplotlib can use, or None (after one warning) when none is installed.

    matplotlib lists the system's fonts once and caches the list, so a font installed later (the
    Docker image's, scripts/test.sh's) may be missing from it: then its file is added here."""
    family = _known_family()
    if family is None:
        for path in font_manager.findSystemFonts(fontext="ttf"):
            if any(mark in Path(path).name.lower().replace("-", "") for mark in _FILE_MARKS):
                font_manager.fontManager.addfont(path)
        family = _known_family()
    if family is None:
        warnings.warn("No CJK font found (e.g. Debian's fonts-noto-cjk): Chinese text in figures is drawn as empty "
                      "boxes.", stacklevel=2)
    return family


def font_settings(lang: str | None = None) -> dict:
    """matplotlib settings (for ``matplotlib.rc_context``) for figures in ``lang`` (default: the current
    language): none for English, a font list that falls back to a CJK font for Chinese."""
    if (lang or i18n.language()) == i18n.DEFAULT:
        return {}
    family = cjk_family()
    return {"font.family": [LATIN_FAMILY] + ([family] if family else [])}
