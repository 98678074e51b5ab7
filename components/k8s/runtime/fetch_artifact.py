"""Fetch a pinned model artifact from an S3-compatible store over TLS, verify it, unpack it.

Runs as the init container of every lastmile model-server pod (shipped in the slot's ConfigMap and
executed with the serving image's own Python: standard library only, Python >= 3.8). It:

1. refuses any endpoint that is not https:// (TLS is not optional);
2. GETs ``<endpoint>/<bucket>/<key>`` (path-style) signed with AWS Signature Version 4, verifying the
   server certificate against ``LASTMILE_CA_BUNDLE`` (or the system trust store) and its hostname;
3. streams the body to disk while hashing it, refusing more than ``LASTMILE_MAX_ARTIFACT_BYTES``;
4. compares the sha256 with ``LASTMILE_ARTIFACT_SHA256`` and exits non-zero on any difference,
   leaving nothing behind (the pod then never starts its server);
5. unpacks the tarball into ``<repository>/<model>/artifact`` refusing links, devices, absolute paths
   and ``..``; then copies the runtime files next to it so MLServer finds ``model-settings.json``.

Environment (all required unless marked):
  LASTMILE_STORE_ENDPOINT     https://host[:port]
  LASTMILE_STORE_BUCKET       bucket name
  LASTMILE_STORE_REGION       SigV4 signing region
  LASTMILE_ARTIFACT_KEY       object key
  LASTMILE_ARTIFACT_SHA256    64 lowercase hex digits
  LASTMILE_CREDENTIALS_FILE   JSON {"access_key_id": ..., "secret_access_key": ..., "session_token": (optional)}
  LASTMILE_CA_BUNDLE          (optional) PEM file of the CA that signs the store's certificate
  LASTMILE_MODEL_REPOSITORY   MLServer's model repository (an emptyDir)
  LASTMILE_MODEL_NAME         folder name of the model inside the repository
  LASTMILE_RUNTIME_DIR        folder holding model-settings.json and lastmile_runtime.py
  LASTMILE_MAX_ARTIFACT_BYTES (optional) default 268435456
Exit codes: 0 ok, 2 configuration, 3 transfer, 4 digest mismatch, 5 unsafe archive.
"""

import datetime
import hashlib
import hmac
import json
import os
import shutil
import ssl
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
RUNTIME_FILES = ("model-settings.json", "lastmile_runtime.py")
CHUNK_BYTES = 1 << 20


