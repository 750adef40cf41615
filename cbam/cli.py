"""The ``python -m cbam`` command line (also installed as ``cbam-lab``).

    python -m cbam train --preset demo [--device cuda] [--out DIR] [--seed S] [--set FIELD=VALUE ...]
    python -m cbam evaluate --model demo --samples 2000 --seed 1000000 --json
    python -m cbam ablate --seeds 0 1 2
    python -m cbam models [--model-code FILE.py:FUNCTION [--weights PATH]]
    python -m cbam inspect IMAGE --out DIR [--model demo] [--layer L] [--ratio R] [--kernel K] [--device D]
    python -m cbam inspect IMAGE --out DIR --model-code FILE.py:FUNCTION [--weights PATH] [--input-size N]
                                          [--mean R G B --std R G B]

``--lang zh`` (before or after the command) writes the figures and the messages for people in Chinese.

Each subcommand is one ``Command``: a name, a one-line help, a function that adds its arguments to
its sub-parser, and a function that runs it and returns the exit status. To add a subcommand
(say ``inspect``), write those two functions and append a ``Command`` to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import i18n

__all__ = ["Command", "COMMANDS", "build_parser", "main"]


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    description: str = ""


def _setup_logging(verbose: bool = True) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------


def _add_train_arguments(p: argparse.ArgumentParser) -> None:
    from .train import PRESETS

    p.add_argument("--preset", default="demo", choices=sorted(PRESETS),
                   help="the recipe: 'demo' (the shipped demo model), 'baseline' (no attention), an "
                        "ablation variant (same name as in the zoo), or 'tiny' (seconds, for tests)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:1, ...")
    p.add_argument("--out", type=Path, default=None,
                   help="directory for NAME.pt, NAME.json and NAME.log (default runs/PRESET-seedS)")
    p.add_argument("--name", default=None, help="file name stem of the outputs (default: the preset's name)")
    p.add_argument("--seed", type=int, default=None, help="training seed (default: the preset's, 0)")
    p.add_argument("--epochs", type=int, default=None, help="override the preset's number of epochs")
    p.add_argument("--steps-per-epoch", type=int, default=None, help="override the preset's steps per epoch")
    p.add_argument("--batch-size", type=int, default=None, help="override the preset's batch size")
    p.add_argument("--lr", type=float, default=None, help="override the preset's peak learning rate")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default 2)")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override any other TrainConfig field, e.g. --set spatial_lr_scale=5 --set min_hidden=1 "
                        "(repeatable; see cbam/train.py)")
    p.add_argument("--eval-samples", type=int, default=2000,
                   help="held-out images to evaluate on after training (0 skips the evaluation)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def _run_train(args: argparse.Namespace) -> int:
    from .train import get_preset, train_and_save

    _setup_logging()
    overrides = {
        "device": args.device,
        "seed": args.seed,
        "epochs": args.epochs,
        "steps_per_epoch": args.steps_per_epoch,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "num_threads": args.threads,
    }
    config = get_preset(args.preset).replace(**{k: v for k, v in overrides.items() if v is not None})
    try:
        config = config.replace(**_config_settings(config, args.set))
        config.validate()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = args.out or Path("runs") / f"{args.preset}-seed{config.seed}"
    meta = train_and_save(config, out, name=args.name or args.preset, eval_samples=args.eval_samples,
                          progress=not args.no_progress)
    summary = {
        "weights": str(out / meta["weights"]),
        "sha256": meta["sha256"],
        "seconds": round(meta["training"]["seconds"], 1),
        **{k: meta["metrics"][k] for k in ("accuracy", "pointing_game") if k in meta["metrics"]},
    }
    print(json.dumps(summary, indent=2))
    shipped = _shipped_sha256(args.name or args.preset)
    if shipped is not None:
        same = shipped == meta["sha256"]
        print(f"shipped model {args.name or args.preset!r}: " + ("identical weights (same SHA-256)" if same else
              "different SHA-256 (expected unless the configuration, torch build and thread count all match)"),
              file=sys.stderr)
    return 0


def _config_settings(config, settings: list[str]) -> dict:
    """``["field=value", ...]`` as TrainConfig overrides, each value converted to the field's type."""
    import dataclasses

    types = {f.name: type(getattr(config, f.name)) for f in dataclasses.fields(config)}
    changes = {}
    for setting in settings:
        name, sep, text = setting.partition("=")
        if not sep or name not in types:
            raise ValueError(f"--set takes FIELD=VALUE with a TrainConfig field, got {setting!r}; "
                             f"fields: {', '.join(types)}")
        kind = types[name]
        if kind is type(None):  # an optional number left unset (spatial_weight_decay)
            kind = float
        try:
            if kind is bool:
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                value = text.lower() in ("true", "1")
            elif kind is tuple:
                value = tuple(int(v) if v.strip().isdigit() else v.strip() for v in text.split(","))
            else:
                value = kind(text)
        except ValueError:
            raise ValueError(f"--set {name}: {text!r} is not a valid {kind.__name__}") from None
        changes[name] = value
    return changes


