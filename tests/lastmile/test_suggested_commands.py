"""Every command lastmile suggests is one it accepts: each `lastmile ...` line of a message (backticked in
the source of lastmile/, infra/, components/ and policy/) or of a `--help` text (the examples and the
backticked commands of every parser) is parsed by the real parser, `lastmile.cli.build_parser`.

A suggestion is read as a user would type it: f-string fields and the placeholders STACK, PATH and VERB
become sample values, `[optional]` parts are typed, `a | b | c` alternatives of verbs are each tried, and a
shell pipe (`| head -2`) ends the command. A bare verb path (`lastmile promote record-verification`) names a
command rather than suggesting a line: it must exist.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from lastmile import cli
from lastmile.common import REPO_ROOT

SOURCE_DIRS = ("lastmile", "infra", "components", "policy")
PLACEHOLDERS = {"STACK": "onprem-local", "PATH": "ci.pem", "VERB": "synth", "URL": "http://127.0.0.1:8080",
                "NAME": "x"}
BACKTICKED = re.compile(r"`(lastmile [^`]*)`")
EXAMPLE_LINE = re.compile(r"^\s*(lastmile \S.*?)(?:\s{2,}.*|\s+#.*)?$", re.M)


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(actions[0].choices) if actions else {}


ROOT = cli.build_parser()


def help_texts() -> dict[str, str]:
    texts = {"lastmile --help": ROOT.format_help()}
    for verb, parser in subparsers(ROOT).items():
        texts[f"lastmile {verb} --help"] = parser.format_help()
        for sub, subparser in subparsers(parser).items():
            texts[f"lastmile {verb} {sub} --help"] = subparser.format_help()
    return texts


def field_value(expression: str) -> str:
    """A sample for an f-string field, by its name."""
    name = expression.lower()
    if "deployment_flag" in name:  # promote's --k8s-revision / --endpoint-config-name with its value
        return "--k8s-revision <revision>"
    return "onprem-local" if "stack" in name else "origin/main" if "base" in name or "ref" in name else "x"


def source_strings(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every string literal of a module, implicit concatenations joined and f-string fields
    written back as ``{expression}``; comments are not messages and are left out."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.JoinedStr):
            text = "".join(part.value if isinstance(part, ast.Constant) else "{" + ast.unparse(part.value) + "}"
                           for part in node.values)
            found.append((node.lineno, text))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
    return found


def suggestions() -> list[tuple[str, str]]:
    """(where, command line) of every suggested `lastmile ...` command."""
    found: list[tuple[str, str]] = []
    for directory in SOURCE_DIRS:
        for path in sorted((REPO_ROOT / directory).rglob("*.py")):
            for line, text in source_strings(path):
                found += [(f"{path.relative_to(REPO_ROOT)}:{line}", m.group(1)) for m in BACKTICKED.finditer(text)]
    for where, text in help_texts().items():
        found += [(where, m.group(1)) for m in BACKTICKED.finditer(text)]
        found += [(where, m.group(1)) for m in EXAMPLE_LINE.finditer(text)]
    unique = {}
    for where, command in found:
        unique.setdefault(" ".join(command.split()), where)
    return sorted((where, command) for command, where in unique.items())


def verb_path_words(tokens: list[str]) -> int:
    """How many leading tokens name a verb path (verb, sub-verb) of the parser."""
    parser, count = ROOT, 0
    for token in tokens:
        choices = subparsers(parser)
        if token not in choices:
            break
        parser, count = choices[token], count + 1
    return count


def command_lines(command: str) -> list[list[str]]:
    """The argument vectors a suggestion stands for (see the module docstring)."""
    command = re.sub(r"\{([^{}]*)\}", lambda m: field_value(m.group(1)), command)
    command = re.sub(r"\[([^\[\]]*)\]", r"\1", command)
    command = re.sub(r"<[^<>]*>", "x", command)  # <who checked>
    parts = [part.split() for part in command.split(" | ")]
    first = parts[0][1:]  # without "lastmile"
    alternatives = [p for p in parts[1:] if p and verb_path_words(first[:-1] + p[:1]) == len(first)]
    if parts[1:] and len(alternatives) == len(parts) - 1:  # `up | preview | destroy STACK`
        tail = parts[-1][1:]
        lines = [first[:-1] + [word] + tail for word in [first[-1], *(p[0] for p in alternatives)]]
    else:  # a shell pipe ends the command
        lines = [first]
    return [shlex.split(" ".join(PLACEHOLDERS.get(token, token) for token in line)) for line in lines]


def parse_problem(argv: list[str]) -> str | None:
    """What the real parser says about ``argv`` (None: accepted, or --help shown)."""
    if argv and verb_path_words(argv) == len(argv):
        return None  # names a verb
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            cli.build_parser().parse_args(argv)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            return err.getvalue().strip().splitlines()[-1]
    return None


SUGGESTIONS = suggestions()
KNOWN_WRONG: dict[str, str] = {}  # a suggestion known to be wrong, with why (strict xfail until fixed)


def test_the_scan_finds_the_suggestions():
    commands = {command for _, command in SUGGESTIONS}
    assert "lastmile cluster up" in commands and "lastmile synth aws-prod" in commands, sorted(commands)
    assert len(SUGGESTIONS) >= 20


@pytest.mark.parametrize("where, command", [
    pytest.param(where, command, id=command, marks=[pytest.mark.xfail(reason=KNOWN_WRONG[command], strict=True)]
                 if command in KNOWN_WRONG else []) for where, command in SUGGESTIONS])
def test_every_suggested_command_parses(where, command):
    for argv in command_lines(command):
        problem = parse_problem(argv)
        assert problem is None, f"{where} suggests `{command}`, which lastmile refuses: {problem}"


@pytest.mark.parametrize("command", ["lastmile plan aws-dev", "lastmile clusters up", "lastmile up --stack x",
                                     "lastmile verify --stak aws-prod"])
def test_a_wrong_suggestion_would_be_caught(command):
    assert any(parse_problem(argv) for argv in command_lines(command))


def test_the_notations_are_read_as_a_user_would():
    assert command_lines("lastmile up | preview | outputs STACK") == [
        ["up", "onprem-local"], ["preview", "onprem-local"], ["outputs", "onprem-local"]]
    assert command_lines("lastmile cluster status | head -2") == [["cluster", "status"]]
    assert command_lines("lastmile refresh {args.stack}") == [["refresh", "onprem-local"]]
    assert command_lines("lastmile promote check-log [--against origin/main]") == [
        ["promote", "check-log", "--against", "origin/main"]]
