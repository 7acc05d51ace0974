import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# Nothing in the test suite may reach a network.
for name, value in (("HF_HUB_OFFLINE", "1"), ("HF_DATASETS_OFFLINE", "1"), ("HF_HUB_DISABLE_TELEMETRY", "1"),
                    ("GX_ANALYTICS_ENABLED", "false"), ("DVC_NO_ANALYTICS", "1"), ("TOKENIZERS_PARALLELISM", "false")):
    os.environ[name] = value
# A real key in the environment would send the pipeline's judge stage to the network; tests that
# need one set a fake key and point the SDK at a loopback server.
os.environ.pop("ANTHROPIC_API_KEY", None)

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def tracked_files() -> list[str]:
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         check=True, capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line and (REPO / line).is_file()]


def copy_project(dest: Path) -> Path:
    """A fresh project: the repository's files (as git sees them) in a new git repository."""
    for rel in tracked_files():
        if rel.startswith(("tests/", "docs/", "benchmarks/")):
            continue
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
    subprocess.run(["git", "commit", "-qm", "copy"], cwd=dest, check=True, env=env)
    return dest


S3_ENV = {"AWS_ACCESS_KEY_ID": "toolkit-test", "AWS_SECRET_ACCESS_KEY": "toolkit-test-secret",
          "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def s3_server(bucket: str):
    """moto's S3-compatible server on a free port of 127.0.0.1 with an empty bucket; yields its URL
    (credentials: S3_ENV)."""
    import boto3

    url = f"http://127.0.0.1:{_free_port()}"
    server = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", url.rsplit(":", 1)[1]],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_until_up(f"{url}/moto-api/", server, 30, "moto_server")
        boto3.client("s3", endpoint_url=url, region_name=S3_ENV["AWS_DEFAULT_REGION"],
                     aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"]).create_bucket(Bucket=bucket)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextlib.contextmanager
def mlflow_server(root: Path):
    """A real MLflow tracking server on a free port of 127.0.0.1: a SQLite backend store and a local
    artifact root under `root`, artifacts served through the server. Yields its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "mlflow-server.log", "w")
    server = subprocess.Popen([str(BIN / "mlflow"), "server", "--backend-store-uri", f"sqlite:///{root / 'mlflow.db'}",
                               "--artifacts-destination", str(root / "artifacts"), "--host", "127.0.0.1",
                               "--port", str(port), "--workers", "1"], stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_until_up(f"{url}/health", server, 120, "mlflow server", root / "mlflow-server.log")
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)
        log.close()


def _wait_until_up(url: str, server: subprocess.Popen, timeout_s: float, what: str, log: Path | None = None) -> None:
    """Polls `url` until the server answers; a server that exits or stays silent is an error with its log."""
    import time
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                tail = log.read_text()[-2000:] if log and log.is_file() else ""
                raise RuntimeError(f"{what} did not start {tail}") from None
            time.sleep(0.2)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_in(project: Path, *args: str, check: bool = False, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env or {}), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(list(args), cwd=project, env=env, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise AssertionError(f"{args} exited {result.returncode}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result


def tiny_random_llama(tokenizer, hidden_size: int, max_positions: int):
    """A 2-layer Llama with random weights (seeded) over the given tokenizer: for tests that need a
    real model but not a trained one."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4,
                         max_position_embeddings=max_positions, pad_token_id=tokenizer.pad_token_id,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return LlamaForCausalLM(config)


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """Run a test with a temporary project root as the working directory, with the repo's policies."""
    shutil.copytree(REPO / "policies", tmp_path / "policies")
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def pipeline_reads(tmp_path_factory) -> Path:
    """Where the pipeline run of `completed_pipeline` records what each stage read (toolkit.tracing)."""
    return tmp_path_factory.mktemp("reads")


@pytest.fixture(scope="session")
def completed_pipeline(tmp_path_factory, pipeline_reads):
    """A fresh copy of the repository after one real `dvc repro`. Never modify it: use `pipeline_copy`."""
    root = copy_project(tmp_path_factory.mktemp("project"))
    result = run_in(root, "dvc", "repro", env={"TOOLKIT_TRACE_READS": str(pipeline_reads)})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    (root / "first_repro.log").write_text(result.stdout)
    return root


@pytest.fixture
def pipeline_copy(completed_pipeline, tmp_path):
    """A private copy of the completed pipeline that a test may change."""
    target = tmp_path / "project"
    shutil.copytree(completed_pipeline, target, symlinks=True)
    return target


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> Path:
    """A small BPE tokenizer with the builtin chat template, saved once (what the base stage would give)."""
    from toolkit.data.synth import pretraining_corpus
    from toolkit.train.builtin_base import build_tokenizer

    texts = [item if isinstance(item, str) else " ".join(m["content"] for m in item) for item in pretraining_corpus(300, 1)]
    folder = tmp_path_factory.mktemp("tokenizer")
    build_tokenizer(texts, 400).save_pretrained(folder)
    return folder


@pytest.fixture
def data_project(in_tmp, tiny_tokenizer):
    """A project folder with a datasheet and the tiny tokenizer; `write(lines)` gives its Params."""
    import json as _json

    from toolkit.config import Params

    (in_tmp / "data").mkdir(exist_ok=True)
    shutil.copy(REPO / "data/support_tickets.datasheet.yaml", in_tmp / "data/d.datasheet.yaml")

    def write(lines, name: str = "d.jsonl", **data) -> Params:
        text = "".join((line if isinstance(line, str) else _json.dumps(line)) + "\n" for line in lines)
        (in_tmp / "data" / name).write_text(text, encoding="utf-8")
        return Params.model_validate({"data": {"path": f"data/{name}", "datasheet": "data/d.datasheet.yaml",
                                               "tokenizer": str(tiny_tokenizer), **data}})
    return write


@pytest.fixture(scope="session")
def tiny_base(tiny_tokenizer, tmp_path_factory) -> Path:
    """A 2-layer random Llama with the builtin tokenizer and chat template, saved as safetensors."""
    from transformers import AutoTokenizer

    folder = tmp_path_factory.mktemp("tiny_base")
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer)
    tiny_random_llama(tokenizer, hidden_size=32, max_positions=128).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


JUDGE_KEY = "sk-ant-test-NEVER-WRITE-ME-0123456789"   # a fake key that must never reach any written file


@pytest.fixture
def judge_project(in_tmp, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", JUDGE_KEY)
    (in_tmp / "eval_suites/judge").mkdir(parents=True)
    (in_tmp / "eval_suites/judge/rubric.yaml").write_text((REPO / "eval_suites/judge/rubric.yaml").read_text())
    (in_tmp / "artifacts/eval").mkdir(parents=True)

    from toolkit.config import Params

    def setup(stub, items: list[dict], **judge) -> Params:
        with open(in_tmp / "artifacts/eval/heldout_items.jsonl", "w") as out:
            out.writelines(json.dumps(item) + "\n" for item in items)
        return Params.model_validate({"evaluate": {"judge": {"base_url": stub.url, "max_retries": 2, "timeout_s": 10,
                                                             "concurrency": 4, **judge}}})
    return setup
