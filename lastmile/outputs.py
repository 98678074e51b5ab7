"""Output directories and files: lastmile writes only what it owns and deletes only what it wrote.

A directory lastmile writes into (``synth --out``, ``render --out``) carries a marker file,
``.lastmile-output``, listing the files lastmile wrote there. lastmile

- creates a missing directory, or adopts an empty one, and marks it;
- refuses (exit 2, nothing written) a non-empty directory without the marker: it did not create it,
  so the files there are someone else's (``render --out stacks`` must never touch the stack files);
- removes, from a marked directory, only stale files the marker lists (files it wrote on an
  earlier run and does not write now) — never a file someone else put there;
- trusts the marker only as a list of plain file names of that directory: an entry with ``/``, ``..``, an
  absolute path, or a name that is a symlink or not a regular file there, is refused (exit 2) before
  anything is written or deleted — a hand-edited marker cannot make a re-render delete files elsewhere;
- never writes through a symlink: the output directory, the marker and every file it writes are opened
  without following one (``O_NOFOLLOW``), and a name that is a symlink is refused, not replaced.

The default directories (``build/synth``, ``rendered/<stack>-offline``) lie under paths git ignores
and are lastmile's own: an unmarked one written by an earlier version is adopted.
An output FILE (``plan --out``) is overwritten only when it is lastmile's: missing, empty, or
starting with the header lastmile writes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from lastmile.common import Refused

MARKER = ".lastmile-output"
_HEADER = "# written by lastmile; files it wrote here (it deletes only these):\n"


_ALLOWED = ("allowed: plain file names of this directory that are regular files: no '/', '..' or absolute path, "
            "no symlink")


def name_problem(name: str) -> str | None:
    """Why ``name`` is not a plain file name of one directory (None: it is)."""
    if not name or name in (".", ".."):
        return "not a file name"
    if name.startswith("/"):
        return "an absolute path"
    if "/" in name or "\\" in name:
        climbs = ".." in name.replace("\\", "/").split("/")
        return "a path, not a file name" + (" that climbs out with '..'" if climbs else "")
    if any(not c.isprintable() for c in name):
        return "holds a control character"
    return None


def _target_problem(directory: Path, name: str) -> str | None:
    """Why lastmile may not write or delete ``directory / name`` (None: it may)."""
    problem = name_problem(name)
    if problem is None:
        path = directory / name
        if path.is_symlink():
            problem = f"a symlink (to {os.readlink(path)}); lastmile does not write or delete through one"
        elif path.exists() and not path.is_file():
            problem = "not a regular file"
    return problem


def _write_no_follow(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(descriptor, "w") as file:
        file.write(text)


def check_targets(directory: Path, names: list[str], *, option: str = "--out") -> None:
    """Refuse (exit 2) when one of ``names`` may not be written in ``directory``: not a plain file name, or a
    symlink or non-regular file there."""
    refused = [(name, problem) for name in names if (problem := _target_problem(directory, name))]
    if refused:
        raise Refused(f"{option} {directory}: lastmile would write " + "; ".join(
            f"{name!r}, which is {problem}" for name, problem in refused) + "; nothing was written\n"
            f"  {_ALLOWED}\n  fix: remove or rename what is there, or pass another directory")


def write_files(directory: Path, files: dict[str, str], *, option: str = "--out") -> list[Path]:
    """Write ``files`` (name -> text) into ``directory``: every name is checked first, so a refusal (exit 2)
    writes nothing; no file is written through a symlink."""
    check_targets(directory, list(files), option=option)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, text in files.items():
        _write_no_follow(directory / name, text)
        paths.append(directory / name)
    return paths


@dataclass
class OutputDir:
    path: Path
    written_before: list[str] = field(default_factory=list)

    def create(self) -> Path:
        self.path.mkdir(parents=True, exist_ok=True)
        return self.path

    def write_all(self, files: dict[str, str], *, option: str = "--out") -> list[Path]:
        """``write_files`` into this directory (created when missing)."""
        return write_files(self.create(), files, option=option)

    def commit(self, written: list[Path], *, prune: bool) -> list[str]:
        """Record ``written`` in the marker. ``prune``: delete the files of earlier runs that this run did not
        write (a render replaces the whole set); otherwise keep them recorded (synth adds one stack at a time).
        Only names ``claim_dir`` checked are deleted, and only when they are still regular files."""
        names = {p.name for p in written}
        stale = [name for name in self.written_before if name not in names and name != MARKER]
        if prune:
            for name in stale:
                path = self.path / name
                if name_problem(name) is None and not path.is_symlink() and path.is_file():
                    path.unlink()
        else:
            names |= set(stale)
        _write_no_follow(self.path / MARKER, _HEADER + "".join(f"{name}\n" for name in sorted(names)))
        return stale if prune else []


def _recorded(directory: Path, option: str) -> list[str]:
    """The names the marker of ``directory`` lists; Refused (nothing written or deleted) when one of them is
    not a plain, regular file name of the directory."""
    marker = directory / MARKER
    lines = marker.read_text(errors="replace").splitlines()
    names = [(number, line.strip()) for number, line in enumerate(lines, 1)
             if line.strip() and not line.startswith("#")]
    refused = [(number, name, problem) for number, name in names if (problem := _target_problem(directory, name))]
    if refused:
        raise Refused(f"{option} {directory}: {MARKER} lists what lastmile never writes: " + "; ".join(
            f"line {number} {name!r} ({problem})" for number, name, problem in refused)
            + "; nothing was written or deleted\n"
            f"  {_ALLOWED}\n"
            f"  fix: remove those lines from {marker} (a marker is lastmile's own list; it is never edited by hand)")
    return [name for _, name in names]


def claim_dir(path: Path, *, option: str, default: bool = False) -> OutputDir:
    """Check that lastmile may write into ``path`` (see the module docstring); ``create()`` makes it when writing."""
    if path.is_symlink():
        raise Refused(f"{option} {path}: is a symlink (to {os.readlink(path)}); lastmile does not write through one\n"
                      f"  fix: pass the directory it points to, {path.resolve()}, or a new directory")
    if path.exists() and not path.is_dir():
        raise Refused(f"{option} {path}: exists and is not a directory\n  fix: name a new or empty directory")
    marker = path / MARKER
    if marker.is_symlink() or (marker.exists() and not marker.is_file()):
        raise Refused(f"{option} {path}: its {MARKER} is a symlink or not a regular file; nothing was written or "
                      f"deleted\n  {_ALLOWED}\n  fix: remove {marker}, then pass a new or empty directory")
    if path.is_dir() and marker.is_file():
        return OutputDir(path, _recorded(path, option))
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
