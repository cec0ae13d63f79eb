"""Command-line options shared by the commands that describe a training run."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from service.config import TrainConfig, build_config, load_config_file
from service.data import BUILTIN_DATASETS
from workers.network import DTYPES, HIDDEN_ACTIVATIONS, LOSSES, OUTPUT_ACTIVATIONS

EXIT_USAGE = 2
DEFAULT_METRICS_PORT = 9464


class OneLineParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line and a hint, no usage dump."""

    def error(self, message: str) -> NoReturn:
        self.exit(
            EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n"
        )


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """The options of a training request, shared by every command that sends one.

    Defaults are left out of the namespace (``SUPPRESS``) so that a
    configuration file can supply them and explicit options can override it.
    """
    unset = argparse.SUPPRESS
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default=unset,
        metavar="NAME|PATH",
        help=f"{', '.join(BUILTIN_DATASETS)}, or a .npz (x, y) or .csv file "
        "(default: digits)",
    )
    data.add_argument(
        "--target-column",
        default=unset,
        metavar="INDEX|NAME",
        help="CSV column holding the target (default: the last)",
    )
    data.add_argument(
        "--val-fraction",
        type=float,
        default=unset,
        help="share held out for validation, 0 for none (default: 0.2)",
    )
    data.add_argument(
        "--standardize",
        action="store_true",
        default=unset,
        help="scale inputs to mean 0 and variance 1 (fitted on the training split)",
    )
    data.add_argument(
        "--no-shuffle",
        dest="shuffle",
        action="store_false",
        default=unset,
        help="visit samples in file order",
    )

    model = parser.add_argument_group("model")
    model.add_argument(
        "--hidden", type=int, default=unset, help="hidden units (default: 64)"
    )
    model.add_argument(
        "--hidden-activation",
        choices=HIDDEN_ACTIVATIONS,
        default=unset,
        help="default: relu",
    )
    model.add_argument(
        "--output-activation",
        choices=OUTPUT_ACTIVATIONS,
        default=unset,
        help="default: softmax for labels, identity for float targets",
    )
    model.add_argument(
        "--loss",
        choices=LOSSES,
        default=unset,
        help="default: cross_entropy for labels, mse for float targets",
    )
    model.add_argument(
        "--dtype", choices=DTYPES, default=unset, help="default: float32"
    )
    model.add_argument(
        "--init",
        default=unset,
        metavar="FILE.npz",
        help="start from W1, b1, W2, b2 in this file",
    )

    optim = parser.add_argument_group("optimizer")
    optim.add_argument(
        "--optimizer",
        choices=("sgd", "adam", "adamw", "rmsprop"),
        default=unset,
        help="default: adam",
    )
    optim.add_argument(
        "--lr",
        type=float,
        default=unset,
        help="learning rate (default: 0.05 for sgd, 0.001 otherwise)",
    )
    optim.add_argument("--momentum", type=float, default=unset, help="sgd, rmsprop")
    optim.add_argument("--dampening", type=float, default=unset, help="sgd")
    optim.add_argument("--nesterov", action="store_true", default=unset, help="sgd")
    optim.add_argument(
        "--weight-decay",
        type=float,
        default=unset,
        help="default: 0.01 for adamw, 0 otherwise",
    )
    optim.add_argument(
        "--betas",
        type=float,
        nargs=2,
        default=unset,
        metavar=("B1", "B2"),
        help="adam, adamw (default: 0.9 0.999)",
    )
    optim.add_argument("--eps", type=float, default=unset, help="default: 1e-8")
    optim.add_argument(
        "--amsgrad", action="store_true", default=unset, help="adam, adamw"
    )
    optim.add_argument(
        "--alpha", type=float, default=unset, help="rmsprop (default: 0.99)"
    )
    optim.add_argument("--centered", action="store_true", default=unset, help="rmsprop")

    run = parser.add_argument_group("run")
    run.add_argument("--epochs", type=int, default=unset, help="default: 20")
    run.add_argument(
        "--batch-size",
        type=int,
        default=unset,
        help="global batch size; at or above the training set size means full "
        "batch (default: 64)",
    )
    run.add_argument(
        "--workers", type=int, default=unset, help="worker actors (default: 2)"
    )
    run.add_argument("--seed", type=int, default=unset, help="default: 0")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML or JSON file of these options; command-line options win",
    )


def add_metrics_options(parser: argparse.ArgumentParser) -> None:
    """Where the Prometheus endpoint listens."""
    group = parser.add_argument_group("metrics")
    group.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        help="address of the /metrics endpoint (default: %(default)s)",
    )
    group.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help=f"port of the /metrics endpoint, 0 for none (default: "
        f"{DEFAULT_METRICS_PORT})",
    )


def config_from_args(
    args: argparse.Namespace, ignored: set[str] = frozenset()
) -> TrainConfig:
    """Merge a configuration file with the explicit options; options win."""
    settings: dict[str, Any] = {}
    if args.config:
        settings.update(load_config_file(args.config))
    ignored = {"command", "handler", "parser", "config", *ignored}
    settings.update({k: v for k, v in vars(args).items() if k not in ignored})
    return build_config(**settings)
