"""Your own network, named when the server starts:

    streamlit run app.py -- --model-code FILE.py:FUNCTION [--weights PATH] [--input-size N] [--mean R G B --std R G B]

The options are the script's own command line (what follows ``--``), as ``python -m cbam inspect
--model-code`` takes them. Where no command line can be given (a Docker ``CMD`` you do not change,
Streamlit Community Cloud, tests), the environment variable ``CBAM_LAB_MODEL_CODE`` holds the same
options in one string, ``--model-code`` itself optional: ``CBAM_LAB_MODEL_CODE="mynet.py:build --input-size 128"``.
The command line wins.

The code is trusted: the person who starts the server names it (importing a file runs it). Nothing a
browser sends is ever run; uploads are weights only (ui/weights_panel.py). The network is built once per
server process (``st.cache_resource``, keyed by the options), shared by every session like the bundled
models, never changed by one, and offered as "Your model: …" in the sidebar. When it cannot be built,
``problem()`` says which case it is in one line and the other models work as before.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import shlex
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch
from torch import nn

from cbam import i18n, imagenet, usercode, zoo
from cbam.adopt import AdoptWarning
from cbam.i18n import t

ENV_VAR = "CBAM_LAB_MODEL_CODE"
APP = Path(__file__).resolve().parent.parent / "app.py"


@dataclass(frozen=True)
class Options:
    """What the command line (or ``CBAM_LAB_MODEL_CODE``) asks for."""

    spec: str
    weights: str | None = None
    input_size: int = imagenet.INPUT_SIZE
    mean: tuple[float, ...] = imagenet.MEAN
    std: tuple[float, ...] = imagenet.STD

    @property
    def name(self) -> str:
        """The model's key in the caches, the Model select and lesson links: the same for the same options."""
        return "own-" + hashlib.sha1(repr(dataclasses.astuple(self)).encode()).hexdigest()[:10]


@dataclass(frozen=True)
class OwnModel:
    """The network the options built, or why not (``failure``: the ``ModelCodeError``, worded again in a
    session's language by ``describe_current``)."""

    options: Options
    model: nn.Module | None = None
    card: zoo.ModelCard | None = None
    failure: usercode.ModelCodeError | None = None
    notes: tuple[str, ...] = ()  # cbam.adopt's warnings (as worded: i18n.again): CBAM-like modules left as they are

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def error(self) -> str | None:
        """Why it was not built, in one line of English (the server's log and the tests read it), or None."""
        return None if self.failure is None else describe(self.failure)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # argparse would print and exit the server's script run
        raise usercode.ModelCodeError("command line", message)


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="streamlit run app.py --", add_help=False, allow_abbrev=False)
    p.add_argument("--model-code", metavar="FILE.py:FUNCTION")
    p.add_argument("--weights", metavar="PATH")
    p.add_argument("--input-size", type=int, default=imagenet.INPUT_SIZE, metavar="N")
    p.add_argument("--mean", type=float, nargs=3, default=list(imagenet.MEAN), metavar=("R", "G", "B"))
    p.add_argument("--std", type=float, nargs=3, default=list(imagenet.STD), metavar=("R", "G", "B"))
    return p


def parse(args: list[str]) -> Options | None:
    """The options in ``args`` (None without any). Raises ModelCodeError ("command line")."""
    if not args:
        return None
    parsed = parser().parse_args(args)
    if parsed.model_code is None:
        raise usercode.ModelCodeError("command line", t("uc.needs_model_code"))
    if not 8 <= parsed.input_size <= 1024:
        raise usercode.ModelCodeError("command line", t("uc.input_size", size=parsed.input_size))
    if any(s <= 0 for s in parsed.std):
        raise usercode.ModelCodeError("command line", t("uc.std", std=parsed.std))
    return Options(parsed.model_code, parsed.weights, parsed.input_size, tuple(parsed.mean), tuple(parsed.std))


