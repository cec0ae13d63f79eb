"""The ``gradpool`` command line."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Any

import grpc

from service.atomic import atomic_write
from service.cli_client import add_client_commands, grpc_error_line
from service.cli_options import EXIT_USAGE, OneLineParser, add_training_options
from service.config import ConfigError, TrainConfig, build_config, load_config_file
from service.data import DataError
from service.limits import Limits
from service.local_ray import connect_ray
from service.parameter_server import NonFiniteError
from service.prepare import RunPlan, prepare
from service.weights import fold_standardizer, write_weights

logger = logging.getLogger("gradpool")

EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    """The parser of every gradpool command."""
    parser = OneLineParser(
        prog="gradpool",
        description="Data-parallel training of a two-layer network on Ray.",
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser
    )

    train = commands.add_parser(
        "train",
        help="run one training job in the foreground",
        description="Train the network on a local Ray instance or a cluster.",
    )
    add_training_options(train)
    output = train.add_argument_group("output")
    output.add_argument(
        "--save",
        default=argparse.SUPPRESS,
        metavar="FILE.npz",
        help="write the final W1, b1, W2, b2 (acting on raw inputs)",
    )
    output.add_argument(
        "--summary",
        default=argparse.SUPPRESS,
        metavar="FILE.json",
        help="write final figures as JSON",
    )
    train.add_argument(
        "--ray-address",
        default=argparse.SUPPRESS,
        metavar="ADDR",
        help="Ray cluster to join, e.g. auto (default: RAY_ADDRESS, else a "
        "local instance)",
    )
    train.set_defaults(handler=run_train)

    serve = commands.add_parser(
        "serve",
        help="run the gRPC training service",
        description="Serve gradpool.v1.Trainer over gRPC, with jobs that "
        "survive a restart.",
    )
    add_serve_options(serve)
    serve.set_defaults(handler=run_serve)
    add_client_commands(commands)
    return parser


def default_data_dir() -> Path:
    """The user's state directory for gradpool (XDG_STATE_HOME)."""
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "gradpool"


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """Options of ``gradpool serve``."""
    defaults = Limits()
    add = parser.add_argument
    add(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s)",
    )
    add(
        "--port",
        type=int,
        default=50051,
        help="0 picks a free port (default: %(default)s)",
    )
    add("--port-file", metavar="FILE", help="write the port listened on to FILE")
    add(
        "--data-dir",
        type=Path,
        default=default_data_dir(),
        help="job database, checkpoints and uploads (default: %(default)s)",
    )
    add(
        "--data-root",
        type=Path,
        help="folder whose .npz and .csv files requests may name by path",
    )
    add(
        "--ray-address",
        metavar="ADDR",
        help="Ray cluster (default: RAY_ADDRESS, else local)",
    )
    add(
        "--token-file",
        metavar="FILE",
        help="require this bearer token (or GRADPOOL_TOKEN)",
    )
    add("--tls-cert", metavar="PEM", help="serve TLS with this certificate chain")
    add("--tls-key", metavar="PEM", help="private key of --tls-cert")
    add(
        "--checkpoint-interval",
        type=int,
        default=100,
        help="steps between checkpoints of each job (default: %(default)s)",
    )
    limits = parser.add_argument_group("limits")
    for name, value in vars(defaults).items():
        limits.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=value,
            help="default: %(default)s",
        )


def run_serve(args: argparse.Namespace) -> int:
    """``gradpool serve``: serve until SIGTERM or SIGINT, then exit 0."""
    from service.auth import read_token
    from service.server import Server, ServerSettings, serve_until_signalled

    limits = Limits(**{name: getattr(args, name) for name in vars(Limits())})
    for name, value in vars(limits).items():
        if value < 1:
            raise ConfigError(name, f"must be at least 1; got {value}")
    if not 0 <= args.port <= 65535:
        raise ConfigError("port", f"must be 0 to 65535; got {args.port}")
    if args.checkpoint_interval < 1:
        raise ConfigError(
            "checkpoint_interval", f"must be at least 1; got {args.checkpoint_interval}"
        )
    if args.data_root is not None and not args.data_root.is_dir():
        raise ConfigError("data_root", f"{str(args.data_root)!r} is not a directory")
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        data_root=args.data_root,
        token=read_token(args.token_file),
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        checkpoint_interval=args.checkpoint_interval,
        limits=limits,
    )
    connect_ray(args.ray_address, 0)
    server = Server(settings)
    if args.port_file:
        Path(args.port_file).write_text(f"{server.port}\n")
    print(f"listening on {args.host}:{server.port}", flush=True)
    serve_until_signalled(server)
    return 0