class Refused(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _env(name, default=None):
    value = os.environ.get(name, default)
    if value is None or value == "":
        raise Refused(2, "missing environment variable {}".format(name))
    return value


def _sign(key, message):
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def _quote_path(path):
    return urllib.parse.quote(path, safe="/-_.~")


def signed_headers(method, url, region, access_key_id, secret_access_key, session_token=None, now=None):
    """Headers of an AWS SigV4-signed request with an empty body (service s3)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    date_stamp = now.strftime("%Y%m%d")
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc
    headers = {"host": host, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    if session_token:
        headers["x-amz-security-token"] = session_token
    names = sorted(headers)
    canonical_headers = "".join("{}:{}\n".format(n, headers[n].strip()) for n in names)
    signed = ";".join(names)
    canonical_request = "\n".join(
        [method, _quote_path(parts.path or "/"), "", canonical_headers, signed, EMPTY_SHA256]
    )
    scope = "{}/{}/s3/aws4_request".format(date_stamp, region)
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    key = _sign(("AWS4" + secret_access_key).encode("utf-8"), date_stamp)
    for part in (region, "s3", "aws4_request"):
        key = _sign(key, part)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    headers["authorization"] = "AWS4-HMAC-SHA256 Credential={}/{}, SignedHeaders={}, Signature={}".format(
        access_key_id, scope, signed, signature
    )
    return headers


def object_url(endpoint, bucket, key):
    parts = urllib.parse.urlsplit(endpoint)
    if parts.scheme != "https" or not parts.hostname:
        raise Refused(2, "the model store endpoint must be https://host[:port], got {!r}".format(endpoint))
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise Refused(2, "the model store endpoint must have no path, query or fragment: {!r}".format(endpoint))
    return "https://{}/{}/{}".format(parts.netloc, bucket, key.lstrip("/"))


def download(url, headers, context, destination, max_bytes):
    """Stream ``url`` to ``destination``; return its sha256."""
    request = urllib.request.Request(url, headers=headers, method="GET")
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=context), _NoRedirect()
    )
    digest = hashlib.sha256()
    size = 0
    try:
        with opener.open(request, timeout=60) as response, open(destination, "wb") as out:
            while True:
                chunk = response.read(CHUNK_BYTES)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    raise Refused(3, "artifact exceeds {} bytes; refusing".format(max_bytes))
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as error:
        raise Refused(3, "GET {} answered HTTP {} {}".format(url, error.code, error.reason))
    except (urllib.error.URLError, ssl.SSLError, OSError) as error:
        raise Refused(3, "GET {} failed: {}".format(url, getattr(error, "reason", error)))
    return digest.hexdigest()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could leave TLS or the store; a signed GET is never followed elsewhere."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise urllib.error.HTTPError(req.full_url, code, "redirect to {} refused".format(newurl), headers, fp)


def safe_extract(archive, target):
    """Extract regular files and directories only, all inside ``target``."""
    root = os.path.realpath(target)
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
        for member in members:
            name = member.name
            path = os.path.realpath(os.path.join(root, name))
            if os.path.isabs(name) or ".." in name.split("/") or not (path == root or path.startswith(root + os.sep)):
                raise Refused(5, "archive member {!r} escapes the target directory".format(name))
            if not (member.isfile() or member.isdir()):
                raise Refused(5, "archive member {!r} is not a regular file or directory".format(name))
        for member in members:
            path = os.path.join(root, member.name)
            if member.isdir():
                os.makedirs(path, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            source = tar.extractfile(member)
            with open(path, "wb") as out:
                shutil.copyfileobj(source, out)
            os.chmod(path, 0o444)


def main():
    endpoint = _env("LASTMILE_STORE_ENDPOINT")
    bucket = _env("LASTMILE_STORE_BUCKET")
    region = _env("LASTMILE_STORE_REGION")
    key = _env("LASTMILE_ARTIFACT_KEY")
    expected = _env("LASTMILE_ARTIFACT_SHA256").lower()
    if len(expected) != 64 or any(c not in "0123456789abcdef" for c in expected):
        raise Refused(2, "LASTMILE_ARTIFACT_SHA256 is not a sha256 hex digest")
    repository = _env("LASTMILE_MODEL_REPOSITORY")
    model_name = _env("LASTMILE_MODEL_NAME")
    runtime_dir = _env("LASTMILE_RUNTIME_DIR")
    max_bytes = int(_env("LASTMILE_MAX_ARTIFACT_BYTES", str(256 * 1024 * 1024)))
    with open(_env("LASTMILE_CREDENTIALS_FILE"), "r", encoding="utf-8") as handle:
        try:
            credentials = json.load(handle)
            access_key_id = credentials["access_key_id"]
            secret_access_key = credentials["secret_access_key"]
        except (ValueError, KeyError, TypeError):
            raise Refused(2, "the credentials file is not JSON with access_key_id and secret_access_key")
    ca_bundle = os.environ.get("LASTMILE_CA_BUNDLE") or None
    context = ssl.create_default_context(cafile=ca_bundle)
    context.minimum_version = ssl.TLSVersion.TLSv1_2

    url = object_url(endpoint, bucket, key)
    headers = signed_headers("GET", url, region, access_key_id, secret_access_key, credentials.get("session_token"))
    model_dir = os.path.join(repository, model_name)
    artifact_dir = os.path.join(model_dir, "artifact")
    scratch = tempfile.mkdtemp(prefix=".fetch-", dir=repository)
    try:
        archive = os.path.join(scratch, "model.tar.gz")
        actual = download(url, headers, context, archive, max_bytes)
        if not hmac.compare_digest(actual, expected):
            raise Refused(4, "artifact {} has sha256 {}, the release pins {}: refusing to serve it".format(
                key, actual, expected))
        unpacked = os.path.join(scratch, "artifact")
        os.makedirs(unpacked)
        safe_extract(archive, unpacked)
        os.makedirs(model_dir, exist_ok=True)
        if os.path.exists(artifact_dir):
            shutil.rmtree(artifact_dir)
        os.replace(unpacked, artifact_dir)
        for name in RUNTIME_FILES:
            shutil.copyfile(os.path.join(runtime_dir, name), os.path.join(model_dir, name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print("fetched {} (sha256 {}) into {}".format(key, actual, artifact_dir))


if __name__ == "__main__":
    try:
        main()
    except Refused as refused:
        print("fetch-artifact: {}".format(refused), file=sys.stderr)
        sys.exit(refused.code)
