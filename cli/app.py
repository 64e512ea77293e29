"""The ``teachloop`` command: the root of the command line, its command groups, and how it fails.

Errors a user can fix print one line on stderr and exit with code 2; nothing is written first.
A run stopped by a full disk or memory exits with code 3 and one line; it resumes once that is fixed.
The commands live one group to a module (run, envs, inspect, reviser, criteria); this module only
puts them together and turns what they raise into those lines and exit codes.
"""

from __future__ import annotations

import sys

import typer

from teachloop.cli import envs, export, inspect, review, run
from teachloop.cli.common import err
from teachloop.cli.criteria import criteria_app
from teachloop.cli.reviser import reviser_app
from teachloop.foundation.errors import ResourceError, TeachloopError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Teacher agents that find what a small language model is bad at, make data for it, and train it.",
)
# Commands are listed in this order in --help, then the groups in theirs.
app.command("report")(inspect.report_command)
app.command("run")(run.run)
app.command("resume")(run.resume)
app.command("status")(run.status)
app.command("export")(export.export)
app.command("review")(review.review)
app.add_typer(envs.envs_app, name="envs")
app.add_typer(inspect.inspect_app, name="inspect")
app.add_typer(reviser_app, name="reviser")
app.add_typer(criteria_app, name="criteria")


def main() -> None:
    try:
        app(standalone_mode=False)
    except ResourceError as e:  # out of memory or disk: the run is resumable once that is fixed
        _fail(str(e), code=3)
    except TeachloopError as e:
        _fail(str(e))
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted; continue with 'teachloop resume RUN_DIR'", highlight=False)
        sys.exit(130)
    except typer.TyperException as e:  # usage errors: unknown option, a value of the wrong type
        _fail(e.format_message() if hasattr(e, "format_message") else str(e))


def _fail(message: str, code: int = 2) -> None:
    # one line whatever the message quotes: a newline or control character in a user's key or
    # file becomes its escape (\\n, \\x1e) instead of breaking the line
    line = "".join(c if c.isprintable() else repr(c)[1:-1] for c in message)
    err.print(f"error: {line}", highlight=False, markup=False, soft_wrap=True)
    sys.exit(code)
