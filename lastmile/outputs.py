"""Output directories and files: lastmile writes only what it owns and deletes only what it wrote.

A directory lastmile writes into (``synth --out``, ``render --out``) carries a marker file,
``.lastmile-output``, listing the files lastmile wrote there. lastmile

- creates a missing directory, or adopts an empty one, and marks it;
- refuses (exit 2, nothing written) a non-empty directory without the marker: it did not create it,
  so the files there are someone else's (``render --out stacks`` must never touch the stack files);
- removes, from a marked directory, only stale files the marker lists (files it wrote on an
  earlier run and does not write now) — never a file someone else put there.

The default directories (``build/synth``, ``rendered/<stack>-offline``) lie under paths git ignores
and are lastmile's own: an unmarked one written by an earlier version is adopted.
An output FILE (``plan --out``) is overwritten only when it is lastmile's: missing, empty, or
starting with the header lastmile writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from lastmile.common import Refused

MARKER = ".lastmile-output"
_HEADER = "# written by lastmile; files it wrote here (it deletes only these):\n"


@dataclass
class OutputDir:
    path: Path
    written_before: list[str] = field(default_factory=list)

    def create(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def commit(self, written: list[Path], *, prune: bool) -> list[str]:
        """Record ``written`` in the marker. ``prune``: delete the files of earlier runs that this run did not
        write (a render replaces the whole set); otherwise keep them recorded (synth adds one stack at a time)."""
        names = {p.name for p in written}
        stale = [name for name in self.written_before if name not in names and name != MARKER]
        if prune:
            for name in stale:
                if (self.path / name).is_file():
                    (self.path / name).unlink()
        else:
            names |= set(stale)
        (self.path / MARKER).write_text(_HEADER + "".join(f"{name}\n" for name in sorted(names)))
        return stale if prune else []


def _recorded(marker: Path) -> list[str]:
    return [line.strip() for line in marker.read_text().splitlines() if line.strip() and not line.startswith("#")]


def claim_dir(path: Path, *, option: str, default: bool = False) -> OutputDir:
    """Check that lastmile may write into ``path`` (see the module docstring); ``create()`` makes it when writing."""
    if path.exists() and not path.is_dir():
        raise Refused(f"{option} {path}: exists and is not a directory\n  fix: name a new or empty directory")
    marker = path / MARKER
    if path.is_dir() and marker.is_file():
        return OutputDir(path, _recorded(marker))
    if path.is_dir() and any(path.iterdir()) and not default:
        shown = sorted(p.name for p in path.iterdir())
        raise Refused(f"{option} {path}: the directory is not empty and lastmile did not create it "
                      f"(it holds {', '.join(shown[:5])}{', ...' if len(shown) > 5 else ''}); nothing was written\n"
                      f"  allowed: a new or empty directory, or one lastmile wrote before (it has {MARKER})\n"
                      f"  fix: pass a new directory, e.g. {option} build/{path.name}-out")
    return OutputDir(path)


def check_file(path: Path, *, option: str, header: str) -> None:
    """Refuse to overwrite a file lastmile did not write (it must be missing, empty or start with ``header``)."""
    if path.is_dir():
        raise Refused(f"{option} {path}: is a directory\n  fix: name a file, e.g. {option} {path / 'plan.md'}")
    if path.is_file() and path.stat().st_size and not path.read_text(errors="replace").startswith(header):
        raise Refused(f"{option} {path}: the file exists and lastmile did not write it; nothing was written\n"
                      f"  allowed: a new file, or one lastmile wrote before (it starts with {header!r})\n"
                      "  fix: name a new file")
