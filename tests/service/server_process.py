"""A real ``gradpool serve`` subprocess for tests, stopped by its process id."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from service.client import TrainerClient

START_TIMEOUT_SECONDS = 120


class ServerProcess:
    """Starts ``gradpool serve`` on 127.0.0.1 with a port the OS picks."""

    def __init__(
        self,
        command: list[str],
        data_dir: Path,
        ray_address: str,
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port_file = data_dir / "port"
        self.port_file.unlink(missing_ok=True)
        self.log = open(data_dir / "server.log", "ab")  # noqa: SIM115
        arguments = [
            *command,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(self.port_file),
            "--data-dir",
            str(data_dir),
            "--ray-address",
            ray_address,
            *extra,
        ]
        if "--metrics-port" not in extra:
            # The default port may be taken by another server of the suite.
            arguments += ["--metrics-port", "0"]
        self.process = subprocess.Popen(
            arguments, stdout=self.log, stderr=self.log, env=env or dict(os.environ)
        )
        self.port = self._wait_for_port()
        self.address = f"127.0.0.1:{self.port}"

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.output()}")
            if self.port_file.exists() and self.port_file.read_text().strip():
                return int(self.port_file.read_text())
            time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"server did not start:\n{self.output()}")

    def client(self, **options) -> TrainerClient:
        """A client of this server."""
        return TrainerClient(self.address, **options)

    def healthy(self) -> bool:
        """Whether the standard health service answers SERVING."""
        with grpc.insecure_channel(self.address) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=10)
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def output(self) -> str:
        """What the server logged so far."""
        self.log.flush()
        return (self.data_dir / "server.log").read_text(errors="replace")[-5000:]

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM by process id and wait; returns the exit status."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.kill()

    def kill(self) -> None:
        """SIGKILL by process id, if it still runs."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()