def _shipped_sha256(name: str) -> str | None:
    from .zoo import UnknownModelError, get_card

    try:
        card = get_card(name)
    except UnknownModelError:
        return None
    return card.sha256


# --------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------


def _add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    from .data import EVAL_SEED

    p.add_argument("--model", default="demo", help="a trained zoo model (see `python -m cbam models`)")
    p.add_argument("--samples", type=int, default=2000, help="number of held-out images (default 2000)")
    p.add_argument("--seed", type=int, default=EVAL_SEED,
                   help=f"image stream to evaluate on (default {EVAL_SEED}; seeds below {EVAL_SEED} are "
                        "training streams)")
    p.add_argument("--tolerance", type=float, default=0.0, help="pointing-game tolerance in pixels (default 0)")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--device", default="cpu")
    p.add_argument("--json", action="store_true", help="print one JSON object (and nothing else on stdout)")


def _run_evaluate(args: argparse.Namespace) -> int:
    import torch

    from .data import HELDOUT_SEED_START
    from .metrics import attention_health_on_images, evaluate_model
    from .samples import probe_inputs
    from .zoo import load_model

    torch.set_num_threads(min(2, torch.get_num_threads()))
    model, card = load_model(args.model, args.device)
    if args.seed < HELDOUT_SEED_START:
        print(f"warning: seed {args.seed} is a training stream; held-out seeds start at {HELDOUT_SEED_START}",
              file=sys.stderr)
    result = evaluate_model(model, samples=args.samples, seed=args.seed, image_size=card.input_size,
                            batch_size=args.batch_size, tolerance=args.tolerance, device=args.device)
    # The same health check on images that are not shapes at all: the bundled samples and a few more.
    probes = {name: x.to(args.device) for name, x in probe_inputs(card.input_size, card.mean, card.std).items()}
    result = {"model": card.name, **result, "other_images": attention_health_on_images(model, probes)}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{card.title}: accuracy {result['accuracy']:.4f} on {result['samples']} images of seed {args.seed}")
    print(f"target area (chance level of mass on target): {result['target_area']:.3f}")
    for block, scores in result["attention"].items():
        line = (f"  {block:24s} {scores['map_size'][0]:3d}×{scores['map_size'][1]:<3d} pointing game "
                f"{scores['pointing_game']:.3f}   mass on target {scores['mass_on_target']:.3f}")
        if "dead_channel_share" in scores:
            line += (f"   dead channel attention {scores['dead_channel_share']:.1%}"
                     f"   flat mask {scores['flat_mask_share']:.1%}")
        print(line)
    if result["other_images"]:
        print(f"on the {len(probes)} bundled samples and other images (cbam.samples.probe_inputs):")
    for block, health in result["other_images"].items():
        print(f"  {block:24s} dead channel attention on {', '.join(health['dead_channel']) or 'none'}; "
              f"flat mask on {', '.join(health['flat_mask']) or 'none'}")
    return 0


# --------------------------------------------------------------------------------------------
# ablate
# --------------------------------------------------------------------------------------------


def _add_ablate_arguments(p: argparse.ArgumentParser) -> None:
    from .train import VARIANTS

    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    p.add_argument("--models", nargs="+", default=None, choices=list(VARIANTS),
                   help="which rows to train (default: all)")
    p.add_argument("--runs", type=Path, default=Path("runs/ablations"),
                   help="directory for every run's weights and metrics (runs already there are skipped)")
    p.add_argument("--ship", type=Path, default=None,
                   help="also copy the seed-0 model of each row here (e.g. assets/models)")
    p.add_argument("--summarize", type=Path, default=None,
                   help="only write the mean ± std over the runs found to this JSON file (e.g. "
                        "assets/models/ablations.json); trains nothing")
    p.add_argument("--eval-samples", type=int, default=2000)
    p.add_argument("--threads", type=int, default=None)


