"""The one reader of stack files for the offline tools: ``stacks/Pulumi.<stack>.yaml`` -> the engine's config map.

Every verb that reads a stack file without the engine (synth, render, policy, contract, plan, promote,
and the engine verbs' pre-check) reads it here, so each of them refuses the same files with the same
message. What only the file itself can tell is checked here, all problems at once:

- YAML syntax, a document that is not a mapping, a ``config`` that is not a mapping;
- a key given twice in one mapping (YAML keeps the last one silently; Pulumi refuses the file);
- a config key outside the known namespaces (``lastmil:serving`` would be ignored by the program);
- a stack name that contradicts the file's ``topology``/``environment`` (``aws-prod`` with ``dev``);
- a plaintext value where a secret belongs (``lastmile:tls_private_key: "-----BEGIN ..."``) or a
  private key anywhere in the file.

What the values mean is the settings' business (``infra/settings/loader.py``, the one config reader):
``stack_settings`` runs them over the file, as ``pulumi up`` would.
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from components.problems import NO_VALUE, Problem
from lastmile.common import STACKS_DIR

NAMESPACE = "lastmile"
# Namespaces a stack file may set: the project's own and the providers' (aws:region, kubernetes:context, ...).
KNOWN_NAMESPACES = (NAMESPACE, "aws", "kubernetes", "pulumi")
ENVIRONMENTS = ("dev", "staging", "prod")
TOPOLOGIES = ("aws", "onprem", "hybrid")
SECRET_PLACEHOLDER = "[secret placeholder: ciphertext is only readable by the engine]"
_PRIVATE_KEY = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----")


class StackFileError(ValueError):
    """A stack file the tools refuse to read; the message lists every problem (field, value, allowed, fix)."""

    def __init__(self, stack: str, path: str, problems: list[Problem]) -> None:
        self.stack, self.problems = stack, problems
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        body = "\n".join(f"  {i}. {p.render()}" for i, p in enumerate(problems, 1))
        super().__init__(f"stack {stack!r}: {path} has {count}; nothing was written or deployed.\n{body}")


@dataclass(frozen=True)
class StackFile:
    name: str
    config: dict[str, str]
    secret_keys: list[str]
    # Secrets a team stack needs but keeps encrypted with the team's key, not in this clone: assumed set.
    assumed_secret_keys: tuple[str, ...] = ()
    # The stack file's ``secretsprovider`` (a team's ``awskms://...``); omitted: Pulumi's passphrase provider.
    secrets_provider: str = "passphrase"


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that records every key given twice in one mapping instead of keeping the last."""

    duplicates: list[tuple[str, int]]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, (str, int, float, bool)):
                continue
            if key in seen:
                self.duplicates.append((str(key), key_node.start_mark.line + 1))
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, where: str) -> tuple[Any, list[Problem]]:
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        document = loader.get_single_data()
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        return None, [Problem(f"{where}{line}", NO_VALUE, f"not valid YAML: {problem}",
                              "correct the YAML at that line (indentation, a missing ':' or quote)")]
    finally:
        loader.dispose()
    problems = [Problem(f"{where} line {line}", key, "this key is given twice in the same mapping; YAML "
                        "would silently keep the last one (Pulumi refuses such a file)",
                        f"keep one {key!r} and delete the other")
                for key, line in loader.duplicates]
    return document, problems


def _plaintext_secrets(config: dict[str, Any]) -> list[Problem]:
    from infra.settings.loader import SECRET_KEYS

    problems = []
    for full_key, value in config.items():
        key = str(full_key).split(":", 1)[-1]
        if str(full_key).startswith(f"{NAMESPACE}:") and key in SECRET_KEYS and not _is_secure(value):
            problems.append(Problem(str(full_key), "[plaintext, not shown]",
                                    "a secret must be stored encrypted (secure:), never as plaintext",
                                    f"remove it, rotate the value (it may be in git history) and set it with "
                                    f"`pulumi config set --secret {full_key}`"))
        elif _PRIVATE_KEY.search(json.dumps(value, default=str)):
            problems.append(Problem(str(full_key), "[a private key, not shown]",
                                    "the value holds a plaintext private key",
                                    "remove it, rotate the key, and pass it as a secret (secure:)"))
    return problems


