"""The base stage: build the builtin model, or resolve a real one (local folder or Hub id).

Downstream stages load the base through `toolkit.models.load_base`, from the path this stage
recorded, so a run always uses the exact files whose hashes are in reports/base.json.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from toolkit.config import BaseParams, Params
from toolkit.errors import ConfigError
from toolkit.files import atomic_write_json, sha256_text
from toolkit.layout import BASE_DIR
from toolkit.reports import BaseModelReport, digests, write_report
from toolkit.train.builtin_base import BUILTIN_MODEL_NAME, build_builtin_base

_WEIGHT_PATTERNS = ("*.json", "*.safetensors", "tokenizer*", "*.jinja", "*.model", "*.txt")


def run_base(params: Params, progress: bool = True) -> BaseModelReport:
    base = params.base
    if base.model == "builtin":
        if BASE_DIR.exists():
            shutil.rmtree(BASE_DIR)
        summary = build_builtin_base(base.builtin, params.seed, BASE_DIR, progress=progress)
        model_path, source, name = BASE_DIR, "builtin", BUILTIN_MODEL_NAME
        pretraining = summary.__dict__
    else:
        model_path, source = _resolve_external(base)
        name, pretraining = base.model, None
        BASE_DIR.mkdir(parents=True, exist_ok=True)
        # DVC needs an output for this stage: a pointer to the resolved files and their hashes.
        atomic_write_json(BASE_DIR / "resolved.json", {"model": base.model, "revision": base.revision,
                                                       "path": str(model_path), "files": digests(_weight_files(model_path))})
    config, parameters, template = _describe(model_path, base)
    report = BaseModelReport(
        params={"base": params.section("base"), "seed": params.seed},
        inputs=digests(_weight_files(model_path)) if source != "builtin" else {},
        outputs=digests([BASE_DIR]),
        model=name,
        source=source,
        model_path=str(model_path),
        revision=base.revision,
        architecture=(config.architectures or [config.model_type])[0],
        parameters=parameters,
        vocab_size=config.vocab_size,
        context_length=getattr(config, "max_position_embeddings", 0) or 0,
        chat_template_sha256=sha256_text(template) if template else None,
        pretraining=pretraining,
    )
    write_report(report)
    return report


def _resolve_external(base: BaseParams) -> tuple[Path, str]:
    local = Path(base.model).expanduser()
    if local.exists():
        if not (local / "config.json").is_file():
            raise ConfigError(f"{local} has no config.json; expected a Hugging Face model folder",
                              file="params.yaml", key="base.model")
        return local.resolve(), "local"
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        path = snapshot_download(base.model, revision=base.revision, allow_patterns=list(_WEIGHT_PATTERNS))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
        raise ConfigError(f"cannot resolve {base.model!r}: not a local folder, and the Hub download failed ({exc})",
                          file="params.yaml", key="base.model") from None
    return Path(path), "hub"


def _weight_files(path: Path) -> list[Path]:
    return sorted(p for pattern in _WEIGHT_PATTERNS for p in path.glob(pattern) if p.is_file())


def _describe(path: Path, base: BaseParams):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(path, trust_remote_code=base.trust_remote_code)
    with torch.device("meta"):
        skeleton = AutoModelForCausalLM.from_config(config, trust_remote_code=base.trust_remote_code)
    parameters = sum(p.numel() for p in skeleton.parameters())
    tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=base.trust_remote_code)
    return config, parameters, tokenizer.chat_template
