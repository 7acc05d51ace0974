"""`toolkit publish`: push a verified release bundle to a Hugging Face Hub model repository.

Only a bundle that passes every `toolkit verify` check is published. The repository gets the
adapter files and the model card at its root (so `PeftModel.from_pretrained(base, repo)` and the
Hub's card rendering work) and the whole bundle, manifest included, under `release/`, so a reader
of the Hub copy can verify it too. The token comes from the environment (HF_TOKEN) or the
huggingface_hub login, never from params.yaml, and is written nowhere.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from toolkit.errors import ConfigError, ServiceError, VerificationFailed
from toolkit.governance.verify import verify_bundle
from toolkit.registry.bundle import CARD_MARKDOWN, MANIFEST, Bundle

RELEASE_FOLDER = "release"


def hub_layout(bundle: Bundle, target: Path) -> None:
    """The files as the Hub repository holds them."""
    for item in bundle.adapter.iterdir():
        if item.is_file():
            shutil.copy2(item, target / item.name)
    shutil.copy2(bundle.card(CARD_MARKDOWN), target / "README.md")
    shutil.copytree(bundle.root, target / RELEASE_FOLDER)


def publish_to_hub(bundle_path: Path, repo: str | None, *, private: bool = True, endpoint: str | None = None,
                   ledger: Path | None = None) -> dict:
    if not repo:
        raise ConfigError("no Hub repository: set release.hub.repo (owner/name) or pass --repo",
                          file="params.yaml", key="release.hub.repo")
    bundle = Bundle(bundle_path)
    if not bundle.manifest.is_file():
        raise ConfigError(f"{bundle.root} is not a release bundle (no {MANIFEST})", key="BUNDLE")
    failed = [check for check in verify_bundle(bundle.root, ledger) if not check.ok]
    if failed:
        raise VerificationFailed(f"refusing to publish {bundle.root}: {len(failed)} verification check(s) failed: "
                                 + "; ".join(f"{c.name}: {c.detail}" for c in failed))
    info = bundle.info()
    gate = "gate passed" if info.gate_passed or info.override is None else f"gate overridden: {info.override.reason}"

    from huggingface_hub import HfApi, constants
    from huggingface_hub.errors import HfHubHTTPError

    if constants.HF_HUB_OFFLINE:
        raise ConfigError("HF_HUB_OFFLINE is set (the demo and tests set it): publishing needs the Hub; "
                          "unset it for this command", key="HF_HUB_OFFLINE")

    api = HfApi(endpoint=endpoint)
    with tempfile.TemporaryDirectory(prefix="toolkit-publish-") as tmp:
        staging = Path(tmp)
        hub_layout(bundle, staging)
        try:
            api.create_repo(repo, private=private, exist_ok=True, repo_type="model")
            commit = api.upload_folder(repo_id=repo, folder_path=staging, repo_type="model",
                                       commit_message=f"Release v{info.version} ({gate})",
                                       commit_description=f"Manifest SHA-256 of the bundle: see {RELEASE_FOLDER}/{MANIFEST}; "
                                                          f"base model {info.base_model}; policy {info.policy}.")
        except HfHubHTTPError as exc:
            raise ServiceError(f"the Hub refused the upload to {repo}: {exc}") from None
        except ValueError as exc:   # the Hub's check of the card's metadata failed
            raise ServiceError(f"the Hub rejected the model card of {bundle.root}: {exc}") from None
        files = sorted(p.relative_to(staging).as_posix() for p in staging.rglob("*") if p.is_file())
    return {"repo": repo, "version": info.version, "commit_url": commit.commit_url, "commit_oid": commit.oid,
            "files": len(files), "private": private}
