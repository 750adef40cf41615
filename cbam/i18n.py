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

What ``t`` returns is a ``Text``: a ``str`` that remembers its key and values, so that a message kept
for later (an error in the session state, a cached error of the server's own model) can be worded
again in the language of the run that shows it: ``again(message)``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path

__all__ = ["LANGUAGES", "DEFAULT", "t", "term", "use", "set_language", "language", "catalogue", "placeholders", "Text",
           "again"]

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


class Text(str):
    """A worded text (what ``t`` returns): a ``str``, with the ``key`` and ``values`` it was worded from."""

    key: str
    values: dict

    def __new__(cls, text: str, key: str, values: dict) -> Text:
        made = super().__new__(cls, text)
        made.key, made.values = key, values
        return made

    def __reduce__(self):
        """Copied and pickled as what it is (``copy.deepcopy`` of a chart's spec, ``st.cache_data``)."""
        return (Text, (str(self), self.key, self.values))


def t(key: str, /, **values) -> Text:
    """The text of ``key`` in the current language, its ``{name}`` placeholders filled from ``values``.
    Without values the text is returned as it is (so literal braces need no escaping there)."""
    text = catalogue(language()).get(key)
    if text is None:
        text = catalogue(DEFAULT).get(key, key)
    return Text(text.format(**values) if values else text, key, values)


def term(kind: str, name: str) -> str:
    """A name of the catalogues' ``kind`` (a metric, an ablation axis or setting: key ``kind.name``) in the
    current language; a name they do not know as it is, with "_" as a space."""
    key = f"{kind}.{name}"
    return t(key) if key in catalogue(DEFAULT) else name.replace("_", " ")


def _worded(value: object) -> Text | None:
    """The ``Text`` that ``value`` is, or that an exception was raised with; else None."""
    if isinstance(value, BaseException) and len(value.args) == 1:
        value = value.args[0]
    return value if isinstance(value, Text) else None


def again(message: object) -> str:
    """``message`` in the current language: a ``Text`` (or an exception raised with one) worded again
    from its key, its values that are ``Text`` too; anything else as ``str(message)``."""
    text = _worded(message)
    if text is None:
        return str(message)
    return t(text.key, **{name: again(value) if _worded(value) is not None else value
                          for name, value in text.values.items()})
