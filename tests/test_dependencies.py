"""dvc.yaml declares everything each stage reads, so DVC never skips a stage whose inputs changed.

Derived, not listed by hand: the toolkit modules a stage's command imports (the static import
closure of its click callback), and the params.yaml keys and project files the command actually
read in the real pipeline run (`TOOLKIT_TRACE_READS`, toolkit/tracing.py). Package `__init__`
files (no logic) and the CLI module itself (argument parsing and printing) are not required.
"""

import ast
import inspect
import json
import textwrap
from pathlib import Path

import pytest
import yaml

from conftest import REPO, run_in

pytestmark = pytest.mark.e2e

NOT_REQUIRED = {"toolkit/cli.py", "toolkit/tracing.py"}
# Read but not inputs: the parameters file (its keys are checked instead), caches keyed by content,
# and the repository's own files that dvclive reads to find the project it runs in.
IGNORED_READS = ("params.yaml", ".cache/", ".git/", ".gitignore", ".dvc/", ".dvcignore")


def _stages() -> dict[str, str]:
    """Stage name -> command, a foreach stage once per item of its list in params.yaml (train@1234)."""
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    stages = {}
    for name, stage in pipeline["stages"].items():
        if "foreach" not in stage:
            stages[name] = stage["cmd"]
            continue
        items = params
        for key in stage["foreach"].strip("${}").split("."):
            items = items[key]
        stages.update({f"{name}@{item}": stage["do"]["cmd"].replace("${item}", str(item)) for item in items})
    return stages


def _command_words(cmd: str) -> list[str]:
    """The command words before the first option: `toolkit train --seed 1` -> [train]."""
    words = []
    for word in cmd.split()[1:]:
        if word.startswith("-"):
            break
        words.append(word)
    return words


def _callback(cmd: str):
    from toolkit.cli import cli

    command = cli
    for word in _command_words(cmd):
        command = command.commands[word]
    return command.callback


def _module_file(name: str) -> Path | None:
    path = REPO / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    return path / "__init__.py" if (path / "__init__.py").is_file() else None


def _imports(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("toolkit")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("toolkit"):
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names
                      if _module_file(f"{node.module}.{alias.name}") is not None}
    return found


def import_closure(cmd: str) -> set[str]:
    """Repository-relative paths of the toolkit modules a stage command can import."""
    pending = _imports(ast.parse(textwrap.dedent(inspect.getsource(_callback(cmd)))))
    seen: set[str] = set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is not None:
            pending |= _imports(ast.parse(path.read_text()))
    files = {(_module_file(n)).relative_to(REPO).as_posix() for n in seen if _module_file(n) is not None}
    return {f for f in files if not f.endswith("__init__.py") and f not in NOT_REQUIRED}


def _covered(path: str, declared: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in declared)


def _key_covered(key: str, declared: list[str]) -> bool:
    return any(key == d or key.startswith(d + ".") for d in declared)


def _locked(project: Path) -> dict:
    return yaml.safe_load((project / "dvc.lock").read_text())["stages"]


def test_every_stage_declares_the_modules_it_imports(completed_pipeline):
    locked = _locked(completed_pipeline)
    missing = {}
    for stage, cmd in _stages().items():
        declared = [d["path"] for d in locked[stage].get("deps", [])]
        closure = import_closure(cmd)
        assert closure, stage
        undeclared = sorted(f for f in closure if not _covered(f, declared))
        if undeclared:
            missing[stage] = undeclared
    assert not missing, f"dvc.yaml does not declare these modules the stage imports: {missing}"


def test_every_stage_declares_the_params_and_files_it_read(completed_pipeline, pipeline_reads):
    locked = _locked(completed_pipeline)
    problems = {}
    for stage, cmd in _stages().items():
        trace_file = pipeline_reads / ("-".join(_command_words(cmd)) + ".json")
        assert trace_file.is_file(), f"{stage}: no trace of what `{cmd}` read"
        trace = json.loads(trace_file.read_text())
        deps = [d["path"] for d in locked[stage].get("deps", [])]
        outs = [o["path"] for o in locked[stage].get("outs", [])]
        declared_keys = [key for keys in locked[stage].get("params", {}).values() for key in keys]
        keys = [k for k in trace["params"] if not _key_covered(k, declared_keys)]
        files = [f for f in trace["files"] if not f.startswith(IGNORED_READS) and not _covered(f, deps + outs)]
        if keys or files:
            problems[stage] = {"params": keys, "files": files}
    assert not problems, f"dvc.yaml does not declare what these stages read: {problems}"


@pytest.mark.parametrize("edit, expected", [
    ("policy", {"card", "gate"}),
    ("technical documentation template", {"card"}),
    ("base.dtype", {"evaluate-heldout", "evaluate-ood", "evaluate-canary", "evaluate-general"}),
    ("finops.catalog", {"cost", "evaluate-judge"}),
])
def test_dvc_status_sees_each_input_change(pipeline_copy, edit, expected):
    if edit == "policy":
        policy = pipeline_copy / "policies/default.yaml"
        policy.write_text(policy.read_text() + "\n# reviewed\n")
    elif edit == "technical documentation template":
        template = pipeline_copy / "templates/technical_documentation.md.j2"
        template.write_text(template.read_text() + "\n")
    else:
        params = yaml.safe_load((pipeline_copy / "params.yaml").read_text())
        section, key = edit.split(".")
        if edit == "base.dtype":
            params[section][key] = "bfloat16"
        else:
            (pipeline_copy / "prices.yaml").write_text("catalog_date: '2026-12-01'\ncurrency: USD\n")
            params[section][key] = "prices.yaml"
        (pipeline_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run_in(pipeline_copy, "dvc", "status", "--json", check=True)
    changed = set(json.loads(result.stdout))
    assert expected <= changed, f"{edit}: dvc status lists {sorted(changed)}"


def test_adding_a_training_seed_trains_and_evaluates_only_that_seed(pipeline_copy):
    """train.seeds is read by the select stage alone: a new seed's stages run, the others' stay."""
    params = yaml.safe_load((pipeline_copy / "params.yaml").read_text())
    first = params["train"]["seeds"][0]
    params["train"]["seeds"] = [first, 7]
    (pipeline_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    changed = set(json.loads(run_in(pipeline_copy, "dvc", "status", "--json", check=True).stdout))
    assert {"train@7", "evaluate-seed@7", "select-seed"} <= changed, sorted(changed)
    assert not {f"train@{first}", f"evaluate-seed@{first}", "base", "validate"} & changed, sorted(changed)
