"""Java regular expressions from botocore's service models, translated for Python's ``re``.

AWS validates a string member's ``pattern`` server-side with Java's ``java.util.regex`` against the
whole value (a model name ``my_model`` fails ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}`` although ``my``
would match a prefix), so :func:`matches` uses ``re.fullmatch``. What differs between the dialects,
and how each difference is handled:

- ``\\p{L}``, ``\\p{Zs}``, ``\\p{LD}`` (Unicode general categories and Java's groups): expanded into
  explicit code-point ranges built from :mod:`unicodedata` (Python's Unicode version, which may
  trail Java's); ``\\P{..}`` inside a class becomes the complement's ranges.
- ``\\p{Alnum}``, ``\\p{Print}``, ... (POSIX names): Java's ASCII-only definitions.
- ``\\uD800\\uDC00-\\uDBFF\\uDFFF`` (UTF-16 surrogate pairs): Java matches supplementary code points
  with them; Python strings hold those as single code points, so pairs become ``\\U0001xxxx``.
- ``\\x{h...h}`` -> ``\\Uhhhhhhhh``; ``\\z`` -> ``\\Z``; Java's ``\\Z`` -> ``(?=\\n?\\Z)``;
  ``\\Q...\\E`` -> escaped text; ``\\h`` and ``\\v`` -> their Java classes; ``(?<name>`` -> ``(?P<name>``.
- a quantifier on an anchor (``${1,128}``, legal in Java, "nothing to repeat" in Python) is dropped:
  repeating a zero-width anchor matches the same strings.
- inline flags in mid-pattern (``(?!(?i)AWS_)``; Python wants global flags first) become scoped
  groups ``(?i:...)`` that run to the end of the enclosing group, reopened after each ``|``.
- in a class, ``-`` next to a set (``[\\w-_]``) and ``|``, ``~``, ``&`` are literals in Java: escaped.
- ``\\d``, ``\\w``, ``\\s``, ``\\b`` are ASCII-only in Java by default: compiled with ``re.ASCII``.

Constructs Python cannot express this way raise :class:`UntranslatablePattern`: class intersection
``&&``, nested class unions ``[a[b]]``, scripts, blocks and binary properties (``\\p{IsAlphabetic}``,
``\\p{InGreek}``), ``\\G``, ``\\R``, ``\\X``, ``\\c``, the flags ``d``/``u``/``U``, and stacked quantifiers
(``{11}{0,1011}``). Callers skip that one check and report it. In botocore 1.44.5 that is 4 of
4,876 distinct patterns, none in SageMaker, Application Auto Scaling, CloudWatch or EC2.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import lru_cache


class UntranslatablePattern(ValueError):
    """A Java regex construct with no faithful Python ``re`` translation."""


# Java's POSIX classes (ASCII-only by default) and named properties, as code-point spans.
_NAMED_SPANS: dict[str, list[tuple[int, int]]] = {
    "Lower": [(0x61, 0x7A)],
    "Upper": [(0x41, 0x5A)],
    "ASCII": [(0x00, 0x7F)],
    "Alpha": [(0x41, 0x5A), (0x61, 0x7A)],
    "Digit": [(0x30, 0x39)],
    "Alnum": [(0x30, 0x39), (0x41, 0x5A), (0x61, 0x7A)],
    "Punct": [(0x21, 0x2F), (0x3A, 0x40), (0x5B, 0x60), (0x7B, 0x7E)],
    "Graph": [(0x21, 0x7E)],
    "Print": [(0x20, 0x7E)],
    "Blank": [(0x09, 0x09), (0x20, 0x20)],
    "Cntrl": [(0x00, 0x1F), (0x7F, 0x7F)],
    "XDigit": [(0x30, 0x39), (0x41, 0x46), (0x61, 0x66)],
    "Space": [(0x09, 0x0D), (0x20, 0x20)],
    "L1": [(0x00, 0xFF)],
    "all": [(0x00, 0x10FFFF)],
    "IsWhitespace": [(0x09, 0x0D), (0x20, 0x20), (0x85, 0x85), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A),
                     (0x2028, 0x2029), (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000)],
}
# Java's category groups beyond the one- and two-letter general categories.
_CATEGORY_GROUPS = {"LC": ("Lu", "Ll", "Lt"), "LD": ("L", "Nd")}
_JAVA_HSPACE = " \\t\\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"
_JAVA_VSPACE = "\\n\\x0b\\f\\r\\x85\\u2028\\u2029"
_GENERAL_CATEGORY = re.compile(
    r"(?:general_category=|gc=|Is)?(L[CDultmo]?|M[nce]?|N[dlo]?|P[cdseifo]?|S[mcko]?|Z[slp]?|C[cfson]?)"
)
_PYTHON_FLAGS = set("imsx-")
_QUANTIFIER = re.compile(r"(?:[*+?]|\{\d+(?:,\d*)?\})[?+]?")
_SHORTHAND_SETS = set("dDwWsS")


@lru_cache(maxsize=1)
def _category_ranges() -> dict[str, list[tuple[int, int]]]:
    """Code-point ranges per two-letter general category (one pass over all code points)."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    start, current = 0, unicodedata.category(chr(0))
    for cp in range(1, sys.maxunicode + 2):
        cat = unicodedata.category(chr(cp)) if cp <= sys.maxunicode else ""
        if cat != current:
            ranges.setdefault(current, []).append((start, cp - 1))
            start, current = cp, cat
    return ranges


