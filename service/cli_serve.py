"""``gradpool serve``: the gRPC service in the foreground."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from service.cli_options import DEFAULT_METRICS_PORT, add_metrics_options
from service.config import ConfigError
from service.limits import Limits
from service.local_ray import connect_ray
from service.metrics import DEFAULT_RETENTION_SECONDS

LIMIT_HELP = {
    "max_message_bytes": "largest gRPC message received or sent, in bytes",
    "max_tensor_elements": "largest tensor or data set array, in elements",
    "max_upload_bytes": "largest uploaded data set file, in bytes",
    "max_hidden": "largest hidden layer a request may ask for",
    "max_workers": "most workers one job may ask for",
    "max_epochs": "most epochs one job may ask for",
    "max_active_jobs": "most jobs pending or running at once",
    "max_running_jobs": "most jobs training at once",
    "max_watchers": "most WatchJob streams open at once",
}


def add_serve_command(commands) -> None:
    """Register ``gradpool serve``."""
    serve = commands.add_parser(
        "serve",
        help="run the gRPC training service",
        description="Serve gradpool.v1.Trainer over gRPC, with jobs that "
        "survive a restart.",
    )
    add_serve_options(serve)
    serve.set_defaults(handler=run_serve)


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
    add_metrics_options(parser)
    add(
        "--metrics-retention",
        type=float,
        default=DEFAULT_RETENTION_SECONDS,
        metavar="SECONDS",
        help="how long a finished job's series stay (default: %(default)s)",
    )
    limits = parser.add_argument_group("limits")
    for name, value in vars(defaults).items():
        limits.add_argument(
            "--" + name.replace("_", "-"),
            type=int,
            default=value,
            metavar="N",
            help=f"{LIMIT_HELP[name]} (default: %(default)s)",
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
        metrics_host=args.metrics_host,
        metrics_port=(
            DEFAULT_METRICS_PORT if args.metrics_port is None else args.metrics_port
        ),
        metrics_retention_seconds=args.metrics_retention,
    )
    connect_ray(args.ray_address, 0)
    server = Server(settings)
    if args.port_file:
        Path(args.port_file).write_text(f"{server.port}\n")
    print(f"listening on {args.host}:{server.port}", flush=True)
    serve_until_signalled(server)
    return 0
