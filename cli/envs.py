"""``teachloop envs list`` and ``envs show``: which environments are installed, and what one holds.

Environments are plug-ins (entry point group ``teachloop.environments``); these commands let a
user check one loads and see its skills before starting a run on it.
"""

from __future__ import annotations

from typing import Annotated

import typer

from teachloop.cli import render
from teachloop.cli.common import out, parse_pairs

envs_app = typer.Typer(no_args_is_help=True, help="List and show environments.")


@envs_app.command("list")
def envs_list() -> None:
    """Installed environments (entry point group teachloop.environments); a broken plug-in says why."""
    from teachloop.environments.registry import environment_entry_points, plugin_info

    for name, ep in sorted(environment_entry_points().items()):
        render.print_plugin(out, plugin_info(name, ep))


@envs_app.command("show")
def envs_show(
    name: str,
    env_option: Annotated[list[str], typer.Option("--env-option", help="environment option key=value")] = [],  # noqa: B006
) -> None:
    """An environment's skills, split sizes at the default config, whether it generates tasks, and a sample."""
    from teachloop.environments.base import TaskGenerator
    from teachloop.environments.registry import load_environment
    from teachloop.evals.config import EvalConfig

    env = load_environment(name, parse_pairs(env_option, "--env-option"))
    sizes = EvalConfig()
    dev = env.tasks("dev", sizes.dev_per_skill, 0)
    test = env.tasks("test", sizes.test_per_skill, 0)
    render.print_environment(out, env, sizes, dev, test, generates=isinstance(env, TaskGenerator))
