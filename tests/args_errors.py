"""What the component tests ask of an ArgsError: the fields of its problems, each named in its one message."""

from __future__ import annotations

from components.problems import ArgsError


def reported_fields(error: ArgsError) -> list[str]:
    """The fields of ``error``'s problems, each checked to be named in its one message."""
    fields = [problem.field for problem in error.problems]
    assert all(f"- {field} = " in str(error) for field in fields), error
    return fields
