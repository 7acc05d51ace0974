"""Release, verify, history and export on the output of a real pipeline run."""

import json
import shutil
import subprocess

import pytest
import yaml

from conftest import BIN, run_in
from toolkit.governance.serving import vllm_compatibility

pytestmark = pytest.mark.e2e


def _fail_gate(project):
    strict = {"name": "strict", "extends": "default", "rules": [{
        "id": "perfect", "report": "eval_heldout", "field": "metrics.{primary_metric}.adapter", "op": "min",
        "threshold": 1.01, "severity": "block", "rationale": "only perfection ships"}]}
    (project / "policies/strict.yaml").write_text(yaml.safe_dump(strict))
    assert run_in(project, "toolkit", "gate", "--policy", "strict").returncode == 1


def _verify(project, bundle, *extra):
    return run_in(project, "toolkit", "verify", str(bundle), *extra)


@pytest.fixture(scope="module")
def released(completed_pipeline, tmp_path_factory):
    """A copy of the pipeline with two releases (v1, v2) in its registry. Read it or copy from it."""
    project = tmp_path_factory.mktemp("released") / "project"
    shutil.copytree(completed_pipeline, project, symlinks=True)
    for _ in range(2):
        run_in(project, "toolkit", "release", check=True)
    return project


def test_release_refused_when_the_gate_failed(pipeline_copy):
    _fail_gate(pipeline_copy)
    result = run_in(pipeline_copy, "toolkit", "release")
    assert result.returncode == 1 and "release refused" in result.stderr and "perfect" in result.stderr
    assert (pipeline_copy / "registry/ledger.jsonl").read_text() == ""   # the committed, empty ledger
    assert not list((pipeline_copy / "registry/releases").glob("v*"))


def test_release_refused_when_a_report_changed_after_the_gate(pipeline_copy):
    report = pipeline_copy / "reports/train.json"
    report.write_text(report.read_text() + " ")  # one byte more: same figures, different file
    result = run_in(pipeline_copy, "toolkit", "release")
    assert result.returncode == 1 and "reports/train.json changed after the gate ran" in result.stderr
    assert (pipeline_copy / "registry/ledger.jsonl").read_text() == ""


def test_override_is_recorded_in_ledger_and_card_and_verifies(pipeline_copy):
    _fail_gate(pipeline_copy)
    result = run_in(pipeline_copy, "toolkit", "release", "--override", "hotfix for incident <42>", check=True)
    assert "OVERRIDE" in result.stdout
    entry = json.loads((pipeline_copy / "registry/ledger.jsonl").read_text().splitlines()[0])
    assert entry["gate_passed"] is False and entry["override"]["reason"] == "hotfix for incident <42>"
    assert entry["override"]["by"] and entry["override"]["at"]
    bundle = pipeline_copy / "registry/releases/v1"
    assert "Released with an override" in (bundle / "model_card/README.md").read_text()
    html = (bundle / "model_card/model_card.html").read_text()
    assert "hotfix for incident &lt;42&gt;" in html and "<42>" not in html
    verified = _verify(pipeline_copy, bundle)
    assert verified.returncode == 0, verified.stdout
    assert "override by" in verified.stdout


def test_bundle_contents_and_clean_verify(released):
    bundle = released / "registry/releases/v2"
    for rel in ("adapter/adapter_model.safetensors", "adapter/adapter_config.json", "model_card/README.md",
                "model_card/model_card.html", "reports/gate.json", "reports/gate.md", "reports/eval_heldout.json",
                "datasheet.yaml", "policy.json", "MANIFEST.json", "release.json"):
        assert (bundle / rel).is_file(), rel
    info = json.loads((bundle / "release.json").read_text())
    assert info["version"] == "2" and info["git_commit"] and info["dvc_lock_sha256"]
    assert info["serving"]["logits_match"] and info["serving"]["logit_max_abs_diff"] <= 1e-4
    result = _verify(released, bundle)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("[PASS]") == 9 and "[FAIL]" not in result.stdout
    # Unsigned (no key in the demo): a warning, never a silent pass.
    assert "[WARN] signature: unsigned bundle" in result.stdout and "1 with a warning: signature" in result.stdout
    history = run_in(released, "toolkit", "history", check=True).stdout
    assert history.count("passed") == 2 and "field_accuracy" in history


def _tampered(released, tmp_path, edit):
    registry = tmp_path / "registry"
    shutil.copytree(released / "registry", registry)
    edit(registry)
    result = _verify(released, registry / "releases/v1", "--ledger", str(registry / "ledger.jsonl"))
    assert result.returncode == 1, result.stdout
    return {line.split("]")[1].split(":")[0].strip() for line in result.stdout.splitlines() if line.startswith("[FAIL]")}


