"""What the deployment checks share: the services, kustomize rendering, the tools' locations.

Everything here is offline: kustomize and the Strimzi model come from .run (installed by
`make deploy-tools`), the Kubernetes schemas from the kubernetes-validate package.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
import yaml
from pydantic import BaseModel
from pydantic_settings import BaseSettings

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
RUN_DIR = Path(os.environ.get("SHOPSTREAM_RUN_DIR", REPO / ".run"))
KUSTOMIZE = RUN_DIR / "tools" / "bin" / "kustomize"
STRIMZI_CLASSPATH = f"{RUN_DIR / 'strimzi' / 'classes'}:{RUN_DIR / 'strimzi' / 'libs'}/*"

Resource = dict[str, Any]


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    settings_class: str
    # Faust workers run as StatefulSets (their RocksDB state on a claim).
    stream_worker: bool

    @property
    def env_prefix(self) -> str:
        return "SHOPSTREAM_" + self.name.upper().replace("-", "_") + "_"


SERVICES = (
    Service("catalog", "shopstream_catalog", "CatalogSettings", stream_worker=False),
    Service("commerce", "shopstream_commerce", "CommerceSettings", stream_worker=False),
    Service("ads", "shopstream_ads", "AdsSettings", stream_worker=True),
    Service(
        "creator-score", "shopstream_creator_score", "CreatorScoreSettings", stream_worker=True
    ),
)


def gen_kafka() -> ModuleType:
    """deploy/k8s/gen_kafka.py, the KafkaTopic and KafkaUser generator, as a module."""
    spec = importlib.util.spec_from_file_location("gen_kafka", K8S / "gen_kafka.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def settings_class(svc: Service) -> type[BaseSettings]:
    cls: type[BaseSettings] = getattr(
        importlib.import_module(f"{svc.module}.settings"), svc.settings_class
    )
    return cls


def setting_field(cls: type[BaseModel], env_name: str, prefix: str) -> str | None:
    """The settings field an environment variable sets (`kafka.bootstrap_servers`), or None."""
    if not env_name.startswith(prefix):
        return None
    model: type[BaseModel] | None = cls
    path = []
    for part in env_name[len(prefix) :].lower().split("__"):
        if model is None or part not in model.model_fields:
            return None
        path.append(part)
        annotation = model.model_fields[part].annotation
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
    # A whole nested model cannot be set from one variable the way the manifests write them.
    return ".".join(path) if model is None else None


SHARED_PREFIX = "SHOPSTREAM_"


def unknown_settings(svc: Service, names: list[str]) -> list[str]:
    """The names that set no field of the service's settings (own prefix first, then shared)."""
    cls = settings_class(svc)
    return [
        name
        for name in names
        if setting_field(cls, name, svc.env_prefix) is None
        and (name.startswith(svc.env_prefix) or setting_field(cls, name, SHARED_PREFIX) is None)
    ]


def load_with(svc: Service, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Any:
    """The service's settings as they load from exactly this environment."""
    for name in list(os.environ):
        if name.startswith(SHARED_PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return settings_class(svc)()


def pod_environment(resources: list[Resource], svc: Service) -> dict[str, str]:
    """The environment a service's container starts with: its ConfigMaps (envFrom, in order)
    then its env entries, secrets and pod fields replaced by stand-ins of the right shape."""
    kind = "StatefulSet" if svc.stream_worker else "Deployment"
    pod = by_name(resources, kind, svc.name)["spec"]["template"]["spec"]
    (main,) = [c for c in pod["containers"] if c["name"] == svc.name]
    env: dict[str, str] = {}
    for source in main.get("envFrom", []):
        configmap = by_name(resources, "ConfigMap", source["configMapRef"]["name"])
        env.update(configmap.get("data", {}))
    for entry in main.get("env", []):
        if "value" in entry:
            env[entry["name"]] = entry["value"]
        elif "secretKeyRef" in entry["valueFrom"]:
            env[entry["name"]] = SECRET_STAND_INS.get(
                entry["valueFrom"]["secretKeyRef"]["key"], "secret"
            )
        else:
            env[entry["name"]] = f"{svc.name}-0"
    return env


# What the secrets hold, in the form the settings expect.
SECRET_STAND_INS = {
    **{s.name: f"postgresql+asyncpg://u:p@postgres:5432/{s.name}" for s in SERVICES},
    "jwt-secret": "k" * 48,
    "password": "scram-password",
}


def service(name: str) -> Service:
    return next(s for s in SERVICES if s.name == name)


def _tool_missing(what: str) -> NoReturn:
    pytest.fail(f"{what} is missing: run `make deploy-tools` first", pytrace=False)


def kustomize_build(path: Path) -> list[Resource]:
    if not KUSTOMIZE.exists():
        _tool_missing(str(KUSTOMIZE))
    result = subprocess.run(
        [str(KUSTOMIZE), "build", str(path)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"kustomize build {path} failed:\n{result.stderr}"
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def java_with_strimzi_model() -> str:
    found = shutil.which("java")
    if found is None:
        _tool_missing("java")
    if not (RUN_DIR / "strimzi" / "classes" / "dev" / "shopstream" / "deploy").exists():
        _tool_missing("the Strimzi model checker (.run/strimzi)")
    return found


def of_kind(resources: list[Resource], *kinds: str) -> list[Resource]:
    return [r for r in resources if r["kind"] in kinds]


def by_name(resources: list[Resource], kind: str, name: str) -> Resource:
    for r in resources:
        if r["kind"] == kind and r["metadata"]["name"] == name:
            return r
    raise KeyError(f"{kind}/{name}")
