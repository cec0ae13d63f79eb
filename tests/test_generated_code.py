"""The generated gRPC code in service/proto matches the contract in protos/."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATOR = Path("protos") / "generate.py"
CONTRACT = Path("protos") / "gradpool" / "v1" / "trainer.proto"
GENERATED = Path("service") / "proto"
TIMEOUT_SECONDS = 120


def check(root: Path) -> subprocess.CompletedProcess:
    """Run ``protos/generate.py --check`` of the tree at root."""
    return subprocess.run(
        [sys.executable, str(root / GENERATOR), "--check"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )


def test_checked_in_generated_code_is_current():
    finished = check(ROOT)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert finished.stdout == ""


def test_a_changed_contract_makes_the_generated_code_stale(tmp_path):
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    shutil.copytree(ROOT / GENERATED, tmp_path / GENERATED)
    with (tmp_path / CONTRACT).open("a") as contract:
        contract.write("\nmessage AddedForTest {\n  int64 value = 1;\n}\n")

    finished = check(tmp_path)

    assert finished.returncode == 1, finished.stdout + finished.stderr
    assert "stale: service/proto/trainer_pb2.py;" in finished.stdout, finished.stdout
