"""The words a user reads, in English or Chinese: one catalogue per language (``cbam/locales/*.json``).

    >>> from cbam import i18n
    >>> i18n.t("vc.weights.title")
    'Channel attention Mc = σ(MLP(AvgPool F) + MLP(MaxPool F))'
    >>> with i18n.use("zh"):
    ...     i18n.t("vc.weights.title")
    '通道注意力 Mc = σ(MLP(AvgPool F) + MLP(MaxPool F))'

A catalogue maps keys ("vc.weights.title") to text; live numbers are ``{name}`` placeholders,
filled by ``t(key, name=value)`` with Python's format rules (``{value:.4f}``). Both catalogues hold the
same keys with the same placeholders (tests/test_i18n.py). The current language lives in a ContextVar:
the app sets it at the start of every script run (ui/sidebar.py), the library's views read it.
English is the default; a key missing from a catalogue falls back to English, then to the key itself.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

__all__ = ["LANGUAGES", "DEFAULT", "t", "use", "set_language", "language", "catalogue", "placeholders"]

LANGUAGES = {"en": "English", "zh": "中文"}
"""The languages there is a catalogue for, and what the language select calls them."""

DEFAULT = "en"
LOCALES = Path(__file__).resolve().parent / "locales"

_current: ContextVar[str] = ContextVar("cbam_language", default=DEFAULT)
_PLACEHOLDER = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)(?:[^{}]*)\}")


@cache
def catalogue(lang: str) -> dict[str, str]:
    """The catalogue of ``lang``: key → text."""
    return json.loads((LOCALES / f"{lang}.json").read_text(encoding="utf-8"))


def placeholders(text: str) -> set[str]:
    """The names of the ``{name}`` placeholders in ``text``."""
    return set(_PLACEHOLDER.findall(text))


def language() -> str:
    """The current language ("en" or "zh")."""
    return _current.get()


def set_language(lang: str | None) -> str:
    """Make ``lang`` the current language (an unknown one: English). Returns the language set."""
    lang = lang if lang in LANGUAGES else DEFAULT
    _current.set(lang)
    return lang


@contextmanager
def use(lang: str) -> Iterator[str]:
    """The current language is ``lang`` inside the ``with`` block."""
    token = _current.set(lang if lang in LANGUAGES else DEFAULT)
    try:
        yield _current.get()
    finally:
        _current.reset(token)


def t(key: str, /, **values) -> str:
    """The text of ``key`` in the current language, its ``{name}`` placeholders filled from ``values``.
    Without values the text is returned as it is (so literal braces need no escaping there)."""
    text = catalogue(language()).get(key)
    if text is None:
        text = catalogue(DEFAULT).get(key, key)
    return text.format(**values) if values else text
