"""Regenerate the Python code for proto/clearance/v1/*.proto: ``python proto/generate.py``.

The proto path mirrors the import path: ``proto/clearance/v1/registry.proto``
becomes ``clearance/v1/registry_pb2.py`` (with ``.pyi`` stubs from
mypy-protobuf and ``registry_pb2_grpc.py``), so generated imports work as they
are. ``--check`` regenerates into a temporary directory and exits 1 if the
committed files differ (CI runs it).
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
PACKAGE = Path("clearance") / "v1"


def generate(out: Path) -> list[Path]:
    protos = sorted((PROTO_DIR / PACKAGE).glob("*.proto"))
    bin_dir = Path(sys.executable).parent
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy={bin_dir / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={bin_dir / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *(str(p.relative_to(PROTO_DIR)) for p in protos),
    ]
    subprocess.run(command, check=True, cwd=PROTO_DIR)  # noqa: S603 - fixed argv
    init = out / PACKAGE / "__init__.py"
    init.write_text('"""Generated from proto/clearance/v1 by proto/generate.py; do not edit."""\n')
    return sorted(p.relative_to(out) for p in (out / PACKAGE).iterdir() if p.is_file())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed code is stale")
    args = parser.parse_args()
    if not args.check:
        target = ROOT / PACKAGE
        if target.exists():
            shutil.rmtree(target)
        for name in generate(ROOT):
            print(f"wrote {name}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
        committed = sorted(p.relative_to(ROOT) for p in (ROOT / PACKAGE).iterdir() if p.is_file())
        stale = [
            str(n)
            for n in fresh
            if not (ROOT / n).exists() or not filecmp.cmp(Path(tmp) / n, ROOT / n, shallow=False)
        ]
        extra = [str(n) for n in committed if n not in fresh]
    if stale or extra:
        print("generated protobuf code is stale; run: python proto/generate.py", file=sys.stderr)
        for name in stale + extra:
            print(f"  differs: {name}", file=sys.stderr)
        return 1
    print(f"generated protobuf code is current ({len(fresh)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
