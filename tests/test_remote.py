"""Sharing runs through DVC remote storage (issue #19): `dvc push` of a completed pipeline, then a
second clone that `dvc pull`s gets the same adapter, byte for byte, and reproduces nothing. Against a
local-path remote and an S3-compatible server (moto's server mode) started on 127.0.0.1."""

import json
import os
import subprocess

import pytest

from conftest import S3_ENV, run_in, s3_server
from toolkit.files import sha256_path

pytestmark = pytest.mark.e2e

GIT_ENV = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}


@pytest.fixture
def s3_url():
    with s3_server("toolkit-runs") as url:
        yield url


def _add_remote(project, kind: str, tmp_path, s3_url: str | None) -> dict:
    if kind == "local":
        run_in(project, "dvc", "remote", "add", "-d", "shared", str(tmp_path / "store"), check=True)
        return {}
    run_in(project, "dvc", "remote", "add", "-d", "shared", "s3://toolkit-runs/demo", check=True)
    run_in(project, "dvc", "remote", "modify", "shared", "endpointurl", s3_url, check=True)
    return S3_ENV        # the credentials stay in the environment, never in .dvc/config


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_a_second_clone_pulls_the_outputs_and_reproduces_nothing(kind, pipeline_copy, tmp_path, request):
    project = pipeline_copy
    env = _add_remote(project, kind, tmp_path, request.getfixturevalue("s3_url") if kind == "s3" else None)
    assert "secret" not in (project / ".dvc/config").read_text()
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    subprocess.run(["git", "commit", "-qm", "the run, with a remote"], cwd=project, check=True, env={**os.environ, **GIT_ENV})
    pushed = run_in(project, "dvc", "push", env=env)
    assert pushed.returncode == 0, pushed.stderr[-3000:]

    second = tmp_path / "second"
    subprocess.run(["git", "clone", "-q", str(project), str(second)], check=True)
    assert not (second / "artifacts").exists()
    pulled = run_in(second, "dvc", "pull", env=env)
    assert pulled.returncode == 0, pulled.stderr[-3000:]
    assert sha256_path(second / "artifacts/adapter") == sha256_path(project / "artifacts/adapter")
    assert json.loads((second / "reports/gate.json").read_text())["passed"] is True
    assert "up to date" in run_in(second, "dvc", "status", env=env, check=True).stdout
    repro = run_in(second, "dvc", "repro", env=env, check=True)
    assert "Running stage" not in repro.stdout
