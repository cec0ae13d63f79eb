"""``gradpool serve``: the gRPC server process and its graceful shutdown."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from service.auth import TokenInterceptor
from service.config import ConfigError
from service.datasets import DatasetStore
from service.grpc_metrics import MetricsInterceptor
from service.grpc_server import TrainerServicer
from service.jobs import JobManager
from service.limits import Limits
from service.metrics import DEFAULT_RETENTION_SECONDS, Metrics
from service.proto import trainer_pb2 as pb
from service.proto import trainer_pb2_grpc as pb_grpc

logger = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Trainer"].full_name


@dataclass(frozen=True)
class ServerSettings:
    """Everything ``gradpool serve`` is told on its command line."""

    host: str = "127.0.0.1"
    port: int = 50051
    data_dir: Path = Path(".")
    data_root: Path | None = None
    token: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    checkpoint_interval: int = 100
    limits: Limits = Limits()
    threads: int = 64
    shutdown_grace_seconds: float = 10.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464  # 0: no metrics endpoint
    metrics_retention_seconds: float = DEFAULT_RETENTION_SECONDS


def server_credentials(cert: str | None, key: str | None):
    """TLS credentials from PEM files, or None for a plaintext server."""
    if not cert and not key:
        return None
    if not (cert and key):
        raise ConfigError("tls_cert", "TLS needs both --tls-cert and --tls-key")
    pairs = []
    for field, path in (("tls_cert", cert), ("tls_key", key)):
        if not Path(path).is_file():
            raise ConfigError(field, f"file {path!r} does not exist")
    pairs.append((Path(key).read_bytes(), Path(cert).read_bytes()))
    return grpc.ssl_server_credentials(pairs)


class Server:
    """A started gRPC server with its job manager."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        limits = settings.limits
        credentials = server_credentials(settings.tls_cert, settings.tls_key)
        self.metrics = Metrics(retention_seconds=settings.metrics_retention_seconds)
        self.metrics_server = None
        if settings.metrics_port:
            self.metrics_server = self.metrics.serve(
                settings.metrics_host, settings.metrics_port
            )
        self.manager = JobManager(
            settings.data_dir, limits, settings.checkpoint_interval, self.metrics
        )
        datasets = DatasetStore(
            settings.data_dir / "datasets",
            settings.data_root,
            limits.max_upload_bytes,
            limits.max_tensor_elements,
        )
        interceptors = [MetricsInterceptor(self.metrics)]
        if settings.token:
            interceptors.append(TokenInterceptor(settings.token))
        self.grpc = grpc.server(
            futures.ThreadPoolExecutor(
                max_workers=settings.threads, thread_name_prefix="rpc"
            ),
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limits.max_message_bytes),
                ("grpc.max_send_message_length", limits.max_message_bytes),
                ("grpc.so_reuseport", 0),
            ],
            # Every open watch stream holds a thread; beyond this many calls
            # clients get RESOURCE_EXHAUSTED instead of waiting forever.
            maximum_concurrent_rpcs=settings.threads,
        )
        pb_grpc.add_TrainerServicer_to_server(
            TrainerServicer(self.manager, datasets, limits), self.grpc
        )
        self.health = health.HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.grpc)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.grpc
        )
        address = f"{settings.host}:{settings.port}"
        if credentials is None:
            self.port = self._bind(self.grpc.add_insecure_port, address)
        else:
            self.port = self._bind(self.grpc.add_secure_port, address, credentials)
        if self.port == 0:
            raise ConfigError("port", f"cannot listen on {address}; is it in use?")

    @staticmethod
    def _bind(bind, address: str, *credentials) -> int:
        try:
            return bind(address, *credentials)
        except RuntimeError:
            # grpcio raises rather than returning 0 when the port is taken.
            raise ConfigError(
                "port", f"cannot listen on {address}; is it in use?"
            ) from None

    def start(self) -> None:
        """Recover stored jobs and start serving."""
        self.manager.start()
        self.grpc.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        logger.info("listening host=%s port=%d", self.settings.host, self.port)

    def stop(self) -> None:
        """Stop accepting calls, checkpoint running jobs, release their actors."""
        logger.info("shutting down")
        self.health.enter_graceful_shutdown()
        stopped = self.grpc.stop(self.settings.shutdown_grace_seconds)
        self.manager.shutdown()
        stopped.wait()
        self.manager.close()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
        logger.info("stopped")


def serve_until_signalled(server: Server) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    signalled = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: signalled.set())
    server.start()
    signalled.wait()
    server.stop()
