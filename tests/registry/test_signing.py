"""Release keys, DSSE attestations and signed ledger entries, without a pipeline run."""

import base64
import json
import os
import stat
import subprocess

import pytest

from conftest import run_in
from toolkit.errors import ConfigError
from toolkit.registry import ledger as ledger_mod
from toolkit.governance.attestation import (envelope_problem, envelope_statement, sign_statement, statement,
                                            subject_problems)
from toolkit.registry.signing import generate_key, load_keys, load_signer


@pytest.fixture
def key_pair(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return generate_key(tmp_path / "registry")


def test_generate_writes_a_0600_private_key_outside_and_a_public_key_in_the_keyring(tmp_path, key_pair):
    assert key_pair.private_path.parent == tmp_path / "config/toolkit/keys"
    assert stat.S_IMODE(key_pair.private_path.stat().st_mode) == 0o600
    assert key_pair.public_path == tmp_path / f"registry/keys/{key_pair.keyid}.pub"
    assert b"PRIVATE" not in key_pair.public_path.read_bytes()
    assert list(load_keys([key_pair.public_path])) == [key_pair.keyid]
    assert list(load_keys([tmp_path / "registry/keys"])) == [key_pair.keyid]      # a keyring folder
    second = generate_key(tmp_path / "registry", tmp_path / "second.key")
    keyring = tmp_path / "keyring.pem"                                              # a keyring file
    keyring.write_bytes(key_pair.public_path.read_bytes() + second.public_path.read_bytes())
    assert set(load_keys([keyring])) == {key_pair.keyid, second.keyid}
    with pytest.raises(ConfigError, match="not a PEM public key"):
        load_keys([key_pair.private_path])


def test_generate_refuses_a_private_key_inside_a_git_work_tree_and_overwriting(tmp_path, key_pair):
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    with pytest.raises(ConfigError, match="inside the git work tree"):
        generate_key(repo / "registry", repo / "secrets/release.key")
    with pytest.raises(ConfigError, match="already there"):
        generate_key(tmp_path / "registry", key_pair.private_path)


def test_a_private_key_readable_by_others_or_not_a_key_is_refused_without_showing_it(tmp_path, key_pair):
    key_pair.private_path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_signer(key_pair.private_path)
    garbage = tmp_path / "garbage.key"
    fd = os.open(garbage, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"-----BEGIN PRIVATE KEY-----\nTOPSECRETMATERIAL\n-----END PRIVATE KEY-----\n")
    os.close(fd)
    with pytest.raises(ConfigError) as caught:
        load_signer(garbage)
    assert "TOPSECRET" not in str(caught.value) and "PKCS#8" in str(caught.value)


def _envelope(signer, subjects):
    return sign_statement(statement(subjects, params={"seed": 1}, git_commit="a" * 40, dvc_lock_sha256="b" * 64,
                                    dependencies=[{"name": "base/config.json", "digest": {"sha256": "c" * 64}}],
                                    started="2026-12-02T00:00:00+00:00", version="1"), signer)


def test_dsse_envelope_verifies_and_names_every_way_it_can_fail(tmp_path, key_pair, monkeypatch):
    signer = load_signer(key_pair.private_path)
    keys = load_keys([key_pair.public_path])
    envelope = _envelope(signer, {"adapter/a.safetensors": "d" * 64})
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement_ = envelope_statement(envelope)
    assert statement_["_type"] == "https://in-toto.io/Statement/v1"
    assert statement_["predicateType"] == "https://slsa.dev/provenance/v1"
    assert envelope_problem(envelope, keys) == (key_pair.keyid, None)
    assert subject_problems(statement_, {"adapter/a.safetensors": "d" * 64}) == []
    assert subject_problems(statement_, {"adapter/a.safetensors": "e" * 64, "x": "f" * 64}) == [
        "differs from the attested digest: adapter/a.safetensors", "not attested: x"]

    # A payload changed after signing (e.g. a swapped subject digest).
    payload = envelope_statement(envelope)
    payload["subject"][0]["digest"]["sha256"] = "e" * 64
    forged = {**envelope, "payload": base64.b64encode(json.dumps(payload).encode()).decode()}
    assert "does not match its payload" in envelope_problem(forged, keys)[1]
    # Signed by another key, and no signature at all.
    other = generate_key(tmp_path / "other", tmp_path / "other.key")
    stranger = _envelope(load_signer(other.private_path), {"adapter/a.safetensors": "d" * 64})
    assert "not among the 1 trusted key(s)" in envelope_problem(stranger, keys)[1]
    assert "no signature" in envelope_problem({**envelope, "signatures": []}, keys)[1]
    # The attacker re-signs the forged payload with their key and puts our key id on it.
    resigned = {**stranger, "signatures": [{**stranger["signatures"][0], "keyid": key_pair.keyid}]}
    assert "does not match" in envelope_problem(resigned, keys)[1]


def test_ledger_signatures_pin_the_chain_and_catch_removal_and_rotation(tmp_path, key_pair):
    ledger = tmp_path / "ledger.jsonl"
    ledger_mod.append(ledger, {"version": "1", "note": "before signing"})
    signer = load_signer(key_pair.private_path)
    ledger_mod.append(ledger, {"version": "2"}, signer=signer)
    ledger_mod.append(ledger, {"version": "3"}, signer=signer)
    keys = load_keys([key_pair.public_path])
    entries = ledger_mod.read_entries(ledger)
    assert ledger_mod.check_chain_entries(entries) == []
    failures, warnings = ledger_mod.signature_problems(entries, keys, "3")
    assert failures == [] and warnings == ["line 1 (v1): unsigned (released before signing was adopted)"]
    assert ledger_mod.signature_problems(entries, keys, "1")[0] == ["line 1 (v1): this release's entry is not signed"]

    # Whole-chain rewrite without the key: edit v2, drop its signature, recompute every hash.
    rewritten, previous = [], ledger_mod.GENESIS
    for entry in entries:
        entry = {k: v for k, v in entry.items() if k not in ("entry_sha256",)}
        if entry["version"] == "2":
            entry["policy"] = "lenient"
            entry.pop("signature")
        entry["prev_sha256"] = previous
        entry["entry_sha256"] = previous = ledger_mod.entry_hash(entry)
        rewritten.append(entry)
    assert ledger_mod.check_chain_entries(rewritten) == []          # the bare hash chain is fooled
    failures, _ = ledger_mod.signature_problems(rewritten, keys, "3")
    # v3's signature covers v2's hash through prev_sha256, so the rewritten v2 breaks it.
    assert failures == [f"line 3 (v3): the signature by key {key_pair.keyid[:12]}… does not match the signed bytes"]
    # Stripping the last signature too: an unsigned entry after a signed one.
    stripped = [*entries[:2], {k: v for k, v in entries[2].items() if k != "signature"}]
    failures, _ = ledger_mod.signature_problems(stripped, keys, "2")
    assert failures == ["line 3 (v3): unsigned after signed entries (a signature was removed)"]

    # Rotated out: the auditor trusts only the new key.
    new = generate_key(tmp_path / "registry", tmp_path / "new.key")
    failures, _ = ledger_mod.signature_problems(entries, load_keys([new.public_path]), "3")
    assert failures and all("not among the 1 trusted key(s) (rotated out" in f for f in failures)


def test_keys_generate_command_prints_paths_and_never_the_key(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    out = tmp_path / "keys/release.key"
    result = run_in(project, "toolkit", "keys", "generate", "--out", str(out), "--registry", "registry", check=True)
    assert "mode 0600" in result.stdout and "TOOLKIT_SIGNING_KEY=" in result.stdout
    secret = out.read_text().splitlines()[1]
    assert secret not in result.stdout + result.stderr
    assert len(list((project / "registry/keys").glob("*.pub"))) == 1
