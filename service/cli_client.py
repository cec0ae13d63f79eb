"""Commands that talk to a running ``gradpool serve``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc
import numpy as np
from google.protobuf.json_format import MessageToDict

from service.auth import read_token
from service.cli_options import add_training_options, config_from_args
from service.client import TrainerClient
from service.config import ConfigError
from service.data import BUILTIN_DATASETS, load_dataset
from service.messages import JOB_STATES
from service.proto import trainer_pb2 as pb
from service.requests import request_from_settings
from service.weights import write_weights

EXIT_FAILED = 1
CONNECTION_OPTIONS = {"server", "token_file", "tls_ca"}
ENDED = {pb.JOB_STATE_SUCCEEDED, pb.JOB_STATE_FAILED, pb.JOB_STATE_CANCELLED}


def add_connection_options(parser: argparse.ArgumentParser) -> None:
    """Where the server is and how to authenticate."""
    group = parser.add_argument_group("server")
    group.add_argument(
        "--server", default="127.0.0.1:50051", help="host:port (default: %(default)s)"
    )
    group.add_argument(
        "--token-file", metavar="FILE", help="bearer token (default: GRADPOOL_TOKEN)"
    )
    group.add_argument(
        "--tls-ca", metavar="PEM", help="connect with TLS, trusting this CA"
    )


def add_client_commands(commands) -> None:
    """Register submit, status, list, watch, cancel, predict and weights."""
    submit = commands.add_parser(
        "submit",
        help="submit a training job to a server",
        description="Submit a job; prints its id alone on standard output.",
    )
    add_training_options(submit)
    submit.add_argument("--request-id", default="", help="idempotency key")
    submit.add_argument("--wait", action="store_true", help="follow the job to its end")
    submit.set_defaults(handler=run_submit)

    for name, handler, text in (
        ("status", run_status, "show one job"),
        ("watch", run_watch, "follow a job's progress to its end"),
        ("cancel", run_cancel, "cancel a pending or running job"),
    ):
        command = commands.add_parser(name, help=text, description=text + ".")
        command.add_argument("job_id", metavar="JOB")
        command.set_defaults(handler=handler)
        add_connection_options(command)

    listing = commands.add_parser("list", help="list jobs, newest first")
    listing.add_argument(
        "--state",
        action="append",
        type=str.lower,
        choices=[name.lower() for name in JOB_STATES],
        help="only jobs in this state (repeatable)",
    )
    listing.set_defaults(handler=run_list)

    predict = commands.add_parser("predict", help="compute a job's outputs")
    predict.add_argument("job_id", metavar="JOB")
    predict.add_argument(
        "--input", required=True, help=".npz (array x) or .csv file of inputs"
    )
    predict.add_argument("--output", help="write y_hat as .npy instead of printing")
    predict.set_defaults(handler=run_predict)

    weights = commands.add_parser("weights", help="download a job's W1, b1, W2, b2")
    weights.add_argument("job_id", metavar="JOB")
    weights.add_argument("--output", required=True, metavar="FILE.npz")
    weights.set_defaults(handler=run_weights)

    for parser in (submit, listing, predict, weights):
        add_connection_options(parser)


def connect(args: argparse.Namespace) -> TrainerClient:
    """A client for the server the options name."""
    if args.tls_ca and not Path(args.tls_ca).is_file():
        raise ConfigError("tls_ca", f"file {args.tls_ca!r} does not exist")
    return TrainerClient(args.server, read_token(args.token_file), args.tls_ca)


def describe(job: pb.Job) -> str:
    """One key=value line about a job."""
    parts = [
        f"job={job.job_id}",
        f"state={pb.JobState.Name(job.state).removeprefix('JOB_STATE_')}",
        f"step={job.step}/{job.total_steps}",
    ]
    if job.HasField("metrics"):
        metrics = job.metrics
        parts.append(f"epoch={metrics.epoch}")
        parts.append(f"loss={metrics.train_loss:.4f}")
        if metrics.HasField("val_accuracy"):
            parts.append(f"val_acc={metrics.val_accuracy:.4f}")
    if job.error:
        parts.append(f"error={job.error!r}")
    return " ".join(parts)


def follow(client: TrainerClient, job_id: str) -> int:
    """Show a job's progress until it ends; exit status 0 only on success."""
    from tqdm import tqdm

    bar = None
    last = None
    for event in client.watch(job_id):
        kind = event.WhichOneof("event")
        if kind == "job":
            last = event.job
            if bar is None and last.total_steps:
                bar = tqdm(
                    total=last.total_steps,
                    initial=last.step,
                    unit="step",
                    disable=not sys.stderr.isatty(),
                )
        elif kind == "step" and bar is not None:
            bar.update(event.step.step - bar.n)
            bar.set_postfix(loss=f"{event.step.loss:.4f}", refresh=False)
        elif kind == "epoch":
            metrics = event.epoch.metrics
            line = f"epoch={metrics.epoch} loss={metrics.train_loss:.4f}"
            if metrics.HasField("val_accuracy"):
                line += f" val_acc={metrics.val_accuracy:.4f}"
            (bar.write if bar is not None else print)(line, file=sys.stderr)
    if bar is not None:
        bar.close()
    if last is None:
        return EXIT_FAILED
    print(describe(last), file=sys.stderr)
    return 0 if last.state == pb.JOB_STATE_SUCCEEDED else EXIT_FAILED