def config_from_args(
    args: argparse.Namespace, ignored: set[str] = frozenset()
) -> TrainConfig:
    """Merge a configuration file with the explicit options; options win."""
    settings: dict[str, Any] = {}
    if args.config:
        settings.update(load_config_file(args.config))
    ignored = {"command", "handler", "config", *ignored}
    settings.update({k: v for k, v in vars(args).items() if k not in ignored})
    return build_config(**settings)


def check_output_path(field: str, path: str | None) -> None:
    """Refuse an output path that could not be written after training."""
    if path is None:
        return
    target = Path(path)
    if target.is_dir():
        raise ConfigError(field, f"{path!r} is a directory; give a file name")
    parent = target.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise ConfigError(field, f"cannot write {path!r}: {parent} is not writable")


def finite_or_null(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite_or_null(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_null(item) for item in value]
    return value


def write_outputs(plan: RunPlan, result, save: str | None, summary: str | None) -> None:
    """Write the final weights and the summary, each atomically."""
    if save:
        params = plan.spec.unflatten(result.theta)
        if plan.standardizer is not None:
            params = fold_standardizer(params, plan.standardizer)
        write_weights(save, type(params)(*(p.astype(plan.spec.dtype) for p in params)))
    if summary:
        final = result.final
        report = {
            "final_train_loss": final.train_loss,
            "final_train_accuracy": final.train_accuracy,
            "val_loss": final.val_loss,
            "val_accuracy": final.val_accuracy,
            "steps": result.steps,
            "epochs": len(result.epochs),
            "wall_seconds": result.wall_seconds,
            "samples_per_second": result.samples_per_second,
            "history": [vars(m) for m in result.epochs],
            "config": plan.config.to_dict(),
        }
        text = json.dumps(finite_or_null(report), indent=2, allow_nan=False)
        text = text.encode()
        atomic_write(summary, lambda handle: handle.write(text))


def run_train(args: argparse.Namespace) -> int:
    """``gradpool train``: check everything, train, write the outputs."""
    config = config_from_args(args)
    check_output_path("save", config.save)
    check_output_path("summary", config.summary)
    plan = prepare(config)

    # Ray is imported only after the checks: it takes a second to import,
    # and a local instance must be configured before the import.
    connect_ray(config.ray_address, config.workers)
    import ray

    from service.progress import Progress, format_epoch
    from service.trainer import train

    steps_per_epoch = -(-len(plan.train.x) // config.batch_size)
    progress = Progress(config.epochs, steps_per_epoch)
    try:
        result = train(plan, on_step=progress.on_step, on_epoch=progress.on_epoch)
    except NonFiniteError as error:
        # Ray re-raises the actor's error with its remote traceback in the
        # message; the original exception is its cause.
        cause = getattr(error, "cause", None) or error
        print(
            f"gradpool train: error: training diverged: {cause}; nothing was "
            f"saved; lower --lr (now {plan.optimizer.lr:g}), add --standardize "
            "or raise --eps",
            file=sys.stderr,
        )
        return EXIT_FAILED
    finally:
        progress.close()
        ray.shutdown()

    write_outputs(plan, result, config.save, config.summary)
    final = format_epoch(result.final, config.epochs)
    print(
        f"done {final} wall_seconds={result.wall_seconds:.1f} "
        f"samples_per_second={result.samples_per_second:.0f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``gradpool`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return args.handler(args)
    except DataError as error:
        flag = "--" + error.field.replace("_", "-")
        print(f"gradpool {args.command}: error: {flag}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except grpc.RpcError as error:
        print(grpc_error_line(args.command, error, args.server), file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"gradpool {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
