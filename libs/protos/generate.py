"""Generates the `shopstream` Python package (messages, gRPC stubs, typing stubs) from protos/.

Run by `make proto`. Output goes to a scratch folder first and replaces src/shopstream only when
protoc succeeded, so a broken proto never leaves a half-generated package behind.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PROTO_ROOT = REPO / "protos"
TARGET = HERE / "src" / "shopstream"


def main() -> int:
    protos = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_ROOT.rglob("*.proto"))
    if not protos:
        print("no .proto files under protos/", file=sys.stderr)
        return 1
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        args = [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--proto_path={well_known}",
            f"--python_out={out}",
            f"--grpc_python_out={out}",
            f"--mypy_out=quiet:{out}",
            f"--mypy_grpc_out=quiet:{out}",
            *protos,
        ]
        if protoc.main(args) != 0:
            print("protoc failed", file=sys.stderr)
            return 1
        generated = out / "shopstream"
        # Regular packages (not namespace packages) keep mypy and importlib simple.
        for folder in [generated, *(p for p in generated.rglob("*") if p.is_dir())]:
            (folder / "__init__.py").touch()
        (generated / "py.typed").touch()
        shutil.copy(PROTO_ROOT / "topics.yaml", generated / "topics.yaml")
        if TARGET.exists():
            shutil.rmtree(TARGET)
        shutil.copytree(generated, TARGET)
    print(f"generated {len(protos)} proto files into {TARGET.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