def _flip_byte(path, offset=-10):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


def _rewrite_ledger(registry, change):
    lines = (registry / "ledger.jsonl").read_text().splitlines()
    (registry / "ledger.jsonl").write_text("\n".join(change(lines)) + "\n")


@pytest.mark.parametrize("name, edit, expected", [
    ("adapter byte", lambda r: _flip_byte(r / "releases/v1/adapter/adapter_model.safetensors"), {"manifest"}),
    ("report byte", lambda r: _flip_byte(r / "releases/v1/reports/train.json", 5), {"manifest"}),
    ("file deleted", lambda r: (r / "releases/v1/datasheet.yaml").unlink(), {"manifest"}),
    ("ledger line edited", lambda r: _rewrite_ledger(r, lambda ls: [ls[0].replace('"policy":"default"',
                                                                                    '"policy":"lenient"'), ls[1]]),
     {"ledger chain"}),
    ("ledger line deleted", lambda r: _rewrite_ledger(r, lambda ls: ls[1:]), {"ledger chain", "ledger entry"}),
    ("ledger lines reordered", lambda r: _rewrite_ledger(r, lambda ls: ls[::-1]), {"ledger chain"}),
])
def test_tampering_is_detected(released, tmp_path, name, edit, expected):
    assert expected <= _tampered(released, tmp_path, edit), name


def test_a_changed_card_figure_is_detected_even_with_a_regenerated_manifest(released, tmp_path):
    from test_signed_release import card_figure_with_regenerated_manifest

    failed = _tampered(released, tmp_path, lambda registry: card_figure_with_regenerated_manifest(registry, {}))
    assert "card figures" in failed and "ledger entry" in failed and "manifest" not in failed


def test_concurrent_releases_produce_a_valid_chain(pipeline_copy):
    env_path = f"{BIN}:{subprocess.os.environ['PATH']}"
    procs = [subprocess.Popen(["toolkit", "release"], cwd=pipeline_copy, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**subprocess.os.environ, "PATH": env_path})
             for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    entries = [json.loads(line) for line in (pipeline_copy / "registry/ledger.jsonl").read_text().splitlines()]
    assert sorted(e["version"] for e in entries) == ["1", "2"]
    for version in ("1", "2"):
        assert _verify(pipeline_copy, pipeline_copy / f"registry/releases/v{version}").returncode == 0


def test_released_adapter_reloads_with_identical_logits_and_a_damaged_one_does_not(released, tmp_path):
    import torch
    from safetensors.torch import load_file, save_file

    from toolkit.governance.serving import logit_parity

    bundle = released / "registry/releases/v1"
    # The recorded path is relative to the project that ran the pipeline.
    base_path = released / json.loads((bundle / "reports/base.json").read_text())["model_path"]
    probe = bundle / "eval/serving_probe.safetensors"
    assert logit_parity(base_path, bundle / "adapter", probe) <= 1e-5

    damaged = tmp_path / "adapter"
    shutil.copytree(bundle / "adapter", damaged)
    weights = load_file(str(damaged / "adapter_model.safetensors"))
    name = next(k for k in weights if "lora_B" in k)
    weights[name] = weights[name] + 0.05 * torch.ones_like(weights[name])
    save_file(weights, str(damaged / "adapter_model.safetensors"))
    assert logit_parity(base_path, damaged, probe) > 1e-3


def test_export_merged_matches_the_adapter(released, tmp_path):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    out = tmp_path / "merged"
    run_in(released, "toolkit", "export", "--merged", str(out), "--bundle", "registry/releases/v1", check=True)
    assert (out / "model.safetensors").is_file() and not list(out.glob("*.bin"))
    probe = load_file(str(released / "registry/releases/v1/eval/serving_probe.safetensors"))
    merged = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True).eval()
    with torch.inference_mode():
        row = probe["input_ids"][0]
        logits = merged(input_ids=row[row >= 0][None]).logits[0, -1]
    assert torch.allclose(logits, probe["logits"][0], atol=1e-4)


