"""The service registry (motcua.registry) is the truth about which services exist and where they live."""

from __future__ import annotations

from pathlib import Path

import pytest

from motcua import localstack, registry
from shared.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]


def test_the_registry_lists_every_service_package_once() -> None:
    packages = {p.parent.name for p in (ROOT / "services").glob("*/__init__.py")}
    assert set(registry.SERVICES) == packages
    assert len(registry.SERVICES) == len(set(registry.SERVICES)) == len(registry.REGISTRY)
    assert len(set(registry.PORTS.values())) == len(registry.PORTS), "one local port per service"
    assert localstack.PORTS == registry.PORTS and localstack.SERVICES == registry.SERVICES


@pytest.mark.parametrize("name", registry.SERVICES)
def test_each_entry_names_what_the_service_has(name: str) -> None:
    service = registry.service(name)
    assert service.package == f"services.{name}"
    assert service.directory == ROOT / "services" / name
    assert (service.migrations_path / "env.py").is_file() and (service.migrations_path / "versions").is_dir()
    settings = service.settings_class()
    assert issubclass(settings, ServiceSettings)
    assert settings.model_fields["port"].default == service.port, "the settings' default port is the local stack's"
    assert callable(service.app_factory())


def test_an_unknown_service_is_named_with_the_known_ones() -> None:
    with pytest.raises(LookupError, match="intake, workflow"):
        registry.service("nowhere")
