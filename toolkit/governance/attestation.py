"""The release attestation: an in-toto Statement v1 with SLSA Provenance v1, in a DSSE envelope.

Subjects are every file of the bundle with its SHA-256 (the attestation itself excepted); the
predicate says how the bundle was built: the toolkit version and git commit, the resolved
params.yaml, the `dvc.lock` hash, and as resolved dependencies the base model's files, the training
data, its datasheet, the policy and every evaluation suite file, each with its digest. The DSSE
signature covers PAE(payloadType, payload), as the DSSE specification says, never the bare JSON.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

from toolkit import __version__

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
BUILD_TYPE = "urn:toolkit:release:v1"
BUILDER_ID = "urn:toolkit:cli"


def descriptors(digests: dict[str, str], prefix: str) -> list[dict]:
    """ResourceDescriptors (name + sha256) for files hashed by `toolkit.files.file_digests`."""
    return [{"name": f"{prefix}/{name}", "digest": {"sha256": digest}} for name, digest in digests.items()]


def statement(subjects: dict[str, str], *, params: dict, git_commit: str | None, dvc_lock_sha256: str | None,
              dependencies: list[dict], started: str, version: str) -> dict:
    dependencies = list(dependencies)
    if git_commit:
        dependencies.insert(0, {"name": "source", "digest": {"gitCommit": git_commit}})
    if dvc_lock_sha256:
        dependencies.insert(1 if git_commit else 0, {"name": "dvc.lock", "digest": {"sha256": dvc_lock_sha256}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": {"sha256": digest}} for name, digest in sorted(subjects.items())],
        "predicateType": PROVENANCE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {"params": params, "release_version": version},
                "internalParameters": {"toolkit_version": __version__},
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"toolkit": __version__}},
                "metadata": {"invocationId": f"release-v{version}", "startedOn": started,
                             "finishedOn": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")},
            },
        },
    }


def sign_statement(statement_: dict, signer) -> dict:
    from securesystemslib.dsse import Envelope

    payload = json.dumps(statement_, sort_keys=True, separators=(",", ":")).encode("utf-8")
    envelope = Envelope(payload, PAYLOAD_TYPE, {})
    envelope.sign(signer)
    return envelope.to_dict()


def read_envelope(path: Path) -> dict:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not {"payload", "payloadType", "signatures"} <= set(data):
        raise ValueError(f"{path.name} is not a DSSE envelope (payload, payloadType, signatures)")
    return data


def envelope_statement(envelope: dict) -> dict[str, Any]:
    """The in-toto statement inside an envelope (not verified: see `envelope_problem`)."""
    if envelope.get("payloadType") != PAYLOAD_TYPE:
        raise ValueError(f"payloadType is {envelope.get('payloadType')!r}, expected {PAYLOAD_TYPE}")
    value = json.loads(base64.b64decode(envelope["payload"]))
    if value.get("_type") != STATEMENT_TYPE or value.get("predicateType") != PROVENANCE_TYPE:
        raise ValueError("the payload is not an in-toto Statement v1 with SLSA Provenance v1")
    return value


def envelope_problem(envelope: dict, keys: dict) -> tuple[str | None, str | None]:
    """(keyid that verified, None) or (None, why the envelope's signature does not verify with `keys`)."""
    from securesystemslib.dsse import Envelope
    from securesystemslib.exceptions import VerificationError

    signed_by = [s.get("keyid", "") for s in envelope.get("signatures", [])]
    if not signed_by:
        return None, "the attestation carries no signature"
    if not any(keyid in keys for keyid in signed_by):
        return None, (f"signed by key {', '.join(k[:12] + '…' for k in signed_by)}, which is not among the "
                      f"{len(keys)} trusted key(s) (rotated out, or never trusted)")
    try:
        # from_dict rewrites the signatures it reads: give it a copy.
        verified = Envelope.from_dict(json.loads(json.dumps(envelope))).verify(list(keys.values()), 1)
    except (VerificationError, ValueError):
        return None, "the attestation's signature does not match its payload (changed after signing)"
    return next(iter(verified)), None


def subject_problems(statement_: dict, actual: dict[str, str]) -> list[str]:
    """Differences between the statement's subjects and the bundle's files (name -> sha256)."""
    listed = {s["name"]: s.get("digest", {}).get("sha256") for s in statement_.get("subject", [])}
    changed = sorted(n for n in listed if n in actual and actual[n] != listed[n])
    missing = sorted(set(listed) - set(actual))
    extra = sorted(set(actual) - set(listed))
    return [f"{label}: {', '.join(items[:5])}" for label, items in
            (("differs from the attested digest", changed), ("attested but missing", missing),
             ("not attested", extra)) if items]


def dependency_digests(statement_: dict, prefix: str) -> dict[str, str]:
    """name (relative to `prefix`) -> sha256 of the resolved dependencies under `prefix/`."""
    found = {}
    for dep in statement_.get("predicate", {}).get("buildDefinition", {}).get("resolvedDependencies", []):
        name = dep.get("name", "")
        if name.startswith(prefix + "/") and "sha256" in dep.get("digest", {}):
            found[name[len(prefix) + 1:]] = dep["digest"]["sha256"]
    return found