def run_submit(args: argparse.Namespace) -> int:
    """``gradpool submit``: send the request, print the job id."""
    config = config_from_args(args, ignored=CONNECTION_OPTIONS | {"request_id", "wait"})
    settings = {name: getattr(config, name) for name in config.explicit}
    if config.dataset not in BUILTIN_DATASETS:
        # The same checks as gradpool train, before anything is sent.
        load_dataset(config.dataset, config.target_column)
    with connect(args) as client:
        request = request_from_settings(
            settings, lambda path: client.upload(path).dataset_id
        )
        reply = client.submit(request, args.request_id)
        print(reply.job.job_id, flush=True)
        return follow(client, reply.job.job_id) if args.wait else 0


def run_status(args: argparse.Namespace) -> int:
    """``gradpool status JOB``: the job as JSON."""
    with connect(args) as client:
        job = client.get(args.job_id)
    values = MessageToDict(job, preserving_proto_field_name=True)
    values.pop("request", None)
    print(json.dumps(values, indent=2))
    return 0


def run_list(args: argparse.Namespace) -> int:
    """``gradpool list``: one line per job."""
    states = tuple(JOB_STATES[name.upper()] for name in args.state or ())
    with connect(args) as client:
        for job in client.list(states):
            print(describe(job))
    return 0


def run_watch(args: argparse.Namespace) -> int:
    """``gradpool watch JOB``."""
    with connect(args) as client:
        return follow(client, args.job_id)


def run_cancel(args: argparse.Namespace) -> int:
    """``gradpool cancel JOB``."""
    with connect(args) as client:
        print(describe(client.cancel(args.job_id)))
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """``gradpool predict JOB --input FILE``."""
    path = Path(args.input)
    if path.suffix == ".npz" and path.is_file():
        with np.load(path) as archive:
            if "x" not in archive.files:
                raise ConfigError("input", f"{path} has no array 'x'")
            x = archive["x"]
    elif path.suffix == ".csv" and path.is_file():
        first = path.read_text().split("\n", 1)[0]
        header = any(c.isalpha() and c not in "eE" for c in first)
        try:
            x = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=int(header))
        except ValueError as error:
            raise ConfigError("input", f"cannot read {path}: {error}") from None
    else:
        raise ConfigError("input", f"{args.input!r} is not an existing .npz or .csv")
    with connect(args) as client:
        y_hat, _ = client.predict(args.job_id, np.asarray(x, dtype=np.float64))
    if args.output:
        np.save(args.output, y_hat)
    else:
        np.savetxt(sys.stdout, y_hat, fmt="%.6g")
    return 0


def run_weights(args: argparse.Namespace) -> int:
    """``gradpool weights JOB --output FILE.npz``."""
    with connect(args) as client:
        params, step = client.parameters(args.job_id)
    write_weights(args.output, params)
    print(f"wrote {args.output} step={step}")
    return 0


def grpc_error_line(command: str, error: grpc.RpcError, server: str) -> str:
    """One line for a failed call."""
    code = error.code()
    details = error.details() or ""
    unreachable = not details.startswith(("job_id:", "request:"))
    if code == grpc.StatusCode.UNAVAILABLE and unreachable:
        return (
            f"gradpool {command}: error: cannot reach a server at {server}; is "
            "gradpool serve running there? (--server HOST:PORT)"
        )
    return f"gradpool {command}: error: {code.name}: {details}"
