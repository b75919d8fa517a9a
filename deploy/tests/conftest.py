"""Fixtures of the deployment checks (deploy_support.py has the helpers)."""

from __future__ import annotations

import pytest
from deploy_support import K8S, OVERLAYS, Resource, java_with_strimzi_model, kustomize_build


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Resource]]:
    """Each overlay, rendered by kustomize as `kubectl apply -k` would see it."""
    return {name: kustomize_build(K8S / "overlays" / name) for name in OVERLAYS}


@pytest.fixture(scope="session")
def java() -> str:
    return java_with_strimzi_model()
