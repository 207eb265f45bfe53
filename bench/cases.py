"""The case registry: what each benchmark compares, and how cases are found."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from bench.api import Api

# Written into a body, replaced by a per-request counter, so repeated writes
# never send identical values that a server could skip as no-ops.
SEQ = "{seq}"


@dataclass(frozen=True)
class Request:
    """One HTTP request the load driver repeats; ``body`` may contain ``{seq}``."""

    method: str
    path: str
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    body: bytes | None = None
    expect: int = 200

    def render_body(self, seq: int) -> bytes | None:
        """The body with ``{seq}`` replaced by ``seq``."""
        if self.body is None:
            return None
        return self.body.replace(SEQ.encode(), str(seq).encode())


Prepare = Callable[[Api], Awaitable[Request]]


@dataclass(frozen=True)
class Case:
    """A named comparison: a baseline app and request versus a Rhythm request."""

    name: str
    baseline: str  # a name registered in bench.baselines
    baseline_request: Request
    rhythm_setup: Prepare  # runs once against a fresh Rhythm; returns the request to load
    goal: float  # minimum Rhythm/baseline req/s ratio
    summary: str


CASES: dict[str, Case] = {}


def case(
    name: str, *, baseline: str, request: Request, goal: float
) -> Callable[[Prepare], Prepare]:
    """Register the decorated Rhythm setup coroutine as case ``name``."""

    def register(setup: Prepare) -> Prepare:
        if name in CASES:
            raise ValueError(f"duplicate bench case {name!r}")
        summary = (setup.__doc__ or name).strip().splitlines()[0]
        CASES[name] = Case(name, baseline, request, setup, goal, summary)
        return setup

    return register


def discover() -> dict[str, Case]:
    """Import every ``bench/cases_*.py`` module once, so their cases register."""
    import bench

    for module in sorted(pkgutil.iter_modules(bench.__path__), key=lambda m: m.name):
        if module.name.startswith("cases_"):
            importlib.import_module(f"bench.{module.name}")
    return CASES
