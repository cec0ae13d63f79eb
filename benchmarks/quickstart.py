"""Time the README's training command and its accuracy, beside the reference.

Runs ``gradpool train --dataset digits --workers 2`` as a user would (its
own local Ray instance included) and, in this process, the same plan through
the single-process reference. Prints the command's wall time, its
validation accuracy, and how many times longer than the reference's pure
compute the whole command takes.

    python benchmarks/quickstart.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from service.config import build_config
from service.prepare import prepare
from service.reference import reference_train

# The budget the quick start promises on a 2-core machine.
BUDGET_SECONDS = 60.0


def main() -> int:
    script = Path(sys.executable).with_name("gradpool")
    with tempfile.TemporaryDirectory() as folder:
        summary = Path(folder) / "summary.json"
        started = time.perf_counter()
        subprocess.run(
            [
                str(script),
                "train",
                "--dataset",
                "digits",
                "--workers",
                "2",
                "--metrics-port",
                "0",
                "--summary",
                str(summary),
            ],
            check=True,
            capture_output=True,
        )
        command_seconds = time.perf_counter() - started
        report = json.loads(summary.read_text())

    plan = prepare(build_config(dataset="digits", workers=2))
    started = time.perf_counter()
    reference_train(plan)
    reference_seconds = time.perf_counter() - started

    print(
        json.dumps(
            {
                "command_seconds": round(command_seconds, 2),
                "training_seconds": round(report["wall_seconds"], 2),
                "val_accuracy": round(report["val_accuracy"], 4),
                "reference_seconds": round(reference_seconds, 3),
                "command_over_reference": round(command_seconds / reference_seconds, 1),
                "within_budget": command_seconds < BUDGET_SECONDS,
            }
        )
    )
    return 0 if command_seconds < BUDGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
