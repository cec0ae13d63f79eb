"""Training throughput of distributed runs relative to the single-process reference.

Runs the same plan through ``reference_train`` (one process, no Ray) and
through the parameter server with 1..N workers, in this one process, and
prints samples per second and the ratio to the reference. Ratios, not
absolute times, are what to compare across machines.

    python benchmarks/throughput.py --dataset digits --workers 1 2 --epochs 20
"""

from __future__ import annotations

import argparse
import json
import os
import time

from service.config import build_config
from service.local_ray import use_loopback_only
from service.prepare import prepare
from service.reference import reference_train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    args = parser.parse_args()

    use_loopback_only()
    import ray

    from service.trainer import train

    def plan_for(workers: int):
        return prepare(
            build_config(
                dataset=args.dataset,
                workers=workers,
                epochs=args.epochs,
                batch_size=args.batch_size,
                hidden=args.hidden,
            )
        )

    reference_plan = plan_for(1)
    samples = len(reference_plan.train.x) * args.epochs
    started = time.perf_counter()
    reference_train(reference_plan)
    reference_rate = samples / (time.perf_counter() - started)

    ray.init(
        address="local",
        num_cpus=max(max(args.workers), os.cpu_count() or 1),
        include_dashboard=False,
        logging_level="WARNING",
    )
    rows = [{"workers": 0, "samples_per_second": reference_rate, "ratio": 1.0}]
    for workers in args.workers:
        result = train(plan_for(workers))
        rows.append(
            {
                "workers": workers,
                "samples_per_second": result.samples_per_second,
                "ratio": result.samples_per_second / reference_rate,
                "wall_seconds": result.wall_seconds,
                "val_accuracy": result.final.val_accuracy,
            }
        )
    ray.shutdown()

    if args.json:
        print(json.dumps(rows))
        return
    print(f"{'workers':>8} {'samples/s':>12} {'vs reference':>13}")
    for row in rows:
        name = "ref" if row["workers"] == 0 else str(row["workers"])
        print(f"{name:>8} {row['samples_per_second']:>12.0f} {row['ratio']:>13.2f}")


if __name__ == "__main__":
    main()
