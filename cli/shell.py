"""The `rhythm` root command class: truthful help, one-line errors, documented exit codes.

- Flags are shown as flags: typer renders every option's type, so a boolean
  flag read `--json <bool>` although `--json true` is a usage error; flags now
  show no type.
- A usage error (exit 2) is one line on stderr, not a box (typer 0.29 vendors
  click as `typer._click`: its exceptions are the ones raised); an unexpected
  exception is one line and exit 6 (`RHYTHM_TRACEBACK=1` shows the traceback).
"""

from __future__ import annotations

import copy
import importlib
import os
import sys
from collections.abc import Sequence
from typing import Any, ClassVar

import typer
from typer._click.core import Context
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
from typer.core import TyperGroup, TyperOption
from typer.models import CommandInfo

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
    #: typer's registered commands not yet turned into click commands (see `_group`)
    pending: dict[str, CommandInfo]

    def list_commands(self, ctx: Context) -> list[str]:
        names = [*super().list_commands(ctx), *getattr(self, "pending", {}), *self.lazy]
        return list(dict.fromkeys(names))

    def get_command(self, ctx: Context, cmd_name: str) -> Any:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        info = getattr(self, "pending", {}).get(cmd_name)
        if info is not None:
            command = typer.main.get_command_from_info(
                info, pretty_exceptions_short=True, rich_markup_mode=self.rich_markup_mode
            )
        elif cmd_name in self.lazy:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            command = _group(getattr(importlib.import_module(module), attribute), cmd_name)
        else:
            return super().get_command(ctx, cmd_name)
        command.name = cmd_name
        self.commands[cmd_name] = command
        return command


def _group(found: Any, name: str) -> Any:
    """A click command for a typer app (or a function): a LazyGroup app converts each of
    its commands only when it runs (typer would convert all of them up front)."""
    if not isinstance(found, typer.Typer):
        single = typer.Typer()
        single.command(name)(found)
        return typer.main.get_command(single)
    if found.registered_groups or not issubclass(found.info.cls or TyperGroup, LazyGroup):
        return typer.main.get_command(found)
    empty = copy.copy(found)
    empty.registered_commands = []
    group = typer.main.get_group(empty)
    assert isinstance(group, LazyGroup)  # its cls, checked above
    group.pending = {
        info.name or typer.main.get_command_name(info.callback.__name__): info
        for info in found.registered_commands
        if info.callback is not None
    }
    return group


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
