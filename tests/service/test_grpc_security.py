"""Bearer tokens and TLS on a real ``gradpool serve``, and the CLI's refusal.

A token server and a TLS server each run once for the module on 127.0.0.1.
The TLS certificate is self-signed, made at test time for 127.0.0.1 and
localhost, and is its own certificate authority.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import subprocess
from pathlib import Path

import grpc
import pytest

from service.client import TrainerClient
from service.proto import trainer_pb2 as pb
from tests.service.server_process import ServerProcess

TOKEN = "s3cret-token-for-tests"
WRONG_TOKEN = "not-the-token"
RPC_TIMEOUT_SECONDS = 30
CLI_TIMEOUT_SECONDS = 120
CERTIFICATE_DAYS = 1


def environment_without_token() -> dict[str, str]:
    """The environment minus GRADPOOL_TOKEN, so only the options decide."""
    return {k: v for k, v in os.environ.items() if k != "GRADPOOL_TOKEN"}


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate and key for 127.0.0.1 and localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "cert.pem", directory / "key.pem"
    try:
        import cryptography  # noqa: F401
    except ImportError:
        _write_certificate_with_openssl(cert, key)
    else:
        _write_certificate_with_cryptography(cert, key)
    return cert, key


def _write_certificate_with_cryptography(cert: Path, key: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    names = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private_key, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _write_certificate_with_openssl(cert: Path, key: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("making a test certificate needs cryptography or openssl")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            str(CERTIFICATE_DAYS),
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


@pytest.fixture(scope="module")
def token_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("token") / "token"
    path.write_text(TOKEN + "\n")
    return path


@pytest.fixture(scope="module")
def token_server(ray_address, gradpool_command, tmp_path_factory, token_file):
    """gradpool serve that requires TOKEN."""
    server = ServerProcess(
        gradpool_command,
        tmp_path_factory.mktemp("token-server"),
        ray_address,
        "--token-file",
        str(token_file),
        env=environment_without_token(),
    )
    yield server
    server.terminate()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return write_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(ray_address, gradpool_command, tmp_path_factory, certificate):
    """gradpool serve over TLS with the test certificate and no token."""
    cert, key = certificate
    server = ServerProcess(
        gradpool_command,
        tmp_path_factory.mktemp("tls-server"),
        ray_address,
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        env=environment_without_token(),
    )
    yield server
    server.terminate()


def call(client: TrainerClient, method: str) -> None:
    """One call of a unary, a server-streaming or a client-streaming method."""
    if method == "ListJobs":
        list(client.list())
    elif method == "WatchJob":
        list(client.watch("no-such-job"))
    else:
        header = pb.UploadHeader(format="csv", size=4, sha256="0" * 64)
        messages = iter([pb.UploadDatasetRequest(header=header)])
        client.stub.UploadDataset(
            messages, timeout=RPC_TIMEOUT_SECONDS, metadata=client.metadata
        )


def refusal(client: TrainerClient, method: str) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(client, method)
    return caught.value


# Bearer token.


@pytest.mark.parametrize("method", ["ListJobs", "WatchJob", "UploadDataset"])
def test_call_without_a_token_is_unauthenticated(token_server, method):
    with token_server.client(timeout=RPC_TIMEOUT_SECONDS) as client:
        error = refusal(client, method)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "missing bearer token" in error.details()


@pytest.mark.parametrize("method", ["ListJobs", "WatchJob", "UploadDataset"])
def test_call_with_a_wrong_token_is_unauthenticated(token_server, method):
    with token_server.client(token=WRONG_TOKEN, timeout=RPC_TIMEOUT_SECONDS) as client:
        error = refusal(client, method)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "wrong bearer token" in error.details()


def test_call_with_the_token_is_served(token_server):
    with token_server.client(token=TOKEN, timeout=RPC_TIMEOUT_SECONDS) as client:
        assert list(client.list()) == []
        with pytest.raises(grpc.RpcError) as caught:
            client.get("no-such-job")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


def test_health_check_needs_no_token(token_server):
    assert token_server.healthy()


def test_cli_with_a_wrong_token_prints_one_line_and_exits_1(
    token_server, gradpool_command, tmp_path
):
    wrong = tmp_path / "wrong-token"
    wrong.write_text(WRONG_TOKEN + "\n")
    finished = subprocess.run(
        [
            *gradpool_command,
            "status",
            "0123456789abcdef",
            "--server",
            token_server.address,
            "--token-file",
            str(wrong),
        ],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_SECONDS,
        env=environment_without_token(),
    )
    assert finished.returncode == 1, finished.stderr
    assert finished.stdout == ""
    lines = finished.stderr.splitlines()
    assert len(lines) == 1, finished.stderr
    assert "UNAUTHENTICATED" in lines[0]


# TLS.


def test_client_trusting_the_certificate_is_served_over_tls(tls_server, certificate):
    cert, _ = certificate
    with TrainerClient(
        tls_server.address, tls_ca=str(cert), timeout=RPC_TIMEOUT_SECONDS
    ) as client:
        assert list(client.list()) == []


def test_plaintext_client_of_a_tls_server_is_unavailable(tls_server):
    with tls_server.client(timeout=RPC_TIMEOUT_SECONDS) as client:
        error = refusal(client, "ListJobs")
    assert error.code() == grpc.StatusCode.UNAVAILABLE


def test_client_trusting_another_certificate_is_unavailable(tls_server, tmp_path):
    other, _ = write_certificate(tmp_path / "other")
    with TrainerClient(
        tls_server.address, tls_ca=str(other), timeout=RPC_TIMEOUT_SECONDS
    ) as client:
        error = refusal(client, "ListJobs")
    assert error.code() == grpc.StatusCode.UNAVAILABLE
