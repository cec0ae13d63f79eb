"""Every message, enum, field and method of the contract is documented."""

from __future__ import annotations

import re
from pathlib import Path

PROTO = Path(__file__).resolve().parents[1] / "protos/gradpool/v1/trainer.proto"
DECLARATION = re.compile(
    r"^\s*(message|enum|rpc|service|oneof)\s"
    r"|^\s*(optional |repeated )?[\w.]+\s+\w+\s*=\s*\d+;"
)


def test_every_declaration_has_a_comment():
    lines = PROTO.read_text().splitlines()
    undocumented = [
        f"line {number}: {line.strip()}"
        for number, line in enumerate(lines, start=1)
        if DECLARATION.match(line)
        and not lines[number - 2].strip().startswith("//")
        and "//" not in line
    ]
    assert undocumented == []
