"""The `rhythm` root command class: truthful help, one-line errors, documented exit codes.

- Flags are shown as flags: typer renders every option's type, so a boolean
  flag read `--json <bool>` although `--json true` is a usage error; flags now
  show no type.
- A usage error (exit 2) is one line on stderr, not a box (typer 0.29 vendors
  click as `typer._click`: its exceptions are the ones raised); an unexpected
  exception is one line and exit 6 (`RHYTHM_TRACEBACK=1` shows the traceback).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import typer
from typer._click.core import Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup, TyperOption

from cli.context import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    EXIT_USER,
    exit_code_of,
)
from tracker.errors import RhythmError

_display_type_rich = TyperOption.display_type_rich


def _flag_has_no_type(self: TyperOption, ctx: Context) -> str | None:
    if self.is_flag or self.count:
        return None
    return _display_type_rich(self, ctx)


TyperOption.display_type_rich = _flag_has_no_type  # type: ignore[method-assign]


def _error(message: str, code: int) -> None:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.stderr.flush()
    sys.exit(code)


class LazyGroup(TyperGroup):
    """A group whose `lazy` commands ("name" -> "module:attribute", a typer app or a
    function) are imported only when one runs or help lists them."""

    lazy: ClassVar[dict[str, str]] = {}

    def list_commands(self, ctx: Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in self.lazy if n not in self.commands)]

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        target = self.lazy.get(cmd_name)
        if target is None or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        module, _, attribute = target.partition(":")
        found = getattr(importlib.import_module(module), attribute)
        if not isinstance(found, typer.Typer):
            single = typer.Typer()
            single.command(cmd_name)(found)
            found = single
        command = typer.main.get_command(found)
        command.name = cmd_name
        self.commands[cmd_name] = command
        return command


def lazy_group(commands: dict[str, str]) -> type[LazyGroup]:
    """A LazyGroup class for `typer.Typer(cls=...)` with these lazy commands."""
    return type("Lazy", (LazyGroup,), {"lazy": commands})


class RhythmGroup(LazyGroup):
    """The root: runs the command tree non-standalone and turns every failure into one line."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except NoArgsIsHelpError as exc:  # `rhythm issue`: the group's help, as usage
            sys.stdout.write(exc.ctx.get_help() + "\n" if exc.ctx else "")
            sys.exit(EXIT_USAGE)
        except UsageError as exc:
            where = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx else ""
            _error(exc.format_message() + where, EXIT_USAGE)
        except ClickException as exc:
            _error(exc.format_message(), exc.exit_code or EXIT_USER)
        except RhythmError as exc:  # raised while parsing, before the core opens
            _error(exc.detail, exit_code_of(exc))
        except typer.Abort:
            _error("aborted", EXIT_USER)
        except KeyboardInterrupt:
            _error("interrupted", EXIT_INTERRUPTED)
        except Exception as exc:
            if os.environ.get("RHYTHM_TRACEBACK"):
                raise
            _error(f"internal error: {type(exc).__name__}: {exc}", EXIT_INTERNAL)
        sys.exit(result if isinstance(result, int) else 0)