def _run_ablate(args: argparse.Namespace) -> int:
    from .train import run_ablations, summarize_ablations

    _setup_logging()
    if args.summarize is not None:
        summary = summarize_ablations(args.runs, args.summarize)
        print(json.dumps(summary["rows"], indent=2))
        return 0
    run_ablations(args.models, args.seeds, args.runs, ship_dir=args.ship, eval_samples=args.eval_samples,
                  num_threads=args.threads)
    return 0


# --------------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------------


def _add_model_code_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model-code", default=None, metavar="FILE.py:FUNCTION",
                   help="your own network: FUNCTION() in FILE.py builds it (trusted local code: the file is "
                        "imported); its CBAM blocks of any known implementation are adopted (cbam.adopt)")
    p.add_argument("--weights", type=Path, default=None,
                   help="with --model-code: a weights file loaded into that network (strict; a CBAM-ResNet in "
                        "the authors', pytorchcv's or timm's layout is converted)")


def _network_from_code(args: argparse.Namespace, **card_options):
    """(model, card, adopted) for --model-code, printing adopt's warnings as one line each."""
    import warnings

    from .usercode import network_from_code

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = network_from_code(args.model_code, args.weights, **card_options)
    for warning in caught:
        print(f"warning: {warning.message}", file=sys.stderr)
    return result


def _add_models_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print a JSON list")
    _add_model_code_arguments(p)


def _run_models(args: argparse.Namespace) -> int:
    from .zoo import model_cards

    if args.weights is not None and args.model_code is None:
        print("error: --weights goes with --model-code", file=sys.stderr)
        return 2
    if args.model_code is not None:
        return _run_models_of_code(args)
    cards = model_cards()
    if args.json:
        print(json.dumps([{"name": c.name, "title": c.title, "trained": c.trained, "metrics": c.metrics}
                          for c in cards]))
        return 0
    for card in cards:
        acc = card.metrics.get("accuracy")
        print(f"{card.name:28s} {card.title}" + (f"  [accuracy {acc:.3f}]" if acc is not None else ""))
    return 0


def _run_models_of_code(args: argparse.Namespace) -> int:
    from .explore import block_config

    try:
        model, card, adopted = _network_from_code(args)
    except ValueError as error:  # ModelCodeError, CheckpointError: one line for a person
        print(f"error: {error}", file=sys.stderr)
        return 2
    rows = [{"block": name, "implementation": implementation,
             **block_config(model.get_submodule(name))} for name, implementation in adopted.items()]
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{card.title}: {len(rows)} CBAM block(s)")
    for row in rows:
        spatial = (f"k={row['kernel_size']} {row['spatial_pool_order']}" + (" +BN" if row["spatial_batch_norm"] else "")
                   if row["spatial"] else "no spatial attention")
        print(f"  {row['block']:28s} {row['implementation']:10s} C={row['channels']} r={row['reduction_ratio']} "
              f"mlp_bias={row['mlp_bias']} pools={'+'.join(row['pool_types'])} {spatial} {row['arrangement']}")
    return 0


# --------------------------------------------------------------------------------------------
# inspect
# --------------------------------------------------------------------------------------------


def _add_inspect_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("image", help="the image file (PNG, JPEG, WebP, BMP, GIF or TIFF)")
    p.add_argument("--out", type=Path, required=True, help="folder for the PNG figures, trace.npz, blocks.csv, summary.json")
    p.add_argument("--model", default=None, help="a model of the zoo (see 'python -m cbam models'; default demo)")
    _add_model_code_arguments(p)
    p.add_argument("--input-size", type=int, default=224,
                   help="with --model-code: the image is cropped to a square and resized to N × N (default 224)")
    p.add_argument("--mean", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                   help="with --model-code: per-channel mean of the normalisation (default ImageNet's)")
    p.add_argument("--std", type=float, nargs=3, default=None, metavar=("R", "G", "B"),
                   help="with --model-code: per-channel standard deviation (default ImageNet's)")
    p.add_argument("--layer", default=None, help="the CBAM block, e.g. stages.3.cbam (default: the last)")
    p.add_argument("--ratio", type=int, default=None, help="reduction ratio r (default: the block's own)")
    p.add_argument("--kernel", type=int, default=None, help="spatial kernel size k, odd (default: the block's own)")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or mps")
    p.add_argument("--alpha", type=float, default=0.55, help="opacity of masks drawn over the image (0..1)")