def _is_secure(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {"secure"} and isinstance(value["secure"], str)


def _namespaces(config: dict[str, Any]) -> list[Problem]:
    problems = []
    for full_key in config:
        text = str(full_key)
        namespace, _, key = text.partition(":")
        if key and namespace in KNOWN_NAMESPACES:
            continue
        close = difflib.get_close_matches(namespace, KNOWN_NAMESPACES, n=1, cutoff=0.6)
        suggestion = f"{close[0]}:{key}" if close and key else f"{NAMESPACE}:{text}"
        problems.append(Problem(
            f"config.{text}", NO_VALUE,
            f"unknown config namespace {namespace if key else '(none)'!r}: nothing reads this key; allowed "
            f"namespaces: {', '.join(KNOWN_NAMESPACES)}",
            f"rename it to {suggestion!r}"))
    return problems


def _name_matches(stack: str, config: dict[str, Any]) -> list[Problem]:
    """``<topology>-<environment>``: the name says what the file deploys, so they must agree."""
    topology, _, suffix = stack.partition("-")
    problems = []
    given_topology = config.get(f"{NAMESPACE}:topology")
    if topology in TOPOLOGIES and given_topology in TOPOLOGIES and given_topology != topology:
        problems.append(Problem(f"{NAMESPACE}:topology", given_topology,
                                f"the stack is named {stack!r}, so its topology is {topology!r}",
                                f"set {NAMESPACE}:topology to {topology}, or name the stack after its topology"))
    given_env = config.get(f"{NAMESPACE}:environment")
    expected = suffix if suffix in ENVIRONMENTS else "dev"  # onprem-local and other laptop stacks are dev
    if topology in TOPOLOGIES and suffix and given_env in ENVIRONMENTS and given_env != expected:
        problems.append(Problem(f"{NAMESPACE}:environment", given_env,
                                f"the stack is named {stack!r}, so its environment is {expected!r} (prod "
                                "protections and defaults follow the environment)",
                                f"set {NAMESPACE}:environment to {expected}, or use the stack of that "
                                "environment"))
    return problems


def parse_stack_text(stack: str, text: str, where: str | None = None) -> dict[str, Any]:
    """A stack file's document, or StackFileError with every problem the file itself has."""
    where = where or f"stacks/Pulumi.{stack}.yaml"
    document, problems = _parse_yaml(text, where)
    if document is None and not problems:
        document = {}
    if not problems and not isinstance(document, dict):
        problems.append(Problem(where, type(document).__name__,
                                "a stack file is a YAML mapping with a 'config:' mapping",
                                "start the file with 'config:' and indent the lastmile: keys under it"))
    config = document.get("config") if isinstance(document, dict) else None
    if isinstance(document, dict) and config is not None and not isinstance(config, dict):
        problems.append(Problem(f"{where} config", type(config).__name__, "'config' must be a mapping",
                                "indent the lastmile: keys under 'config:'"))
    if isinstance(config, dict):
        problems += _namespaces(config) + _name_matches(stack, config) + _plaintext_secrets(config)
    if problems:
        raise StackFileError(stack, where, problems)
    return document


def list_stacks(stacks_dir: Path = STACKS_DIR) -> list[str]:
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in stacks_dir.glob("Pulumi.*.yaml"))


def _team_managed(document: dict[str, Any]) -> bool:
    """A team stack whose secrets provider (the team's KMS key) has not been initialised in this file."""
    return str(document.get("secretsprovider") or "").startswith("awskms://") and not document.get("encryptedkey")