def _arguments() -> list[str]:
    """The app's own command line: what ``streamlit run app.py -- ARGS`` passes (Streamlit makes
    ``sys.argv`` ``[app.py, *ARGS]``); otherwise (e.g. under pytest) ``CBAM_LAB_MODEL_CODE``."""
    if sys.argv and Path(sys.argv[0]).resolve() == APP and sys.argv[1:]:
        return sys.argv[1:]
    args = shlex.split(os.environ.get(ENV_VAR, ""))
    return ["--model-code", *args] if args and not args[0].startswith("-") else args  # "FILE.py:FUNCTION ..."


def _outputs(model: nn.Module, options: Options) -> int:
    """The number of classes: the network runs once on a grey image of the input size."""
    x = torch.zeros(1, 3, options.input_size, options.input_size)
    try:
        with torch.no_grad():
            out = model(x)
    except Exception as error:  # noqa: BLE001 - the user's forward: whatever it raises is this case
        size = options.input_size
        raise usercode.ModelCodeError("forward", t("uc.forward", size=size, error=first_line(error))) from None
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 1:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise usercode.ModelCodeError("output", t("uc.output", shape=shape))
    return int(out.shape[1])


@st.cache_resource(max_entries=2, show_spinner="Loading your model…")
def _load(options: tuple) -> OwnModel:
    opts = Options(*options)
    with i18n.use("en"):  # shared by every session: kept in English, worded again for each (describe_current)
        return _build(opts)


def _build(opts: Options) -> OwnModel:
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AdoptWarning)
            model, card, _ = usercode.network_from_code(opts.spec, opts.weights, input_size=opts.input_size,
                                                         mean=opts.mean, std=opts.std)
        classes = _outputs(model, opts)
    except usercode.ModelCodeError as error:
        return OwnModel(opts, failure=error)
    notes = tuple(w.message.args[0] for w in caught if issubclass(w.category, AdoptWarning))
    card = dataclasses.replace(
        card, name=opts.name, title=f"Your model: {card.title}",
        class_names=card.class_names if len(card.class_names) == classes else (),  # unknown: shown as indices
    )
    return OwnModel(opts, model, card, notes=notes)


def first_line(error: BaseException) -> str:
    """``Type: first line of the message``: a user's exception in one line."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0]}" if text else type(error).__name__


def describe(error: usercode.ModelCodeError) -> str:
    """One line: which case it is, and why, in English (the server's log and the tests read it)."""
    with i18n.use("en"):
        return _worded(error)


def _worded(error: usercode.ModelCodeError) -> str:
    """Which case it is (``own.case.<key>``) and why, in the current language: the reason worded again
    (``i18n.again``; what the user's code or PyTorch said stays as it is)."""
    key = _case_key(error)
    case = t(f"own.case.{key}") if f"own.case.{key}" in i18n.catalogue("en") else error.kind
    return t("own.failed", case=case, error=usercode.one_line(i18n.again(error)))


def _case_key(error: usercode.ModelCodeError) -> str:
    """The catalogue key of the case (``own.case.<key>``)."""
    text = error.args[0]
    return "unreadable" if error.kind == "weights" and getattr(text, "key", "") == "uc.weights_unreadable" else error.kind


def describe_current() -> str | None:
    """Why the own model was not built, in the current language, or None."""
    own = current()
    return None if own is None or own.failure is None else _worded(own.failure)


def options() -> Options | None:
    """The options this server was started with (None: no own model). Raises ModelCodeError."""
    return parse(_arguments())


def current() -> OwnModel | None:
    """This server's own model (None when it was started without ``--model-code``), or why it failed."""
    try:
        opts = options()
    except usercode.ModelCodeError as error:
        return OwnModel(Options(""), failure=error)
    return None if opts is None else _load(dataclasses.astuple(opts))


def loaded() -> OwnModel | None:
    """The own model when it was built, else None."""
    own = current()
    return own if own is not None and own.model is not None else None


def problem() -> str | None:
    """Why the own model was not built (one line), or None."""
    own = current()
    return None if own is None else own.error
