"""Editing a stack file in place (what `lastmile promote` does): a ruamel round trip that keeps what a reviewer
sees unchanged — comments, order, quoting, line endings (LF or CRLF), a UTF-8 BOM, the ``---``/``...`` document
markers and anchors — or refuses a file it cannot write back byte for byte (exit 2, saying why).

Owns reading a stack file for an edit and writing it back. Never decides what changes (``lastmile.promote``) nor
whether the result deploys (``lastmile.stackfile``).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from lastmile.evidence import PromotionError

BOM = "\ufeff"


def round_trip_yaml(explicit_start: bool = False, explicit_end: bool = False) -> YAML:
    rt = YAML(typ="rt")
    rt.preserve_quotes = True
    rt.width = 4096
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.explicit_start = explicit_start
    rt.explicit_end = explicit_end
    return rt


def _refuse(path: Path, why: str) -> PromotionError:
    return PromotionError(f"stacks/{path.name} cannot be edited without changing more than the release",
                          why, f"make stacks/{path.name} plain (UTF-8, one document, one kind of line ending, no "
                          "anchors in the slots), commit that, then promote again; or edit the slot by hand")


@dataclass(frozen=True)
class StackText:
    """A stack file read for an edit: its document (ruamel round-trip nodes) and how to write it back alike."""

    path: Path
    text: str  # as read, BOM and line endings included
    document: Any
    bom: bool
    newline: str
    explicit_start: bool
    explicit_end: bool

    @classmethod
    def read(cls, path: Path) -> StackText:
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError as error:
            raise _refuse(path, f"it is not UTF-8 ({error})") from None
        bom = text.startswith(BOM)
        body = text[len(BOM):] if bom else text
        crlf, lone_lf, lone_cr = body.count("\r\n"), re.subn(r"(?<!\r)\n", "", body)[1], re.subn(r"\r(?!\n)", "", body)[1]
        if lone_cr or (crlf and lone_lf):
            raise _refuse(path, f"its line endings are mixed ({crlf} CRLF, {lone_lf} LF, {lone_cr} CR): writing it "
                                "back would change lines the promotion does not touch")
        plain = body.replace("\r\n", "\n")
        start = bool(re.match(r"(?:#[^\n]*\n|\s*\n)*---(?:\s|$)", plain))
        end = bool(re.search(r"^\.\.\.\s*$", plain, re.MULTILINE))
        yaml = round_trip_yaml(start, end)
        try:
            document = yaml.load(plain)
        except YAMLError as error:
            raise _refuse(path, f"it is not one YAML document ({str(error).splitlines()[0]})") from None
        edited = cls(path, text, document, bom, "\r\n" if crlf else "\n", start, end)
        again = edited.render(document)
        if again != text:
            line = next(i for i, (a, b) in enumerate(zip(again.splitlines() + [""], text.splitlines() + [""]), 1)
                        if a != b)
            raise _refuse(path, f"written back unchanged it would differ at line {line} (YAML the round trip "
                                "does not keep, e.g. a flow style, an indentation or a scalar form of its own)")
        return edited

    def render(self, document: Any) -> str:
        buffer = io.StringIO()
        round_trip_yaml(self.explicit_start, self.explicit_end).dump(document, buffer)
        text = buffer.getvalue().replace("\n", self.newline)
        return (BOM if self.bom else "") + text

    def write(self, text: str) -> None:
        """Replace the file atomically with ``text`` (bytes as given: no newline translation)."""
        handle, temp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.")
        with os.fdopen(handle, "wb") as out:
            out.write(text.encode("utf-8"))
        os.replace(temp, self.path)
