"""Generated gRPC code for protos/gradpool/v1/trainer.proto; do not edit.

Regenerate with ``python protos/generate.py``.
"""
