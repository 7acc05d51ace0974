"""Serving readiness of a released adapter, and the merged export for single-tenant serving.

A release must be a standard PEFT adapter (adapter_config.json + adapter_model.safetensors) that
loads onto its base with PEFT and reproduces the logits recorded at evaluation time; its rank and
target modules are listed against what vLLM's multi-LoRA serving accepts.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from toolkit.config import Params
from toolkit.layout import ADAPTER_DIR, report_path
from toolkit.models import load_with_adapter

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
# Values vLLM accepts for --max-lora-rank; an adapter needs one at least as large as its rank.
VLLM_MAX_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def adapter_problems(adapter_dir: Path) -> list[str]:
    problems = [f"{name} is missing" for name in ADAPTER_FILES if not (adapter_dir / name).is_file()]
    pickled = sorted(p.name for p in adapter_dir.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl"))
    if pickled:
        problems.append(f"pickled weight files present ({', '.join(pickled)}); only safetensors are allowed")
    return problems


def vllm_compatibility(adapter_dir: Path) -> dict:
    config = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))
    rank = int(config.get("r", 0))
    notes = []
    if config.get("peft_type") != "LORA":
        notes.append(f"peft_type {config.get('peft_type')} is not LoRA; vLLM serves LoRA adapters only")
    if config.get("use_dora"):
        notes.append("DoRA adapters are not supported by vLLM multi-LoRA serving; export a merged model instead")
    if config.get("modules_to_save"):
        notes.append(f"modules_to_save {config['modules_to_save']} (full copies of layers) need a merged export")
    fitting = [value for value in VLLM_MAX_LORA_RANKS if value >= rank]
    if not fitting:
        notes.append(f"rank {rank} exceeds the largest --max-lora-rank vLLM accepts ({VLLM_MAX_LORA_RANKS[-1]})")
    return {
        "rank": rank,
        "alpha": config.get("lora_alpha"),
        "target_modules": sorted(config.get("target_modules") or []),
        "use_rslora": bool(config.get("use_rslora")),
        "use_dora": bool(config.get("use_dora")),
        "vllm_max_lora_rank": fitting[0] if fitting else None,
        "vllm_compatible": not notes,
        "notes": notes,
    }


def logit_parity(base_path: Path, adapter_dir: Path, probe_file: Path, dtype: str = "float32",
                 trust_remote_code: bool = False) -> float:
    """Largest absolute difference between the recorded probe logits and a fresh load's logits."""
    from safetensors.torch import load_file

    from toolkit.models import probe_logits

    probe = load_file(str(probe_file))
    rows = [row[row >= 0] for row in probe["input_ids"]]
    model, _ = load_with_adapter(base_path, adapter_dir, dtype=dtype, trust_remote_code=trust_remote_code)
    fresh = probe_logits(model, rows)
    return float((fresh - probe["logits"]).abs().max())


def export_merged(base_path: Path, adapter_dir: Path, out_dir: Path, dtype: str = "float32",
                  trust_remote_code: bool = False) -> Path:
    """Merge the adapter into its base (reloaded in full precision, never 4-bit) and save safetensors."""
    model, tokenizer = load_with_adapter(base_path, adapter_dir, dtype=dtype, trust_remote_code=trust_remote_code)
    merged = model.merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def run_export(params: Params, out_dir: Path, bundle: Path | None = None) -> tuple[Path, str, Path]:
    """`toolkit export --merged`: the adapter of a release bundle (or the current artifacts/adapter)
    merged into the base it was trained on. Returns (adapter folder, base name, output folder)."""
    from toolkit.reports import BaseModelReport, read_report

    from toolkit.registry.bundle import Bundle

    released = Bundle(bundle) if bundle else None
    base = read_report(released.report("base") if released else report_path("base"), BaseModelReport)
    adapter = released.adapter if released else ADAPTER_DIR
    out = export_merged(Path(base.model_path), adapter, out_dir, params.base.dtype, params.base.trust_remote_code)
    return adapter, base.model, out


VLLM_DTYPES = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16", "auto": "auto"}