def _run_inspect(args: argparse.Namespace) -> int:
    from .images import ImageError
    from .report import inspect_image
    from .zoo import IMAGENET_MEAN, IMAGENET_STD, UnknownModelError

    if args.model is not None and args.model_code is not None:
        print("error: give either --model (a zoo model) or --model-code (your own), not both", file=sys.stderr)
        return 2
    if args.model_code is None and args.weights is not None:
        print("error: --weights goes with --model-code", file=sys.stderr)
        return 2
    try:
        network = {"model_name": args.model or "demo"}
        if args.model_code is not None:
            model, card, _ = _network_from_code(args, input_size=args.input_size, mean=args.mean or IMAGENET_MEAN,
                                                std=args.std or IMAGENET_STD)
            network = {"model": model, "card": card}
        summary = inspect_image(args.image, args.out, **network, layer=args.layer, ratio=args.ratio,
                                kernel=args.kernel, device=args.device, alpha=args.alpha)
    except (ImageError, UnknownModelError, ValueError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    for note in summary["notes"]:
        print(f"note: {note}", file=sys.stderr)
    print(f"wrote {len(summary['files'])} files to {args.out}: " + ", ".join(summary["files"]))
    return 0


COMMANDS: list[Command] = [
    Command("train", "train a network on cluttered shapes (reproduces the shipped models)",
            _add_train_arguments, _run_train,
            "Train the small CBAM network (or the baseline) on the cluttered-shapes task, evaluate it on "
            "held-out images, and write NAME.pt, NAME.json and NAME.log to --out."),
    Command("evaluate", "accuracy and attention scores of a zoo model on held-out images",
            _add_evaluate_arguments, _run_evaluate,
            "Accuracy and, for every CBAM block, the pointing game and mass on target of its spatial mask "
            "(Grad-CAM of the last stage for networks without CBAM), and the share of the images on which the "
            "block's channel attention is dead or its mask flat (also on the bundled samples and a few other "
            "images). See cbam/metrics.py for the definitions."),
    Command("ablate", "train the ablation rows over several seeds and summarise them",
            _add_ablate_arguments, _run_ablate,
            "Train every ablation row (pooling, kernel, arrangement, ratio, baseline) for each seed, then "
            "summarise mean ± std with --summarize. See docs/ablations.md."),
    Command("models", "list the models of the zoo, or the CBAM blocks of your own network", _add_models_arguments,
            _run_models,
            "List the models of the zoo; with --model-code FILE.py:FUNCTION, the CBAM blocks found in the network "
            "that FUNCTION() builds and what each was (blog, authors, timm, pytorchcv, tutorial, cbam)."),
    Command("inspect", "write the app's figures, the trace and statistics for one image",
            _add_inspect_arguments, _run_inspect,
            "Run a zoo model (or your own, --model-code FILE.py:FUNCTION) on IMAGE and write, for one CBAM block "
            "with the chosen r and k, the same figures "
            "as the app (PNG), the block's trace (trace.npz, field names as in cbam.trace), the statistics "
            "of every block (blocks.csv) and a JSON summary."),
]


def _language_option(default: str | None) -> argparse.ArgumentParser:
    """The ``--lang`` option, for the main parser (with the default) and every sub-parser (without one,
    so that ``--lang`` given before the command is kept)."""
    option = argparse.ArgumentParser(add_help=False)
    option.add_argument("--lang", default=default if default is not None else argparse.SUPPRESS, metavar="LANG",
                        help=f"language of the figures and messages: {' or '.join(i18n.LANGUAGES)} (default en)")
    return option


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cbam",
        description="CBAM Lab: inspect an image with CBAM, and train, evaluate and list the networks of the zoo.",
        parents=[_language_option(i18n.DEFAULT)],
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = subparsers.add_parser(command.name, help=command.help, description=command.description or command.help,
                                    parents=[_language_option(None)])
        command.add_arguments(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.lang not in i18n.LANGUAGES:
        print(f"error: --lang takes {' or '.join(i18n.LANGUAGES)}, got {args.lang!r}", file=sys.stderr)
        return 2
    with i18n.use(args.lang):
        return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
