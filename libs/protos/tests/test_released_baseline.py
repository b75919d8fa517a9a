"""The released contract guards every proto file: `make proto-baseline-check` (part of
`make proto-check`, so of `make test`) fails when a file exists that protos/released.binpb does not
know, and buf comes from the locked wheel, not from a Go build."""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

NEW_FILE = """syntax = "proto3";

package shopstream.extra.v1;

message Extra {
  string extra_id = 1;
}
"""


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_baseline_knows_every_proto_file() -> None:
    result = _make("proto-baseline-check")
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_proto_file_the_baseline_does_not_know_fails_the_check(tmp_path: Path) -> None:
    protos = tmp_path / "protos"
    shutil.copytree(ROOT / "protos", protos)
    extra = protos / "shopstream" / "extra" / "v1" / "extra.proto"
    extra.parent.mkdir(parents=True)
    extra.write_text(NEW_FILE)
    result = _make("proto-baseline-check", f"PROTO_DIR={protos}")
    assert result.returncode != 0
    assert "released.binpb does not know:" in result.stdout
    assert "shopstream/extra/v1/extra.proto" in result.stdout
    # Recording it deliberately (what `make proto-release` runs) makes the check pass again.
    subprocess.run(
        [str(ROOT / ".venv" / "bin" / "buf"), "build", "-o", "released.binpb"],
        cwd=protos,
        check=True,
        timeout=120,
    )
    assert _make("proto-baseline-check", f"PROTO_DIR={protos}").returncode == 0


def test_buf_comes_from_the_locked_wheel_not_go() -> None:
    plan = _make("-n", "proto-check").stdout
    assert "go install" not in plan
    assert f"{ROOT}/.venv/bin/buf lint" in plan
