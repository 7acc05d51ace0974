"""The base stage: build the builtin model, or resolve a real one (local folder or Hub id).

Downstream stages load the base through `load_base`, from the path this stage recorded, so a run
always uses the exact files whose hashes are in reports/base.json.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from toolkit.config import BaseParams, Params
from toolkit.errors import ConfigError, MissingInputError
from toolkit.files import atomic_write_json, sha256_text
from toolkit.layout import BASE_DIR, report_path
from toolkit.reports import BaseModelReport, digests, read_report, write_report
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


def base_model_path() -> Path:
    report = read_report(report_path("base"), BaseModelReport)
    path = Path(report.model_path)
    if not path.exists():
        raise MissingInputError(f"{path}: base model files are gone; run `toolkit base` (or dvc repro) again")
    return path


def load_pretrained(model_path: Path, *, dtype: str = "float32", trust_remote_code: bool = False,
                    tokenizer_path: Path | None = None, quantization_config=None):
    """(model, tokenizer) from a local folder: safetensors only, remote code off unless asked for;
    `quantization_config` (a BitsAndBytesConfig) loads the weights quantized."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not Path(model_path).exists():
        raise MissingInputError(f"{model_path}: base model files not found")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or model_path, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype), use_safetensors=True,
                                                 trust_remote_code=trust_remote_code,
                                                 **({"quantization_config": quantization_config}
                                                    if quantization_config is not None else {}))
    return model, tokenizer


def load_base(params: Params, for_training: bool = False, quantization_config=None):
    """(model, tokenizer) of the base resolved by the base stage (4-bit QLoRA: bf16 compute dtype)."""
    dtype = "bfloat16" if quantization_config is not None else params.base.dtype
    model, tokenizer = load_pretrained(base_model_path(), dtype=dtype, trust_remote_code=params.base.trust_remote_code,
                                       quantization_config=quantization_config)
    model.train(for_training)
    return model, tokenizer


def adapter_folder(path: str | Path, key: str) -> Path:
    """The PEFT adapter a configured path names: the folder itself, or a release bundle's adapter/.
    `key` is the params.yaml key the path came from, for the error."""
    folder = Path(path)
    if (folder / "adapter").is_dir():
        folder = folder / "adapter"
    if not (folder / "adapter_config.json").is_file():
        raise ConfigError(f"{folder} is not a PEFT adapter folder (no adapter_config.json)", file="params.yaml",
                          key=key)
    problem = unsafe_adapter_weights(folder)
    if problem:
        raise ConfigError(problem, file="params.yaml", key=key)
    return folder


def unsafe_adapter_weights(folder: Path) -> str | None:
    """Why an adapter folder cannot be loaded safely, or None. PEFT falls back to a pickled
    adapter_model.bin, and unpickling can run code: only safetensors weights are accepted."""
    if (folder / "adapter_model.safetensors").is_file():
        return None
    pickled = sorted(p.name for p in folder.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl"))
    found = f"only pickled weights ({', '.join(pickled)}), which can run code when loaded" if pickled else "no weights"
    return (f"{folder} has {found}; only adapter_model.safetensors is accepted (convert a trusted adapter with "
            "PeftModel.from_pretrained(...).save_pretrained(out, safe_serialization=True))")


def load_with_adapter(base_path: Path, adapter_dir: Path, *, dtype: str = "float32", trust_remote_code: bool = False):
    """A PeftModel over the base, with the tokenizer (and chat template) the adapter was trained with."""
    from peft import PeftModel

    if not (adapter_dir / "adapter_config.json").is_file():
        raise MissingInputError(f"{adapter_dir}: no adapter; run the train stage first")
    problem = unsafe_adapter_weights(adapter_dir)
    if problem:
        raise ConfigError(problem)
    trained_tokenizer = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else None
    model, tokenizer = load_pretrained(base_path, dtype=dtype, trust_remote_code=trust_remote_code,
                                       tokenizer_path=trained_tokenizer)
    model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    model.eval()
    return model, tokenizer