def run_vllm_export(params: Params, out_dir: Path, bundle: Path | None = None, name: str = "adapter") -> dict:
    """`toolkit export --vllm`: a release (default: the one in service) and the earlier releases on the
    same base, not rolled back, as vLLM multi-LoRA modules: the adapters copied under OUT/adapters/,
    OUT/serve.sh (the `vllm serve` command line) and OUT/vllm_modules.json (the same, as data, with
    each adapter's hash). A release vLLM cannot serve as a LoRA module is refused; an earlier one is
    left out with the reason."""
    import shutil

    from toolkit.errors import ConfigError
    from toolkit.files import atomic_write_json, sha256_path
    from toolkit.registry.bundle import Bundle
    from toolkit.registry.store import Registry

    registry = Registry(Path(params.release.registry))
    latest = registry.latest()
    target = Bundle(bundle) if bundle else Bundle(latest) if latest else None
    if target is None or not target.is_bundle():
        raise ConfigError(f"no release to export in {registry.root}: run `toolkit release` first, or pass --bundle",
                          key="release.registry")
    base = json.loads(target.report("base").read_text(encoding="utf-8"))
    in_service = _releases_on_base(registry, target, base["outputs"])
    modules, skipped = [], []
    for release in in_service:
        check = vllm_compatibility(release.adapter)
        if not check["vllm_compatible"]:
            if release.version == target.version:
                raise ConfigError(f"release {release.version} cannot be served as a vLLM LoRA module: "
                                  f"{'; '.join(check['notes'])}", file=str(release.adapter / "adapter_config.json"))
            skipped.append({"version": release.version, "why": "; ".join(check["notes"])})
            continue
        modules.append({"name": f"{name}-v{release.version}", "version": release.version,
                        "path": f"adapters/{name}-v{release.version}", "rank": check["rank"],
                        "max_lora_rank": check["vllm_max_lora_rank"], "source": str(release.adapter)})
    if out_dir.exists() and any(out_dir.iterdir()):
        raise ConfigError(f"{out_dir} is not empty; export into a new folder", key="--vllm")
    for module in modules:
        shutil.copytree(module.pop("source"), out_dir / module["path"])
        module["adapter_sha256"] = sha256_path(out_dir / module["path"])
    # A local base (the builtin one included) by absolute path: serve.sh runs from OUT.
    model = str(Path(base["model_path"]).resolve()) if base["source"] in ("builtin", "local") else base["model"]
    options = [["serve", model], *([["--revision", base["revision"]]] if base.get("revision") else []),
               ["--dtype", VLLM_DTYPES.get(params.base.dtype, "auto")], ["--enable-lora"],
               ["--max-lora-rank", str(max(m["max_lora_rank"] for m in modules))], ["--max-loras", str(len(modules))],
               ["--lora-modules", *(json.dumps({"name": m["name"], "path": m["path"], "base_model_name": model})
                                    for m in modules)]]
    command = ["vllm", *(word for option in options for word in option)]
    script = out_dir / "serve.sh"
    lines = [" ".join(shlex.quote(word) for word in option) for option in options]
    script.write_text(f"#!/usr/bin/env bash\n# vLLM multi-LoRA serving of release {target.version} beside the earlier "
                      "releases on its base (toolkit export --vllm).\n"
                      'cd "$(dirname "$0")"\nexec vllm ' + " \\\n  ".join(lines) + "\n", encoding="utf-8")
    script.chmod(0o755)
    description = {"release": target.version, "base_model": model, "command": command, "modules": modules,
                   "skipped": skipped}
    atomic_write_json(out_dir / "vllm_modules.json", description)
    return description


def _releases_on_base(registry, target, base_outputs: dict) -> list:
    """The target release and the earlier ones on the same base weights that were not rolled back, newest first."""
    from toolkit.registry.bundle import Bundle

    earlier = [Bundle(registry.bundle(v)) for v in registry.not_rolled_back(before=target.version)]
    return [target, *(b for b in earlier if b.root.is_dir()
                      and json.loads(b.report("base").read_text(encoding="utf-8"))["outputs"] == base_outputs)]

