"""Environments are found by entry point (group ``teachloop.environments``).

Each entry point names a loader ``load(**options) -> Environment``. A third-party pip package
declares one in its own pyproject and appears here without any change to teachloop. Anything
a plug-in gets wrong surfaces as a PluginError that names the plug-in.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Any

from teachloop.core.errors import ConfigError, PluginError, TeachloopError
from teachloop.environments.base import Environment

GROUP = "teachloop.environments"


def environment_entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def load_environment(name: str, options: dict[str, Any] | None = None) -> Environment:
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
