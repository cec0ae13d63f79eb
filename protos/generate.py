"""Generate the Python gRPC code for the contract in this folder.

    python protos/generate.py            # rewrite service/proto/
    python protos/generate.py --check    # exit 1 if service/proto/ is stale

protoc names imports after the .proto's path (``gradpool.v1``); the one
import between the generated modules is rewritten to point into
``service.proto``, where the code lives beside the service that uses it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
TARGET = ROOT / "service" / "proto"
SOURCE = "gradpool/v1/trainer.proto"
GENERATED = ("trainer_pb2.py", "trainer_pb2.pyi", "trainer_pb2_grpc.py")


def generate() -> dict[str, bytes]:
    """Run protoc and return each generated file's final content by name."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as out:
        status = protoc.main(
            [
                "protoc",
                f"-I{PROTOS}",
                f"-I{well_known}",
                f"--python_out={out}",
                f"--pyi_out={out}",
                f"--grpc_python_out={out}",
                str(PROTOS / SOURCE),
            ]
        )
        if status != 0:
            raise SystemExit(f"protoc failed with status {status}")
        folder = Path(out) / Path(SOURCE).parent
        files = {name: (folder / name).read_bytes() for name in GENERATED}
    files["trainer_pb2_grpc.py"] = files["trainer_pb2_grpc.py"].replace(
        b"from gradpool.v1 import trainer_pb2", b"from service.proto import trainer_pb2"
    )
    return files


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare")
    args = parser.parse_args()
    files = generate()
    stale = [
        name
        for name, content in files.items()
        if not (TARGET / name).exists() or (TARGET / name).read_bytes() != content
    ]
    if args.check:
        for name in stale:
            print(f"stale: service/proto/{name}; run python protos/generate.py")
        return 1 if stale else 0
    TARGET.mkdir(exist_ok=True)
    for name, content in files.items():
        (TARGET / name).write_bytes(content)
    print(f"wrote {len(files)} files to {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
