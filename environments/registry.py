"""Environments are found by entry point (group ``teachloop.environments``).

Each entry point names a loader ``load(**options) -> Environment``. A third-party pip package
declares one in its own pyproject and appears here without any change to teachloop. Anything
a plug-in gets wrong surfaces as a PluginError that names the plug-in: at load time (import,
loader, types, gold answers that fail the plug-in's own scorer; see
``environments/contract.py``) and during the run (every call is checked).
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel, ConfigDict

from teachloop.environments.base import Environment
from teachloop.environments.contract import CheckedEnvironment, checked, validate_environment
from teachloop.foundation.errors import ConfigError, PluginError, TeachloopError

GROUP = "teachloop.environments"


def environment_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


class PluginInfo(BaseModel):
    """What ``teachloop envs list`` shows of an installed plug-in, without constructing it."""

    model_config = ConfigDict(frozen=True)

    name: str
    loader: str
    package: str
    description: str
    error: str | None = None


def plugin_info(name: str, ep: EntryPoint) -> PluginInfo:
    """Import the loader (not the environment) to read its docstring; an import error is reported, not raised."""
    package = f"{ep.dist.name} {ep.dist.version}" if ep.dist is not None else "?"
    try:
        loader = ep.load()
    except Exception as err:
        return PluginInfo(
            name=name, loader=ep.value, package=package, description="", error=f"{type(err).__name__}: {err}"
        )
    doc = (getattr(loader, "__doc__", None) or "").strip().replace("``", "`")
    return PluginInfo(name=name, loader=ep.value, package=package, description=doc.split("\n")[0])


def load_environment(name: str, options: dict[str, Any] | None = None) -> CheckedEnvironment:
    """Construct, validate and wrap the environment plug-in ``name`` (see ``environments/contract.py``)."""
    env = construct_environment(name, options)
    validate_environment(env, name)
    return checked(env, name)


def construct_environment(name: str, options: dict[str, Any] | None = None) -> Environment:
    """Import and call the plug-in's loader, unchecked (``teachloop envs check`` checks it step by step)."""
    found = environment_entry_points()
    if name not in found:
        known = ", ".join(sorted(found)) or "none installed"
        raise ConfigError(f"unknown environment {name!r}; known: {known}")
    try:
        loader = found[name].load()
    except Exception as err:
        raise PluginError(
            f"environment plug-in {name!r} failed to import: {type(err).__name__}: {err}"
        ) from None
    try:
        env = loader(**(options or {}))
    except TeachloopError:
        raise
    except Exception as err:
        raise PluginError(
            f"environment plug-in {name!r} failed to load: {type(err).__name__}: {err}"
        ) from None
    if not isinstance(env, Environment):
        raise PluginError(
            f"environment plug-in {name!r} returned {type(env).__name__}, which lacks "
            "name, skills, tasks(), prompt() or score()"
        )
    return env
