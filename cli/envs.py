"""``teachloop envs list``, ``envs show`` and ``envs check``: which environments are installed,
what one holds, and whether it keeps the plug-in contract.

Environments are plug-ins (entry point group ``teachloop.environments``); these commands let a
user check one loads and see its skills before starting a run on it, and let an author see every
problem of a plug-in at once.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from teachloop.cli import render
from teachloop.cli.common import err, out, parse_pairs

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


@envs_app.command("check")
def envs_check(
    name: str,
    env_option: Annotated[list[str], typer.Option("--env-option", help="environment option key=value")] = [],  # noqa: B006
    per_skill: Annotated[int, typer.Option(min=1, help="gold answers scored per split, skill and level")] = 5,
) -> None:
    """Run the load-time contract and score a sample of gold answers with the environment's own scorer;
    exit 2 when any check fails (each failure one line on stderr)."""
    from teachloop.environments.selfcheck import check_environment

    rows = check_environment(name, parse_pairs(env_option, "--env-option"), per_skill)
    render.print_env_check(out, name, rows)
    failed = [r for r in rows if not r.passed]
    for row in failed:
        err.print(
            f"FAIL {row.check} [{row.scope}]: {row.detail}", markup=False, highlight=False, soft_wrap=True
        )
    if failed:
        sys.exit(
            2
        )  # a failed check, as a bad input: exit 2 (typer.Exit is swallowed outside standalone mode)
