"""Signed promotion evidence: in-toto Statements (v1) in DSSE envelopes, the keys that may sign them, and their check.

Owns what a record says (one Statement per verification or promotion, its subject the released model artifact),
how it is sealed (signed by a key CI holds, or left unsigned: ``manual``), which public keys are trusted
(``promotions/trusted-keys/*.json``, whose changes ``.github/CODEOWNERS`` sends to review) and the check of one
envelope against them. Never touches the order of records or the files they live in (``lastmile.records``), nor
stack files and promotion rules (``lastmile.promote``). The cryptography is securesystemslib's (DSSE, Ed25519
keys, AWS KMS); nothing here signs or verifies by hand.

A signature proves that a holder of a trusted private key (the deploy workflow's secret, or a KMS key only the
deploy role may use) sealed exactly this statement. It does not prove that the check it reports was good, that
the clock it carries was right, or where the record sits in the log: order and completeness come from the
append-only chain and git history (``lastmile.records``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from infra.settings.common import Environment, Strict
from lastmile.exitcodes import ExitCode

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
PREDICATE_TYPES = {
    "verification": "https://lastmile.dev/attestations/verification/v1",
    "promotion": "https://lastmile.dev/attestations/promotion/v1",
}
KEY_ENV = "LASTMILE_EVIDENCE_KEY"            # an Ed25519 private key (PKCS#8 PEM): the CI secret itself
KEY_FILE_ENV = "LASTMILE_EVIDENCE_KEY_FILE"  # ... or the path of a file that holds it
KMS_KEY_ENV = "LASTMILE_EVIDENCE_KMS_KEY"    # an AWS KMS asymmetric signing key: id, ARN or alias/...
SIGNER_ENVS = (KEY_ENV, KEY_FILE_ENV, KMS_KEY_ENV)
KMS_RAW_LIMIT_BYTES = 4096  # KMS signs a message up to this size itself; longer ones are signed as a digest


class PromotionError(Exception):
    """A promotion, or the evidence it needs, was refused. The message says what, why, and how to fix it."""

    exit_code = ExitCode.REFUSED

    def __init__(self, what: str, why: str, fix: str) -> None:
        self.what, self.why, self.fix = what, why, fix
        super().__init__(f"{what}\n  why: {why}\n  fix: {fix}")


class CannotCheck(PromotionError):
    """A check could not run (git, KMS or a key file not reachable): it never passes, the verb exits 3."""

    exit_code = ExitCode.UNAVAILABLE


class _KeyFile(Strict):
    keyid: str
    keytype: str
    scheme: str
    keyval: dict[str, str]
    environments: list[Environment]
    signer: str  # where the private half lives, in words (e.g. "the GitHub secret LASTMILE_EVIDENCE_KEY")


@dataclass(frozen=True)
class TrustedKey:
    name: str
    key: Any  # securesystemslib.signer.Key
    environments: frozenset[str]
    signer: str

    @property
    def keyid(self) -> str:
        return str(self.key.keyid)


def load_trusted_keys(directory: Path) -> dict[str, TrustedKey]:
    """The trusted public keys by key id; a malformed file is refused naming the file and the field."""
    from securesystemslib.signer import Key

    keys: dict[str, TrustedKey] = {}
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        where = f"promotions/trusted-keys/{path.name}"
        try:
            parsed = _KeyFile.model_validate_json(path.read_bytes())
            key = Key.from_dict(parsed.keyid, parsed.model_dump(include={"keytype", "scheme", "keyval"}))
        except ValidationError as error:
            fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in error.errors())
            raise PromotionError(f"{where} is not a trusted-key file", fields,
                                 "write it with `lastmile promote trust-key` (see promotions/README.md)") from None
        except (ValueError, KeyError) as error:
            raise PromotionError(f"{where}: its key is not one securesystemslib can verify with", str(error),
                                 "write it with `lastmile promote trust-key` (see promotions/README.md)") from None
        if parsed.keyid in keys:
            raise PromotionError(f"{where}: key id {parsed.keyid} is trusted twice",
                                 f"also in {keys[parsed.keyid].name}", "keep one file per key")
        keys[parsed.keyid] = TrustedKey(path.stem, key, frozenset(e.value for e in parsed.environments), parsed.signer)
    return keys


def trusted_key_document(key: Any, environments: list[str], signer: str) -> str:
    """The text of a trusted-key file for the public ``key`` (what `lastmile promote trust-key` commits)."""
    body = {"keyid": key.keyid, **key.to_dict(), "environments": environments, "signer": signer}
    _KeyFile.model_validate(body)
    return json.dumps(body, indent=2) + "\n"


# ---------------------------------------------------------------------------------------------
# Statements and envelopes


def statement(kind: str, subject: Mapping[str, str], predicate: dict[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1 about the model artifact ``subject`` (model, version, sha256)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{subject['model']}@{subject['version']}", "digest": {"sha256": subject["sha256"]}}],
        "predicateType": PREDICATE_TYPES[kind],
        "predicate": predicate,
    }


def seal(body: dict[str, Any], signer: Any | None) -> dict[str, Any]:
    """The DSSE envelope of ``body``, signed by ``signer`` (None: unsigned, a manual record)."""
    from securesystemslib.dsse import Envelope

    payload = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    envelope = Envelope(payload, PAYLOAD_TYPE, {})
    if signer is not None:
        try:
            envelope.sign(signer)
        except Exception as error:  # boto3/botocore: KMS unreachable, no permission, no region
            raise CannotCheck("the evidence could not be signed", f"{type(error).__name__}: {error}",
                              f"check that the key named by {KMS_KEY_ENV} exists and this role may kms:Sign it, "
                              "and that AWS_REGION is set") from None
    return envelope.to_dict()


@dataclass(frozen=True)
class Opened:
    """What an envelope says, and who (which trusted key, or nobody) signed it."""

    kind: str
    predicate: dict[str, Any]
    subject: dict[str, str]
    signed_by: TrustedKey | None
    payload_sha256: str


def open_envelope(envelope: Any, keys: Mapping[str, TrustedKey]) -> tuple[Opened | None, list[str]]:
    """Check one envelope: its shape, then every signature against the trusted keys. Returns (record, problems)."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError

    try:
        sealed = Envelope.from_dict(json.loads(json.dumps(envelope)))  # from_dict edits its argument: a copy
        body = json.loads(sealed.payload)
    except Exception as error:  # not base64, not JSON, a malformed signature: all a refusal, never a crash
        return None, [f"not a DSSE envelope ({type(error).__name__}: {error})"]
    problems = _statement_problems(sealed.payload_type, body)
    if problems:
        return None, problems
    kind = next(k for k, t in PREDICATE_TYPES.items() if t == body["predicateType"])
    signed_by = None
    for keyid, signature in sealed.signatures.items():
        trusted = keys.get(keyid)
        if trusted is None:
            problems.append(f"signed by key {keyid[:16]}, which is not in promotions/trusted-keys/")
            continue
        try:
            trusted.key.verify_signature(signature, sealed.pae())
        except (UnverifiedSignatureError, VerificationError):
            problems.append(f"the signature of key {trusted.name} does not verify: the statement was edited after "
                            "it was signed, or the signature forged")
            continue
        signed_by = trusted
    name, digest = body["subject"][0]["name"], body["subject"][0]["digest"]["sha256"]
    model, _, version = name.partition("@")
    opened = Opened(kind, body["predicate"], {"model": model, "version": version, "sha256": digest}, signed_by,
                    hashlib.sha256(sealed.payload).hexdigest())
    return (None if problems else opened), problems