def _flatten_secure(value: Any, path: str, secret_paths: list[str]) -> Any:
    """Replace ``secure:`` ciphertexts with a placeholder; remember where they were."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            secret_paths.append(path)
            return SECRET_PLACEHOLDER
        return {k: _flatten_secure(v, f"{path}.{k}", secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_flatten_secure(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    return value


def read_stack_file(stack: str, stacks_dir: Path = STACKS_DIR, overrides: dict[str, Any] | None = None, *,
                    assume_team_secrets: bool = True, text: str | None = None) -> StackFile:
    """Read ``stacks/Pulumi.<stack>.yaml`` into the flat ``{"ns:key": str}`` map the engine passes on.

    ``overrides`` replace whole top-level keys (``{"lastmile:rollout": {...}}``); tests use them to
    try a bad value without writing a file. ``assume_team_secrets``: a team stack's required secrets,
    which the team keeps encrypted with its KMS key, are taken as set (offline synthesis); the engine's
    pre-check passes False, so a stack that lacks one is refused before ``pulumi up``. ``text``: judge
    this content instead of the file (promotion checks the file it is about to write).
    Raises FileNotFoundError for an unknown stack and StackFileError for a file it refuses.
    """
    path = stacks_dir / f"Pulumi.{stack}.yaml"
    if text is None:
        if not path.is_file():
            raise FileNotFoundError(f"unknown stack {stack!r}: there is no stacks/Pulumi.{stack}.yaml\n"
                                    f"  allowed: {', '.join(list_stacks(stacks_dir)) or '(none)'}\n"
                                    "  fix: name one of these stacks")
        text = path.read_text()
    document = parse_stack_text(stack, text)
    raw = dict(document.get("config") or {})
    for key, value in (overrides or {}).items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    for key, value in raw.items():
        secret_paths: list[str] = []
        plain = _flatten_secure(value, key, secret_paths)
        if secret_paths:
            secret_keys.append(key)
        # The engine passes strings through and objects as JSON text.
        config[key] = plain if isinstance(plain, str) else json.dumps(plain)
    assumed: tuple[str, ...] = ()
    if assume_team_secrets and _team_managed(document):
        from infra.settings.loader import required_secret_keys

        sections = {k.split(":", 1)[1]: v for k, v in raw.items() if k.startswith(f"{NAMESPACE}:")}
        removed = {key for key, value in (overrides or {}).items() if value is None}  # a test's "not set"
        assumed = tuple(k for k in required_secret_keys(sections)
                        if f"{NAMESPACE}:{k}" not in config and f"{NAMESPACE}:{k}" not in removed)
        for key in assumed:
            config[f"{NAMESPACE}:{key}"] = SECRET_PLACEHOLDER
            secret_keys.append(f"{NAMESPACE}:{key}")
    return StackFile(name=stack, config=config, secret_keys=sorted(secret_keys), assumed_secret_keys=assumed,
                     secrets_provider=str(document.get("secretsprovider") or "passphrase"))


def stack_settings(stack: str, stacks_dir: Path = STACKS_DIR, *, assume_team_secrets: bool = True,
                   text: str | None = None) -> Any:
    """The stack's validated settings, as ``pulumi up`` would parse them (pure: no engine, no resource).

    Raises FileNotFoundError, StackFileError, or the settings' ConfigError listing every problem.
    """
    from infra.settings.loader import SECRET_KEYS, parse_settings

    stack_file = read_stack_file(stack, stacks_dir, assume_team_secrets=assume_team_secrets, text=text)
    raw: dict[str, Any] = {}
    secrets: dict[str, Any] = {}
    prefix = f"{NAMESPACE}:"
    for full_key, value in stack_file.config.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if key in SECRET_KEYS:
            secrets[key] = "[secret]"
        else:
            try:
                raw[key] = json.loads(value)
            except json.JSONDecodeError:
                raw[key] = value
    return parse_settings(stack, raw, secrets, secrets_provider=stack_file.secrets_provider)