def _spans(name: str) -> list[tuple[int, int]]:
    prefixes = _CATEGORY_GROUPS.get(name, (name,))
    found = [span for cat, spans in _category_ranges().items() if cat.startswith(prefixes) for span in spans]
    merged: list[tuple[int, int]] = []
    for low, high in sorted(found):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    return merged


def _complement(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out, nxt = [], 0
    for low, high in spans:
        if low > nxt:
            out.append((nxt, low - 1))
        nxt = high + 1
    if nxt <= sys.maxunicode:
        out.append((nxt, sys.maxunicode))
    return out


def _escape_cp(cp: int) -> str:
    return f"\\U{cp:08x}"


@lru_cache(maxsize=None)
def _property_class(name: str, negated: bool) -> str:
    """The body of a character class (no brackets) for ``\\p{name}``, or its complement."""
    if name in _NAMED_SPANS:
        spans = _NAMED_SPANS[name]
    else:
        match = _GENERAL_CATEGORY.fullmatch(name)
        if not match:
            raise UntranslatablePattern(f"\\p{{{name}}}: scripts, blocks and binary properties are not in Python's re")
        spans = _spans(match.group(1))
    if negated:
        spans = _complement(spans)
    return "".join(_escape_cp(lo) if lo == hi else f"{_escape_cp(lo)}-{_escape_cp(hi)}" for lo, hi in spans)


def _read_braced(pattern: str, at: int) -> tuple[str, int]:
    """Read ``{...}`` starting at ``pattern[at] == '{'``; return the inside and the index after it."""
    end = pattern.find("}", at)
    if pattern[at : at + 1] != "{" or end < 0:
        raise UntranslatablePattern(f"unterminated {{...}} at {at}")
    return pattern[at + 1 : end], end + 1


def _read_u(pattern: str, at: int) -> tuple[int, int] | None:
    """Parse ``\\uXXXX`` at ``at``; return (code unit, index after) or None."""
    if pattern[at : at + 2] == "\\u" and re.fullmatch(r"[0-9a-fA-F]{4}", pattern[at + 2 : at + 6]):
        return int(pattern[at + 2 : at + 6], 16), at + 6
    return None


class _Translator:
    """One left-to-right pass; state: inside a class or not, and the open groups' inline-flag scopes."""

    def __init__(self, pattern: str) -> None:
        self.p = pattern
        self.i = 0
        self.out: list[str] = []
        self.in_class = False
        self.class_start = 0
        self.after_set = False  # the last class item was a set (\\w, \\p{L}): a following '-' is literal
        self.scopes: list[list[str]] = [[]]  # per open group: inline flags opened inside it

    def run(self) -> str:
        while self.i < len(self.p):
            if self.p[self.i] == "\\" and self.i + 1 < len(self.p):
                self._escape()
            elif self.in_class:
                self._class_char()
            else:
                self._char()
        if self.in_class:
            raise UntranslatablePattern("unterminated character class")
        self._close_scopes()
        return "".join(self.out)

    def _emit_set(self, body: str, negated: bool = False) -> None:
        self.out.append(body if self.in_class else f"[{'^' if negated else ''}{body}]")
        self.after_set = self.in_class

    def _escape(self) -> None:
        p, i = self.p, self.i
        nxt = p[i + 1]
        self.after_set = False
        unit = _read_u(p, i)
        if unit is not None:
            code, after = unit
            low = _read_u(p, after)
            if 0xD800 <= code <= 0xDBFF and low is not None and 0xDC00 <= low[0] <= 0xDFFF:
                code, after = 0x10000 + ((code - 0xD800) << 10) + (low[0] - 0xDC00), low[1]
            self.out.append(_escape_cp(code))
            self.i = after
        elif nxt in "pP":
            name, after = _read_braced(p, i + 2) if p[i + 2 : i + 3] == "{" else (p[i + 2 : i + 3], i + 3)
            negated = nxt == "P"
            # Inside a class a negated property becomes its complement's ranges; outside, [^...].
            self._emit_set(_property_class(name, negated and self.in_class), negated and not self.in_class)
            self.i = after
        elif nxt == "x" and p[i + 2 : i + 3] == "{":
            digits, after = _read_braced(p, i + 2)
            self.out.append(_escape_cp(int(digits, 16)))
            self.i = after
        elif nxt == "Q":
            end = p.find("\\E", i + 2)
            self.out.append(re.escape(p[i + 2 :] if end < 0 else p[i + 2 : end]))
            self.i = len(p) if end < 0 else end + 2
        elif nxt in "hv":
            self._emit_set(_JAVA_HSPACE if nxt == "h" else _JAVA_VSPACE)
            self.i += 2
        else:
            replacement = {"z": "\\Z", "Z": "(?=\\n?\\Z)", "e": "\\x1b"}.get(nxt)
            if nxt in "GRXc":
                raise UntranslatablePattern(f"\\{nxt} has no Python re equivalent")
            self.out.append(replacement or p[i : i + 2])
            self.after_set = self.in_class and nxt in _SHORTHAND_SETS
            self.i += 2

    def _class_char(self) -> None:
        ch = self.p[self.i]
        if ch == "[":
            raise UntranslatablePattern("nested character class (Java class union)")
        if self.p.startswith("&&", self.i):
            raise UntranslatablePattern("character class intersection &&")
        if ch == "]" and self.i > self.class_start:
            self.in_class = False
            self.out.append(ch)
        elif ch == "-" and (self.after_set or self._set_follows()):
            self.out.append("\\-")  # Java: a '-' next to a set is literal; Python: bad range
        elif ch in "|~&":
            self.out.append("\\" + ch)  # literal in Java; doubled, a (future) set operation in Python
        else:
            self.out.append(ch)
        self.after_set = False
        self.i += 1

    def _set_follows(self) -> bool:
        rest = self.p[self.i + 1 : self.i + 3]
        return len(rest) == 2 and rest[0] == "\\" and (rest[1] in _SHORTHAND_SETS or rest[1] in "pPhv")

    def _char(self) -> None:
        p, ch = self.p, self.p[self.i]
        self.i += 1
        if ch == "[":
            self.in_class = True
            self.out.append(ch)
            if p[self.i : self.i + 1] == "^":
                self.out.append("^")
                self.i += 1
            self.class_start = self.i  # ']' first in a class is a literal in both dialects
            self.after_set = False
        elif ch == "(":
            flags = re.match(r"\?([a-zA-Z-]+)\)", p[self.i :])
            if flags:  # Java inline flags apply to the rest of the group: a scoped group in Python
                if not set(flags.group(1)) <= _PYTHON_FLAGS:
                    raise UntranslatablePattern(f"inline flags (?{flags.group(1)}) (only i, m, s, x translate)")
                self.out.append(f"(?{flags.group(1)}:")
                self.scopes[-1].append(flags.group(1))
                self.i += flags.end()
                return
            if p.startswith("?<", self.i) and p[self.i + 2 : self.i + 3] not in ("=", "!"):
                self.out.append("(?P<")
                self.i += 2
            else:
                self.out.append("(")
            self.scopes.append([])
        elif ch == ")":
            if len(self.scopes) > 1:
                self._close_scopes()
                self.scopes.pop()
            self.out.append(")")
        elif ch == "|":
            reopen = list(self.scopes[-1])
            self._close_scopes()
            self.out.append("|")
            for flags in reopen:
                self.out.append(f"(?{flags}:")
                self.scopes[-1].append(flags)
        elif ch in "^$":
            self.out.append(ch)
            quantifier = _QUANTIFIER.match(p, self.i)
            if quantifier:
                self.i = quantifier.end()  # a repeated zero-width anchor is the anchor
        else:
            self.out.append(ch)

    def _close_scopes(self) -> None:
        self.out.append(")" * len(self.scopes[-1]))
        self.scopes[-1].clear()


def translate(pattern: str) -> str:
    """Translate one Java regex into Python ``re`` syntax (to be compiled with ``re.ASCII``)."""
    return _Translator(pattern).run()


@lru_cache(maxsize=None)
def compile_java(pattern: str) -> re.Pattern[str]:
    """Translate and compile; raises :class:`UntranslatablePattern` when Python cannot express it."""
    translated = translate(pattern)
    try:
        return re.compile(translated, re.ASCII)
    except re.error as exc:
        raise UntranslatablePattern(f"Python re rejects the translation: {exc}") from exc


def matches(pattern: str, value: str) -> bool:
    """Whether ``value`` satisfies the Java ``pattern`` as AWS applies it (whole value)."""
    return compile_java(pattern).fullmatch(value) is not None