def _statement_problems(payload_type: str, body: Any) -> list[str]:
    if payload_type != PAYLOAD_TYPE:
        return [f"payloadType {payload_type!r}: allowed {PAYLOAD_TYPE}"]
    if not isinstance(body, dict) or body.get("_type") != STATEMENT_TYPE:
        return [f"not an in-toto Statement: _type must be {STATEMENT_TYPE}"]
    problems = []
    if body.get("predicateType") not in PREDICATE_TYPES.values():
        problems.append(f"predicateType {body.get('predicateType')!r}: allowed {', '.join(PREDICATE_TYPES.values())}")
    subject = body.get("subject")
    if not (isinstance(subject, list) and len(subject) == 1 and isinstance(subject[0], dict)
            and isinstance(subject[0].get("name"), str) and "@" in subject[0]["name"]
            and isinstance(subject[0].get("digest"), dict) and isinstance(subject[0]["digest"].get("sha256"), str)):
        problems.append("subject: one {name: <model>@<version>, digest: {sha256}} is required")
    if not isinstance(body.get("predicate"), dict):
        problems.append("predicate: an object is required")
    return problems


# ---------------------------------------------------------------------------------------------
# Signers: the key CI holds


def signer_from_env(environ: Mapping[str, str], keys: Mapping[str, TrustedKey], environment: str) -> Any | None:
    """The signer the environment names (None when it names none: the record is manual), checked to be a trusted
    key allowed to sign for ``environment``. Reads the key, never prints it."""
    named = {name: environ[name] for name in SIGNER_ENVS if environ.get(name)}
    if not named:
        return None
    if len(named) > 1:
        raise PromotionError(f"{' and '.join(named)} are both set", "one signing key signs a record",
                             f"set only one of {', '.join(SIGNER_ENVS)}")
    [(name, value)] = named.items()
    private = None if name == KMS_KEY_ENV else _private_key(name, value)
    public = kms_public_key(value) if private is None else _public_of(private)
    trusted = next((k for k in keys.values() if _same_key(k.key, public)), None)
    if trusted is None:
        raise PromotionError(f"the key {name} names is not trusted",
                             "records are accepted only when signed by a key in promotions/trusted-keys/",
                             "commit its public key with `lastmile promote trust-key` (a reviewed change), or "
                             "unset the variable to record unsigned manual evidence")
    if environment not in trusted.environments:
        raise PromotionError(f"key {trusted.name} may not sign for environment {environment!r}",
                             f"promotions/trusted-keys/{trusted.name}.json allows "
                             f"{', '.join(sorted(trusted.environments)) or 'none'}",
                             "use the key of that environment, or widen the file's environments (a reviewed change)")
    if name == KMS_KEY_ENV:
        return _kms_signer_class()(value, trusted.key)
    from securesystemslib.signer import CryptoSigner

    return CryptoSigner(private, trusted.key)


