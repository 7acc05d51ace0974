"""Signed releases on a real pipeline run: the attestation, the ML-BOM, signed ledger entries, the
auditor's `verify --trusted-key` and `--deep`, and the tampering table of docs/benchmarks.md (each
row one test: an attacker with write access to the registry but not the private key)."""

import json
import os
import shutil

import pytest
import yaml

from conftest import run_in
from toolkit.files import sha256_file, sha256_path
from toolkit.registry import ledger as ledger_mod
from toolkit.governance.attestation import envelope_statement
from toolkit.registry.bundle import MANIFEST, Bundle

pytestmark = pytest.mark.e2e


def _key(project, keys_dir, name):
    """`toolkit keys generate` into keys_dir: (private key file, the public key it put in registry/keys)."""
    ring = project / "registry/keys"
    before = set(ring.glob("*.pub")) if ring.is_dir() else set()
    out = keys_dir / f"{name}.key"
    run_in(project, "toolkit", "keys", "generate", "--out", str(out), check=True)
    (public,) = set(ring.glob("*.pub")) - before
    return out, public


@pytest.fixture(scope="module")
def signed(completed_pipeline, tmp_path_factory):
    """Two signed releases (v1, v2) and the keys: (project, private key, trusted public key, other key pair)."""
    root = tmp_path_factory.mktemp("signed")
    project, keys = root / "project", root / "keys"
    keys.mkdir()
    shutil.copytree(completed_pipeline, project, symlinks=True)
    private, public = _key(project, keys, "release")
    for _ in range(2):
        run_in(project, "toolkit", "release", check=True, env={"TOOLKIT_SIGNING_KEY": str(private)})
    other_private, other_public = _key(project, keys, "other")
    other_public.rename(keys / other_public.name)          # the attacker's key is in nobody's keyring
    return project, private, public, (other_private, keys / other_public.name)


def _verify(project, bundle, *extra):
    return run_in(project, "toolkit", "verify", str(bundle), *extra)


def test_signed_bundle_carries_an_attestation_a_bom_and_signed_entries(signed):
    project, private, public, _ = signed
    bundle = project / "registry/releases/v2"
    envelope = json.loads((bundle / "attestation.intoto.json").read_text())
    statement = envelope_statement(envelope)
    subjects = {s["name"]: s["digest"]["sha256"] for s in statement["subject"]}
    assert subjects["MANIFEST.json"] == sha256_file(bundle / MANIFEST)
    assert subjects["adapter/adapter_model.safetensors"] == sha256_file(bundle / "adapter/adapter_model.safetensors")
    assert "attestation.intoto.json" not in subjects and len(subjects) == len(Bundle(bundle).manifest_files()) + 1
    build = statement["predicate"]["buildDefinition"]
    names = {d["name"] for d in build["resolvedDependencies"]}
    assert {"source", "dvc.lock", "base/model.safetensors", "datasheet/data/support_tickets.datasheet.yaml",
            "policies/default.yaml", "eval_suites/heldout/suite.yaml"} <= names
    assert any(n.startswith("data/") for n in names)
    assert build["externalParameters"]["params"]["train"]["method"] == "sft"
    assert statement["predicate"]["runDetails"]["builder"]["version"]["toolkit"]
    entries = ledger_mod.read_entries(project / "registry/ledger.jsonl")
    assert all(e["signature"]["keyid"] == public.stem for e in entries)
    assert entries[1]["attestation_sha256"] == sha256_file(bundle / "attestation.intoto.json")

    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    bom = json.loads((bundle / "bom.cdx.json").read_text())
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(bom)) is None
    kinds = {c["bom-ref"]: c["type"] for c in bom["components"]}
    assert kinds["base-model"] == kinds["adapter"] == "machine-learning-model" and kinds["training-data"] == "data"
    assert "suite-heldout" in kinds
    adapter = next(c for c in bom["components"] if c["bom-ref"] == "adapter")
    heldout = json.loads((bundle / "reports/eval_heldout.json").read_text())["metrics"]["field_accuracy"]
    metrics = adapter["modelCard"]["quantitativeAnalysis"]["performanceMetrics"]
    assert {"type": "field_accuracy delta vs base", "value": f"{heldout['delta']:+.4f}", "slice": "heldout",
            "confidenceInterval": {"lowerBound": f"{heldout['ci_low']:+.4f}",
                                   "upperBound": f"{heldout['ci_high']:+.4f}"}} in metrics
    data = next(c for c in bom["components"] if c["bom-ref"] == "training-data")
    assert data["hashes"][0]["content"] == json.loads((bundle / "reports/validate.json").read_text())["data_sha256"]