def test_export_vllm_serves_the_release_beside_the_earlier_one(released, tmp_path):
    """`toolkit export --vllm`: both releases as LoRA modules (newest first), the adapters copied byte for
    byte, and a serve.sh whose words reach `vllm` exactly as vllm_modules.json lists them."""
    from toolkit.files import sha256_path

    out = tmp_path / "vllm"
    result = run_in(released, "toolkit", "export", "--vllm", str(out), check=True)
    assert "release 2 with 2 LoRA module(s) (adapter-v2, adapter-v1)" in result.stdout
    exported = json.loads((out / "vllm_modules.json").read_text())
    assert [m["name"] for m in exported["modules"]] == ["adapter-v2", "adapter-v1"]
    for module in exported["modules"]:
        assert module["adapter_sha256"] == sha256_path(out / module["path"]) == sha256_path(
            released / f"registry/releases/v{module['version']}/adapter")
    command = exported["command"]
    assert command[:3] == ["vllm", "serve", str((released / "artifacts/base").resolve())]
    assert command[command.index("--max-lora-rank") + 1] == "16" and command[command.index("--max-loras") + 1] == "2"
    # A stand-in `vllm` on PATH prints the words serve.sh passes it, one per line.
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "vllm").write_text('#!/usr/bin/env bash\nprintf "%s\\n" "$@"\n')
    (stub / "vllm").chmod(0o755)
    words = subprocess.run([str(out / "serve.sh")], env={"PATH": f"{stub}:/usr/bin:/bin"}, capture_output=True,
                           text=True, check=True).stdout.splitlines()
    assert words == command[1:]
    modules = [json.loads(word) for word in command[command.index("--lora-modules") + 1:]]
    assert all((out / m["path"] / "adapter_model.safetensors").is_file() for m in modules)
    again = run_in(released, "toolkit", "export", "--vllm", str(out))
    assert again.returncode == 2 and "is not empty" in again.stderr


def test_vllm_compatibility_flags(tmp_path):
    (tmp_path / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": 600, "lora_alpha": 16, "target_modules": ["q_proj"], "use_dora": True}))
    report = vllm_compatibility(tmp_path)
    assert not report["vllm_compatible"] and report["vllm_max_lora_rank"] is None
    assert any("DoRA" in note for note in report["notes"]) and any("exceeds" in note for note in report["notes"])


def test_publish_to_a_hub_repository_with_the_real_client(released, tmp_path):
    """`toolkit publish` through huggingface_hub against a loopback Hub: verified bundles only, the
    adapter and card at the repository root, the whole bundle under release/, the token nowhere."""
    import os

    from hf_hub_stub import HubStub

    project = tmp_path / "project"
    shutil.copytree(released, project, symlinks=True)
    bundle = project / "registry/releases/v2"
    token = "hf_publish_secret_0123456789"
    with HubStub() as hub:
        params = yaml.safe_load((project / "params.yaml").read_text())
        params["release"]["hub"] = {"repo": "example/support-triage-lora", "private": True, "endpoint": hub.url}
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        offline = run_in(project, "toolkit", "publish", str(bundle))   # the suite runs with HF_HUB_OFFLINE=1
        assert offline.returncode == 2 and "HF_HUB_OFFLINE is set" in offline.stderr and not hub.state.requests
        os.environ["HF_TOKEN"] = token
        os.environ["HF_HUB_OFFLINE"] = "0"
        try:
            result = run_in(project, "toolkit", "publish", str(bundle))
            assert result.returncode == 0, result.stdout + result.stderr
            assert "published v2 to example/support-triage-lora (private" in result.stdout
            repo = hub.state.repos["example/support-triage-lora"]
            assert repo["private"] is True
            files = repo["files"]
            for name in ("adapter_config.json", "adapter_model.safetensors"):
                assert files[name] == (bundle / "adapter" / name).read_bytes()
            assert files["README.md"] == (bundle / "model_card/README.md").read_bytes()
            assert files["release/MANIFEST.json"] == (bundle / "MANIFEST.json").read_bytes()
            manifest = json.loads((bundle / "MANIFEST.json").read_text())["files"]
            assert {f"release/{p}" for p in manifest} <= set(files)
            assert hub.state.commits[0]["summary"] == "Release v2 (gate passed)"
            # The client had the Hub check the card's metadata: the model-index of the bundle's card.
            assert hub.state.validated_cards[0]["model-index"][0]["results"]
            assert all(auth == f"Bearer {token}" for _, _, auth in hub.state.requests)

            # A bundle that no longer verifies is never published.
            with open(bundle / "adapter/adapter_model.safetensors", "r+b") as handle:
                handle.seek(-10, 2)
                byte = handle.read(1)
                handle.seek(-10, 2)
                handle.write(bytes([byte[0] ^ 0xFF]))
            refused = run_in(project, "toolkit", "publish", str(bundle))
            assert refused.returncode == 1 and "refusing to publish" in refused.stderr
            assert len(hub.state.commits) == 1
        finally:
            os.environ.pop("HF_TOKEN", None)
            os.environ["HF_HUB_OFFLINE"] = "1"
    for path in project.rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000:
            assert token.encode() not in path.read_bytes(), path
    assert token not in result.stdout + result.stderr


def test_publish_without_a_repository_is_a_configuration_error(released):
    result = run_in(released, "toolkit", "publish", str(released / "registry/releases/v1"))
    assert result.returncode == 2 and "release.hub.repo" in result.stderr