def _private_key(name: str, value: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        pem = Path(value).read_bytes() if name == KEY_FILE_ENV else value.encode()
    except OSError as error:
        raise CannotCheck(f"{name}: the key file cannot be read", str(error),
                          "point it at the file the deploy workflow wrote the secret to") from None
    try:
        key = load_pem_private_key(pem, None)
    except (ValueError, TypeError) as error:
        raise PromotionError(f"{name} holds no unencrypted PEM private key", str(error).splitlines()[0],
                             "store the PKCS#8 PEM that `lastmile promote trust-key --name ci-ed25519 --environments dev,staging,prod "
                             "--generate-ed25519 ci-evidence.pem` wrote") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise PromotionError(f"{name} holds a {type(key).__name__}", "allowed: an Ed25519 private key",
                             "generate one with `lastmile promote trust-key --name ci-ed25519 --environments "
                             "dev,staging,prod --generate-ed25519 ci-evidence.pem`")
    return key


def _public_of(private: Any) -> Any:
    from securesystemslib.signer import SSlibKey

    return SSlibKey.from_crypto(private.public_key())


def kms_public_key(key_id: str) -> Any:
    """The public half of a KMS key (kms:GetPublicKey), as securesystemslib reads it."""
    from securesystemslib.signer import AWSSigner

    try:
        return AWSSigner.import_(key_id)[1]
    except Exception as error:  # boto3/botocore errors: unreachable, denied, no region, no such key
        raise CannotCheck(f"{KMS_KEY_ENV} {key_id!r}: its public key cannot be read from AWS KMS",
                          f"{type(error).__name__}: {error}",
                          "check the key id or alias, AWS_REGION and that this role may kms:GetPublicKey") from None


def _same_key(trusted: Any, candidate: Any) -> bool:
    """Whether the public securesystemslib key ``candidate`` is the trusted key (same type, scheme and material)."""
    return bool((trusted.keytype, trusted.scheme, trusted.keyval) == (candidate.keytype, candidate.scheme,
                                                                       candidate.keyval))


def _kms_signer_class() -> type:
    from securesystemslib.signer import AWSSigner, Signature

    class KmsSigner(AWSSigner):
        """securesystemslib's AWS KMS signer; messages KMS can take whole are sent whole (MessageType RAW), so
        that KMS hashes them itself: no digest is computed here, and the same request works against moto."""

        def sign(self, payload: bytes) -> Any:
            if len(payload) > KMS_RAW_LIMIT_BYTES:
                return super().sign(payload)
            answer = self.client.sign(KeyId=self.aws_key_id, Message=payload, MessageType="RAW",
                                      SigningAlgorithm=self.aws_algo)
            return Signature(self.public_key.keyid, answer["Signature"].hex())

    return KmsSigner


def generate_ed25519() -> tuple[Any, bytes]:
    """A new Ed25519 key pair: (its public securesystemslib key, the PKCS#8 PEM of its private half)."""
    from securesystemslib.signer import CryptoSigner

    signer = CryptoSigner.generate_ed25519()
    return signer.public_key, signer.private_bytes