def test_auditor_verifies_with_the_trusted_key(signed):
    project, _, public, _ = signed
    result = _verify(project, project / "registry/releases/v2", "--trusted-key", str(public))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[PASS] signature: attestation and ledger signed by key" in result.stdout
    assert "[FAIL]" not in result.stdout and "[PASS] card statements" in result.stdout
    assert "[PASS] bill of materials" in result.stdout
    # Without a trusted key the registry's own keyring is used: valid, but only a warning.
    plain = _verify(project, project / "registry/releases/v2")
    assert plain.returncode == 0 and "[WARN] signature" in plain.stdout and "--trusted-key" in plain.stdout


def test_deep_verify_measures_the_logits_again_and_checks_the_base(signed, tmp_path):
    project, _, public, _ = signed
    result = _verify(project, project / "registry/releases/v1", "--trusted-key", str(public), "--deep")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[PASS] serving: measured again" in result.stdout and "base files match the attestation" in result.stdout
    other_base = tmp_path / "base"
    shutil.copytree(project / "artifacts/base", other_base)
    (other_base / "config.json").write_text((other_base / "config.json").read_text().replace("\n", " \n", 1))
    wrong = _verify(project, project / "registry/releases/v1", "--deep", "--base", str(other_base))
    assert wrong.returncode == 1 and "does not match the attested digests (config.json)" in wrong.stdout


def test_a_private_key_never_reaches_an_artifact_or_output(signed):
    project, private, _, _ = signed
    secret = "".join(private.read_text().splitlines()[1:-1]).encode()
    for path in project.rglob("*"):
        if path.is_file() and ".git" not in path.parts and path.stat().st_size < 20_000_000:
            assert secret not in path.read_bytes(), path


