"""The one list of motcua's services: where each lives, how it is configured, built, served and migrated.

Everything that used to be derived from a service's name in several places (``services.<name>``,
``<Name>Settings``, ``create_app``, the local port, ``<package>/migrations``) is written here once.
Nothing is imported until it is asked for: reading the registry is cheap, building an app is not.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI

    from shared.settings import ServiceSettings


def _load(reference: str) -> Any:  # noqa: ANN401 - whatever the reference names
    """``"package.module:attribute"`` → the attribute."""
    module, _, attribute = reference.partition(":")
    return getattr(import_module(module), attribute)


@dataclass(frozen=True)
class Service:
    """One service of the registry."""

    name: str
    package: str  # import path of the service's package
    settings: str  # "module:Class", a ServiceSettings subclass
    app: str  # "module:function", the app factory: (settings) -> FastAPI
    port: int  # its port in the local stack (``motcua run``) and its settings' default
    migrations: str = "migrations"  # Alembic script directory, relative to the package

    def settings_class(self) -> type[ServiceSettings]:
        """The service's settings class (imports the settings module)."""
        return _load(self.settings)

    def app_factory(self) -> Callable[..., FastAPI]:
        """The service's app factory (imports the app module and so the whole service)."""
        return _load(self.app)

    def create_app(self, settings: ServiceSettings | None = None) -> FastAPI:
        """The service's ASGI app, with its settings read from the environment unless given."""
        return self.app_factory()(settings if settings is not None else self.settings_class()())

    @property
    def directory(self) -> Path:
        """The service's package directory (found without importing the package)."""
        spec = find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise LookupError(f"no package {self.package}")
        return Path(next(iter(spec.submodule_search_locations)))

    @property
    def migrations_path(self) -> Path:
        """The service's Alembic script directory (``env.py``, ``versions/``)."""
        return self.directory / self.migrations


REGISTRY: tuple[Service, ...] = (
    Service("intake", "services.intake", "services.intake.settings:IntakeSettings", "services.intake.app:create_app", 8001),
    Service("workflow", "services.workflow", "services.workflow.settings:WorkflowSettings", "services.workflow.app:create_app", 8002),
    Service(
        "digitization",
        "services.digitization",
        "services.digitization.settings:DigitizationSettings",
        "services.digitization.app:create_app",
        8003,
    ),
    Service("payments", "services.payments", "services.payments.settings:PaymentsSettings", "services.payments.app:create_app", 8004),
    Service("reporting", "services.reporting", "services.reporting.settings:ReportingSettings", "services.reporting.app:create_app", 8005),
)

SERVICES: tuple[str, ...] = tuple(s.name for s in REGISTRY)  # in the order the local stack starts them
PORTS: dict[str, int] = {s.name: s.port for s in REGISTRY}  # the local stack's fixed ports

_BY_NAME = {s.name: s for s in REGISTRY}


def service(name: str) -> Service:
    """The registry entry of a service, by name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise LookupError(f"no service {name!r}; the services are {', '.join(SERVICES)}") from None


def settings_class(name: str) -> type[ServiceSettings]:
    """The settings class of a service, by name."""
    return service(name).settings_class()
