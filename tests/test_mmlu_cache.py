"""The MMLU tier's base cache is invalidated by any change to the tasks or to the data they read."""

import shutil
from pathlib import Path

from toolkit.evals.mmlu import task_files_digest

REPO = Path(__file__).resolve().parents[1]


def test_editing_a_question_changes_the_cache_key(in_tmp):
    shutil.copytree(REPO / "eval_suites/mmlu_local", in_tmp / "eval_suites/mmlu_local")
    tasks, data = "eval_suites/mmlu_local/tasks", Path("eval_suites/mmlu_local/data/arithmetic.jsonl")
    before = task_files_digest(tasks, None)
    assert task_files_digest(tasks, None) == before
    data.write_text(data.read_text().replace('"What is', '"What, exactly, is', 1))
    assert task_files_digest(tasks, None) != before
    edited = task_files_digest(tasks, None)
    config = Path(tasks) / "mmlu_local_arithmetic.yaml"
    config.write_text(config.read_text().replace("Answer:", "Answer: "))
    assert task_files_digest(tasks, None) != edited
    assert task_files_digest(None, "eval_suites/mmlu_local/data") != task_files_digest(None, None) == "hub"
