"""The one problem type: what is wrong with an input, phrased so the reader can fix it.

Stack config (``infra/settings``) and component Args (``components/*``) report problems the same way:
each names the field, the value given, what is allowed and how to fix it, and every problem is
collected before one error lists them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class _Missing:
    def __repr__(self) -> str:
        return "(missing)"


MISSING: Any = _Missing()
"""The value of a problem whose field was not given at all."""
NO_VALUE: Any = object()
"""The value of a problem about a place rather than a value (e.g. a line of YAML that does not parse)."""


@dataclass(frozen=True)
class Problem:
    """One invalid input: the field, the value given, what is allowed, how to fix it."""

    field: str
    value: Any
    message: str
    fix: str

    def render(self, prefix: str = "") -> str:
        """Multi-line, as stack config errors show it (``prefix``: the config namespace, e.g. ``lastmile:``)."""
        shown = "" if self.value is NO_VALUE else f" = {self.value!r}"
        return f"{prefix}{self.field}{shown}\n      {self.message}\n      fix: {self.fix}"

    def one_line(self) -> str:
        return f"{self.field} = {self.value!r}: {self.message}; fix: {self.fix}"


class ArgsError(ValueError):
    """Invalid component Args. Lists every problem at once."""

    def __init__(self, owner: str, problems: list[Problem]) -> None:
        self.problems = problems
        body = "\n".join(f"  - {p.one_line()}" for p in problems)
        super().__init__(f"{owner}: {len(problems)} invalid argument(s):\n{body}")


def raise_problems(owner: str, problems: list[Problem]) -> None:
    """Raise ArgsError listing ``problems`` (nothing when there are none)."""
    if problems:
        raise ArgsError(owner, problems)


def check_range(field: str, value: Any, low: float, high: float | None = None, *, unit: str = "", why: str = "",
                fix: str = "") -> list[Problem]:
    """``value`` is ``low``-``high`` (at least ``low`` when ``high`` is None); ``why`` extends the message."""
    if low <= value and (high is None or value <= high):
        return []
    allowed = f"at least {low}" if high is None else f"{low}-{high}"
    return [Problem(field, value, f"must be {allowed}{unit}{why}", fix or f"use a value {allowed}")]