def test_production_policy_refuses_an_unsigned_release_and_an_unsigned_bundle(signed, pipeline_copy):
    params = yaml.safe_load((pipeline_copy / "params.yaml").read_text())
    params["gate"]["policy"] = "production"
    (pipeline_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_in(pipeline_copy, "toolkit", "gate", "--policy", "production")
    result = run_in(pipeline_copy, "toolkit", "release", "--override", "signing test")
    assert result.returncode == 1 and "requires signed releases" in result.stderr
    assert not list((pipeline_copy / "registry/releases").glob("v*"))
    # A default-policy unsigned bundle verifies with a warning; the same bundle judged under production fails.
    params["gate"]["policy"] = "default"
    (pipeline_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_in(pipeline_copy, "toolkit", "gate", check=True)
    run_in(pipeline_copy, "toolkit", "release", check=True)
    bundle = pipeline_copy / "registry/releases/v1"
    warned = _verify(pipeline_copy, bundle)
    assert warned.returncode == 0 and "[WARN] signature: unsigned bundle" in warned.stdout
    _, _, public, _ = signed
    assert "unsigned bundle" in _verify(pipeline_copy, bundle, "--trusted-key", str(public)).stdout


# --- The tampering table -------------------------------------------------------------------------

def _entries(registry):
    return [json.loads(line) for line in (registry / "ledger.jsonl").read_text().splitlines()]


def _write_chain(registry, entries, signer=None):
    """Recompute every hash from the first entry on, as an attacker with write access can."""
    previous, lines = ledger_mod.GENESIS, []
    for entry in entries:
        entry = {k: v for k, v in entry.items() if k != "entry_sha256"}
        entry["prev_sha256"] = previous
        if signer is not None:
            from toolkit.registry.signing import sign_bytes

            entry["signature"] = sign_bytes(signer, ledger_mod.signed_bytes(entry))
        entry["entry_sha256"] = previous = ledger_mod.entry_hash(entry)
        lines.append(ledger_mod.canonical(entry).decode())
    (registry / "ledger.jsonl").write_text("\n".join(lines) + "\n")


def _flip(path, offset=-10):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _regenerate(registry, bundle, signer=None, strip_signatures=False):
    """New manifest, ledger entry pointing at it, whole chain re-hashed (and re-signed with `signer`)."""
    (bundle / MANIFEST).write_text(json.dumps({"files": Bundle(bundle).manifest_files()}))
    entries = _entries(registry)
    for entry in entries:
        if entry["version"] == bundle.name[1:]:
            entry["manifest_sha256"] = sha256_file(bundle / MANIFEST)
            if (bundle / "attestation.intoto.json").is_file():
                entry["attestation_sha256"] = sha256_file(bundle / "attestation.intoto.json")
        if strip_signatures or signer is not None:
            entry.pop("signature", None)
        if strip_signatures:
            entry.pop("attestation_sha256", None)
    _write_chain(registry, entries, signer)


def _swap_card_adapter_hash(bundle, old):
    """Put the tampered adapter's folder hash where the card states the adapter's SHA-256."""
    new = sha256_path(bundle / "adapter")
    for card in (bundle / "model_card").glob("*"):
        card.write_text(card.read_text().replace(old, new))


def whole_chain_rewrite(registry, keys):
    """The issue's attack: adapter bytes flipped, the card's adapter hash replaced, manifest and chain regenerated."""
    bundle = registry / "releases/v1"
    old = sha256_path(bundle / "adapter")
    _flip(bundle / "adapter/adapter_model.safetensors")
    _swap_card_adapter_hash(bundle, old)
    _regenerate(registry, bundle)


def _regenerate_bom(bundle):
    """Point the ML-BOM's adapter hashes at the files now in the bundle."""
    path = bundle / "bom.cdx.json"
    bom = json.loads(path.read_text())
    adapter = next(c for c in bom["components"] if c["bom-ref"] == "adapter")
    adapter["hashes"] = [{"alg": "SHA-256", "content": sha256_file(bundle / "adapter/adapter_model.safetensors")}]
    for prop in adapter.get("properties", []):
        if prop["name"].startswith("toolkit:sha256:adapter/"):
            prop["value"] = sha256_file(bundle / prop["name"].removeprefix("toolkit:sha256:"))
    path.write_text(json.dumps(bom))


def changed_weights_everything_regenerated(registry, keys):
    """A thorough attacker: other adapter weights, and the card's hash, the BOM, the manifest and the
    whole chain regenerated to match. Without a signature only `--deep` (measuring the logits) sees it."""
    _change_weights(registry / "releases/v1")
    _regenerate(registry, registry / "releases/v1")


def _change_weights(bundle):
    """New adapter weights, with the card's adapter hash and the BOM made to match them."""
    import torch
    from safetensors.torch import load_file, save_file

    old = sha256_path(bundle / "adapter")
    weights = load_file(str(bundle / "adapter/adapter_model.safetensors"))
    name = next(k for k in weights if "lora_B" in k)
    weights[name] = weights[name] + 0.05 * torch.ones_like(weights[name])
    save_file(weights, str(bundle / "adapter/adapter_model.safetensors"))
    _swap_card_adapter_hash(bundle, old)
    _regenerate_bom(bundle)


def swapped_adapter_resigned(registry, keys):
    """A different adapter, manifest regenerated, attestation and every ledger entry signed by another key."""
    from toolkit.governance.attestation import sign_statement
    from toolkit.files import file_digests
    from toolkit.registry.signing import load_signer

    bundle = registry / "releases/v1"
    _change_weights(bundle)
    (bundle / MANIFEST).write_text(json.dumps({"files": Bundle(bundle).manifest_files()}))
    signer = load_signer(keys["other"])
    statement = envelope_statement(json.loads((bundle / "attestation.intoto.json").read_text()))
    statement["subject"] = [{"name": n, "digest": {"sha256": d}} for n, d in
                            file_digests(bundle, ("attestation.intoto.json",)).items()]
    (bundle / "attestation.intoto.json").write_text(json.dumps(sign_statement(statement, signer)))
    _regenerate(registry, bundle, signer=signer)


def removed_signature(registry, keys):
    bundle = registry / "releases/v1"
    (bundle / "attestation.intoto.json").unlink()
    _change_weights(bundle)
    _regenerate(registry, bundle, strip_signatures=True)


def card_bounds_edited(registry, keys):
    bundle = registry / "releases/v1"
    heldout = json.loads((bundle / "reports/eval_heldout.json").read_text())["metrics"]["field_accuracy"]
    for name in ("README.md", "model_card.html"):
        card = bundle / "model_card" / name
        card.write_text(card.read_text().replace(f"{heldout['ci_low']:+.4f}", "+0.5000"))
    report = bundle / "reports/eval_heldout.json"
    report.write_text(report.read_text().replace(str(heldout["ci_low"]), "0.5"))
    _regenerate(registry, bundle)


def gate_report_edited(registry, keys):
    bundle = registry / "releases/v1"
    gate = bundle / "reports/gate.json"
    data = json.loads(gate.read_text())
    data["policy"] = "high-risk"
    gate.write_text(json.dumps(data))
    _regenerate(registry, bundle)


def card_figure_with_regenerated_manifest(registry, keys):
    bundle = registry / "releases/v1"
    heldout = json.loads((bundle / "reports/eval_heldout.json").read_text())
    value = f"{round(heldout['metrics']['field_accuracy']['adapter'], 4)}"
    card = bundle / "model_card/README.md"
    card.write_text(card.read_text().replace(f"value: {value}", "value: 0.9999", 1))
    (bundle / MANIFEST).write_text(json.dumps({"files": Bundle(bundle).manifest_files()}))


def bundles_swapped(registry, keys):
    releases = registry / "releases"
    releases.joinpath("v1").rename(releases / "tmp")
    releases.joinpath("v2").rename(releases / "v1")
    releases.joinpath("tmp").rename(releases / "v2")


def ledger_entry_edited(registry, keys):
    lines = (registry / "ledger.jsonl").read_text().splitlines()
    lines[0] = lines[0].replace('"policy":"default"', '"policy":"lenient"')
    (registry / "ledger.jsonl").write_text("\n".join(lines) + "\n")


def ledger_entry_deleted(registry, keys):
    lines = (registry / "ledger.jsonl").read_text().splitlines()
    (registry / "ledger.jsonl").write_text(lines[1] + "\n")


def adapter_byte_flipped(registry, keys):
    _flip(registry / "releases/v1/adapter/adapter_model.safetensors")


TAMPERING = [
    ("adapter byte flipped", adapter_byte_flipped, {"manifest", "signature"}),
    ("ledger entry edited", ledger_entry_edited, {"ledger chain"}),
    ("ledger entry deleted", ledger_entry_deleted, {"ledger chain", "ledger entry"}),
    ("bundles v1 and v2 swapped", bundles_swapped, {"ledger entry"}),
    ("whole-chain rewrite with a regenerated manifest", whole_chain_rewrite, {"signature"}),
    ("changed adapter weights, card hash, BOM, manifest and chain regenerated", changed_weights_everything_regenerated,
     {"signature"}),
    ("swapped adapter, manifest regenerated, attestation and ledger signed by another key", swapped_adapter_resigned,
     {"signature"}),
    ("signature removed (attestation deleted, ledger signatures stripped, chain re-hashed)", removed_signature,
     {"signature"}),
    ("card confidence bounds edited, manifest regenerated, chain re-hashed", card_bounds_edited, {"signature"}),
    ("gate.json edited, manifest regenerated, chain re-hashed", gate_report_edited, {"signature"}),
]


@pytest.mark.parametrize("name, attack, caught_by", TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampering_is_caught_with_the_trusted_key(signed, tmp_path, name, attack, caught_by):
    project, _, public, (other_private, _) = signed
    registry = tmp_path / "registry"
    shutil.copytree(project / "registry", registry)
    attack(registry, {"other": other_private})
    result = _verify(project, registry / "releases/v1", "--ledger", str(registry / "ledger.jsonl"),
                     "--trusted-key", str(public))
    assert result.returncode == 1, name + "\n" + result.stdout
    failed = {line.split("]")[1].split(":")[0].strip() for line in result.stdout.splitlines()
              if line.startswith("[FAIL]")}
    assert caught_by <= failed, (name, failed, result.stdout)


def test_a_bundle_signed_by_an_untrusted_key_fails(signed, pipeline_copy):
    project, _, public, (other_private, _) = signed
    run_in(pipeline_copy, "toolkit", "release", check=True, env={"TOOLKIT_SIGNING_KEY": str(other_private)})
    result = _verify(pipeline_copy, pipeline_copy / "registry/releases/v1", "--trusted-key", str(public))
    assert result.returncode == 1
    assert "[FAIL] signature: signed by key" in result.stdout and "not among the 1 trusted key(s)" in result.stdout


def test_deep_verify_catches_a_tampered_unsigned_adapter_that_the_recorded_figure_would_pass(pipeline_copy):
    import torch
    from safetensors.torch import load_file, save_file

    run_in(pipeline_copy, "toolkit", "release", check=True)
    registry = pipeline_copy / "registry"
    bundle = registry / "releases/v1"
    weights = load_file(str(bundle / "adapter/adapter_model.safetensors"))
    name = next(k for k in weights if "lora_B" in k)
    weights[name] = weights[name] + 0.05 * torch.ones_like(weights[name])
    save_file(weights, str(bundle / "adapter/adapter_model.safetensors"))
    old = json.loads((registry / "ledger.jsonl").read_text().splitlines()[0])
    (bundle / MANIFEST).write_text(json.dumps({"files": Bundle(bundle).manifest_files()}))
    entries = _entries(registry)
    entries[0]["manifest_sha256"] = sha256_file(bundle / MANIFEST)
    _write_chain(registry, entries)
    assert old["entry_sha256"] != _entries(registry)[0]["entry_sha256"]
    shallow = _verify(pipeline_copy, bundle)
    assert "[PASS] serving" in shallow.stdout        # the recorded figure is all a shallow check reads
    deep = _verify(pipeline_copy, bundle, "--deep")
    assert deep.returncode == 1 and "[FAIL] serving: measured again" in deep.stdout, deep.stdout
