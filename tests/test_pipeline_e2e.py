"""The real pipeline, end to end: `dvc repro` of the embedded default in a fresh copy of the repo."""

import json

import pytest
import yaml
from huggingface_hub import ModelCard

from conftest import run_in

pytestmark = pytest.mark.e2e


@pytest.fixture
def project(completed_pipeline):
    return completed_pipeline


def _report(project, name):
    return json.loads((project / "reports" / f"{name}.json").read_text())


def test_adapter_is_a_safetensors_peft_adapter(project):
    adapter = project / "artifacts/adapter"
    assert (adapter / "adapter_model.safetensors").stat().st_size > 0
    assert json.loads((adapter / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert not list(adapter.glob("*.bin"))


def test_heldout_delta_is_positive_with_ci_above_zero(project):
    heldout = _report(project, "eval_heldout")
    primary = heldout["metrics"][heldout["primary_metric"]]
    assert primary["delta"] > 0 and primary["ci_low"] > 0
    assert heldout["n_items"] >= 50
    items = [json.loads(line) for line in (project / heldout["items_file"]).read_text().splitlines()]
    assert len(items) == heldout["n_items"]
    mean_adapter = sum(i["scores"][heldout["primary_metric"]]["adapter"] for i in items) / len(items)
    assert mean_adapter == pytest.approx(primary["adapter"])


def test_gate_passed_and_decision_printed(project):
    gate = _report(project, "gate")
    assert gate["passed"] is True and gate["blocking_failures"] == 0
    assert all(rule["status"] in ("passed", "warned", "not_applicable") for rule in gate["rules"])
    statuses = {rule["id"]: rule["status"] for rule in gate["rules"]}
    assert statuses["canary_vs_last_release"] == "not_applicable"   # the first release has nothing to compare with
    assert statuses["canary_vs_base"] == "passed" and statuses["heldout_beats_prompting"] == "passed"
    assert "gate PASSED under policy 'default'" in project.joinpath("first_repro.log").read_text()


def test_every_report_records_input_and_output_hashes(project):
    for name in ("base", "validate", "train", "eval_heldout", "eval_ood", "eval_canary", "card", "gate"):
        report = _report(project, name)
        assert report["outputs"] or report["inputs"], name
        for digest in {**report["inputs"], **report["outputs"]}.values():
            assert len(digest) == 64
    validate = _report(project, "validate")
    assert validate["inputs"]["data/support_tickets.jsonl"] == validate["data_sha256"]


def test_data_gate_on_the_default_data(project):
    validate = _report(project, "validate")
    assert validate["format"] == "chat" and validate["records_in"] == 1200
    assert validate["records_in"] == validate["records_quarantined"] + sum(validate["dropped"].values()) + validate["records_out"]
    assert validate["pii"]["findings"]["name"] > 1000 and validate["pii"]["unredacted_findings"] == 0
    train_text = (project / "artifacts/data/train.jsonl").read_text()
    assert "[NAME]" in train_text and "Thank you, Lea" not in train_text
    assert "Thank you, Lea" in (project / "data/support_tickets.jsonl").read_text()  # the source is untouched
    assert validate["tokens"]["truncated_records"] == 0
    assert (project / "reports/validate.html").read_text().count("<h2>") >= 8
    rules = {rule["id"]: rule for rule in _report(project, "gate")["rules"]}
    assert rules["no_unredacted_pii"]["status"] == rules["no_contamination"]["status"] == "passed"
    assert rules["heldout_mostly_unseen"]["status"] == "warned"  # templated data: the gate says so


def test_cost_report_has_real_plots_and_figures_from_the_reports(project):
    import csv

    cost, train, heldout = _report(project, "cost"), _report(project, "train"), _report(project, "eval_heldout")
    assert cost["training"]["device_hours"] == pytest.approx(train["wall_time_s"] / 3600)
    assert cost["inference"]["tokens_per_second"] == heldout["generation"]["adapter_tokens_per_s"]
    assert cost["estimate"]["tokens_per_epoch"] == _report(project, "validate")["tokens"]["split_tokens"]["train"]
    for key in ("volume_plot", "breakdown_plot", "eval_plot"):
        image = (project / cost["files"][key]).read_bytes()
        assert image[:8] == b"\x89PNG\r\n\x1a\n" and len(image) > 5000, key
    html = (project / cost["files"]["html"]).read_text()
    assert f"{cost['roi']['one_off_cost']:.2f} {cost['currency']}" in html and 'src="cost_vs_volume.png"' in html
    with open(project / cost["files"]["csv"], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {row["category"] for row in rows} >= {"data", "training", "evaluation", "engineering", "serving", "api"}
    assert "reports/cost/index.html" in (project / "artifacts/model_card/README.md").read_text()
    rules = {rule["id"]: rule["status"] for rule in _report(project, "gate")["rules"]}
    assert rules["training_cost_ceiling"] == "passed" and rules["roi_positive"] in ("passed", "warned")


def test_mfu_in_the_cost_report_is_the_train_stages_figure(pipeline_copy):
    """Issue #20: MFU was computed twice, and the cost stage's copy ignored the number of GPUs, so a
    2-GPU run's cost report said twice the train report's MFU."""
    from toolkit.train.metering import Devices, model_flops_utilisation

    project = pipeline_copy
    train = _report(project, "train")
    gpus = Devices("cuda", 2, "NVIDIA H100 80GB HBM3", 80.0)
    mfu = model_flops_utilisation(train["total_parameters"], 40_000.0, gpus, world_size=2)
    assert mfu is not None
    train.update(device=gpus.describe(), device_kind="cuda", device_count=2, world_size=2, tokens_per_s=40_000.0, mfu=mfu)
    (project / "reports/train.json").write_text(json.dumps(train))
    run_in(project, "toolkit", "cost", "report", check=True)
    assert _report(project, "cost")["training"]["mfu"] == mfu


def test_model_card_names_base_data_hash_and_eval_figures(project):
    card_text = (project / "artifacts/model_card/README.md").read_text()
    base, validate, heldout = _report(project, "base"), _report(project, "validate"), _report(project, "eval_heldout")
    assert base["model"] in card_text
    assert validate["data_sha256"] in card_text
    for name, m in heldout["metrics"].items():
        assert f"| {'%.4f' % m['adapter']} |" in card_text, name
        assert f"{m['delta']:+.4f}" in card_text, name
    card = ModelCard(card_text)
    assert card.data.base_model == base["model"] and card.data.library_name == "peft"
    results = card.data.eval_results
    primary = heldout["primary_metric"]
    assert any(r.metric_type == primary and r.metric_value == round(heldout["metrics"][primary]["adapter"], 4)
               for r in results)
    html = (project / "artifacts/model_card/model_card.html").read_text()
    assert validate["data_sha256"] in html and "<script" not in html


def test_technical_documentation_cites_reports_and_assesses_provider_status(project):
    techdoc = (project / "artifacts/model_card/technical_documentation.md").read_text()
    train, card = _report(project, "train"), _report(project, "card")
    assert f"{6 * train['total_parameters'] * train['tokens_seen']:.3g} FLOPs" in techdoc
    assert "below the indicative 10^23 FLOPs" in techdoc and card["provider_status"] in techdoc
    for provision in ("Art. 53(1)(a)", "Annex XI", "Annex XII", "Art. 10", "Art. 14", "Art. 15", "Art. 9", "Art. 72",
                      "Art. 12", "Art. 50", "Annex III"):
        assert provision in techdoc, provision
    for report, digest in card["cited_reports"].items():
        assert f"`{report}` | `{digest}`" in techdoc
    assert "Tiers not run for this version: none." in techdoc
    assert "| ood | 30 | answers_question |" in techdoc and "| canary | 24 | field_accuracy |" in techdoc
    assert "LLM-as-judge (claude-sonnet-4-5, pairwise, both orders): skipped: ANTHROPIC_API_KEY is not set" in techdoc
    html = (project / "artifacts/model_card/technical_documentation.html").read_text()
    assert "<table>" in html and "Provider status" in html
    assert card["documentation_missing"] == [] and card["documentation_policy"] == "default"


def test_card_check_and_stricter_policies_on_the_demo(pipeline_copy):
    assert run_in(pipeline_copy, "toolkit", "card", "check", "--policy", "high-risk").returncode == 0
    params = yaml.safe_load((pipeline_copy / "params.yaml").read_text())
    params["governance"]["risk_management"] = ""
    (pipeline_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_in(pipeline_copy, "toolkit", "card", check=True)
    missing = run_in(pipeline_copy, "toolkit", "card", "check", "--policy", "high-risk")
    assert missing.returncode == 1
    assert "missing: Risk management: empty or marked missing" in missing.stdout
    assert "missing: governance.risk_management: empty" in missing.stdout
    assert run_in(pipeline_copy, "toolkit", "card", "check", "--policy", "default").returncode == 0
    gate = run_in(pipeline_copy, "toolkit", "gate", "--policy", "production")
    assert gate.returncode == 1
    rules = {r["id"]: r["status"] for r in json.loads((pipeline_copy / "reports/gate.json").read_text())["rules"]}
    assert rules["ood_regression_bounded"] == "passed" and rules["canary_vs_base"] == "passed"
    assert rules["canary_vs_last_release"] == "not_applicable"
    # The adapter no longer answers plain support questions the base answered: flagged, and blocking here.
    assert rules["ood_no_regression"] == "failed"
    assert rules["judge_prefers_adapter"] == "skipped"  # no API key in CI: skipped, and not allowed to be
    assert rules["no_unredacted_pii"] == "passed" and rules["roi_positive"] == "failed"


def test_markup_in_the_datasheet_cannot_inject_into_either_document(pipeline_copy):
    sheet_path = pipeline_copy / "data/support_tickets.datasheet.yaml"
    sheet = yaml.safe_load(sheet_path.read_text())
    sheet["source"] = "<script>alert('x')</script> <img src=x onerror=alert(1)>"
    sheet_path.write_text(yaml.safe_dump(sheet))
    for stage in (("validate",), ("card",)):
        run_in(pipeline_copy, "toolkit", *stage, check=True)
    for name in ("model_card.html", "technical_documentation.html"):
        html = (pipeline_copy / "artifacts/model_card" / name).read_text()
        assert "<script>alert" not in html and "<img src=x" not in html, name
        assert "&lt;script&gt;alert" in html, name
    # Markdown viewers (the Hub among them) render raw HTML too: the Markdown documents escape it.
    params = yaml.safe_load((pipeline_copy / "params.yaml").read_text())
    params["governance"]["intended_use"] = "Triage <script>alert('card')</script> & more"
    (pipeline_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_in(pipeline_copy, "toolkit", "card", check=True)
    for name in ("README.md", "technical_documentation.md"):
        text = (pipeline_copy / "artifacts/model_card" / name).read_text()
        assert "<script>" not in text and "<img src=x" not in text, name
        assert "&lt;script&gt;alert" in text, name
    assert "Triage &lt;script&gt;alert('card')&lt;/script&gt; &amp; more" in \
        (pipeline_copy / "artifacts/model_card/README.md").read_text()


def test_general_tier_paired_delta_samples_and_base_cache(pipeline_copy):
    mmlu = _report(pipeline_copy, "eval_general")
    overall = mmlu["metrics"]["accuracy"]
    items = [json.loads(line) for line in (pipeline_copy / mmlu["items_file"]).read_text().splitlines()]
    assert len(items) == mmlu["n_items"] == 100
    assert overall["base"] == pytest.approx(sum(i["base"] for i in items) / 100)
    assert overall["delta"] == pytest.approx(overall["adapter"] - overall["base"])
    assert overall["relative_delta"] == pytest.approx(overall["delta"] / overall["base"]) and 0 <= overall["p_value"] <= 1
    assert {k for k in mmlu["metrics"] if k.startswith("accuracy:")} == {
        f"accuracy:mmlu_local_{s}" for s in ("support_category", "support_priority", "product_catalog", "arithmetic")}
    for side in ("base", "adapter"):
        assert len((pipeline_copy / f"artifacts/eval/general_samples/{side}/mmlu_local_arithmetic.jsonl").read_text().splitlines()) == 25
    assert mmlu["generation"]["base_cached"] is False  # the first run in a fresh project
    again = run_in(pipeline_copy, "toolkit", "evaluate", "mmlu", check=True)   # the tier's old name still runs it
    assert "base from cache" in again.stdout
    cached = _report(pipeline_copy, "eval_general")
    assert cached["generation"]["base_cached"] is True and cached["metrics"] == mmlu["metrics"]
    # A local copy of MMLU-layout files: one task per file, the same prompt, so the same accuracy.
    params = yaml.safe_load((pipeline_copy / "params.yaml").read_text())
    params["evaluate"]["general"]["data_dir"] = "eval_suites/mmlu_local/data"
    (pipeline_copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_in(pipeline_copy, "toolkit", "evaluate", "general", check=True)
    from_files = _report(pipeline_copy, "eval_general")
    assert from_files["generation"]["tasks"] == ["mmlu_files"] and from_files["generation"]["base_cached"] is False
    assert from_files["metrics"]["accuracy"] == mmlu["metrics"]["accuracy"]


def test_ood_and_canary_tiers_with_prompted_baseline_plots_and_metrics(project):
    ood, canary, heldout = (_report(project, f"eval_{tier}") for tier in ("ood", "canary", "heldout"))
    assert ood["n_items"] == 30 and canary["n_items"] == 24
    # Each metric counts only the items it applies to, and 0/1 metrics carry McNemar's p-value.
    assert ood["metrics"]["field_accuracy"]["n"] == 19 and ood["metrics"]["answers_question"]["n"] == 5
    assert ood["metrics"]["json_valid"]["p_value"] is not None and ood["metrics"]["field_accuracy"]["p_value"] is None
    assert set(ood["by_category"]) >= {"long_input", "unicode", "prompt_injection", "unusual_format"}
    # The regression the tier exists for: the sister task (plain support chat) the base handled is lost,
    # while the held-out tier improves.
    assert "answers_question" in ood["regressed_metrics"] and ood["regressed_metric_count"] >= 1
    assert heldout["metrics"]["field_accuracy"]["ci_low"] > 0
    assert canary["previous"] is None and canary["against_previous"] is None
    for report in (ood, canary, heldout):
        assert set(report["against_prompted"]) == set(report["metrics"])
        items = [json.loads(line) for line in (project / report["items_file"]).read_text().splitlines()]
        assert len(items) == report["n_items"] and {"base_output", "prompted_output", "adapter_output"} <= set(items[0])
        primary = report["primary_metric"]
        scored = [i["scores"][primary] for i in items if primary in i["scores"]]
        assert sum(s["prompted"] for s in scored) / len(scored) == pytest.approx(report["against_prompted"][primary]["base"])
        metrics = json.loads((project / "metrics" / f"{report['suite']}.json").read_text())
        assert metrics[primary]["delta"] == round(report["metrics"][primary]["delta"], 4)
    shown = run_in(project, "dvc", "metrics", "show", "--json", check=True).stdout
    assert "metrics/ood.json" in shown and "metrics/canary.json" in shown
    plots = run_in(project, "dvc", "plots", "show", "--json", check=True)
    assert "eval_deltas" in plots.stdout and "canary: field_accuracy vs prompted" in plots.stdout


def test_canary_compares_with_the_last_release_and_catches_a_damaged_adapter(pipeline_copy):
    project = pipeline_copy
    run_in(project, "toolkit", "release", check=True)
    # The release appended to the ledger, which the canary stage depends on: DVC re-runs it.
    assert "evaluate-canary" in run_in(project, "dvc", "status", check=True).stdout
    run_in(project, "toolkit", "evaluate", "canary", check=True)
    same = _report(project, "eval_canary")
    assert same["previous"]["version"] == "1" and same["previous"]["source"] == "registry registry"
    primary = same["primary_metric"]
    assert same["against_previous"][primary]["delta"] == 0.0 and same["regressed_items"]["previous"] == 0

    # Damage the current adapter: noise on every LoRA weight.
    import torch
    from safetensors.torch import load_file, save_file

    weights_file = project / "artifacts/adapter/adapter_model.safetensors"
    weights = load_file(str(weights_file))
    torch.manual_seed(0)
    save_file({k: v + 0.3 * torch.randn_like(v) for k, v in weights.items()}, str(weights_file))
    result = run_in(project, "toolkit", "evaluate", "canary", check=True)
    damaged = _report(project, "eval_canary")
    drop = damaged["against_previous"][primary]
    assert drop["delta"] < -0.05 and drop["base"] == same["against_previous"][primary]["base"]
    assert damaged["regressed_items"]["previous"] > 0
    assert "scored lower on field_accuracy than with the previous" in result.stdout
    items = [json.loads(line) for line in (project / damaged["items_file"]).read_text().splitlines()]
    assert all("previous_output" in item for item in items)
    gate = run_in(project, "toolkit", "gate")
    assert gate.returncode == 1 and "canary_vs_last_release (failed)" in gate.stderr


def test_training_metering_checkpoints_and_loss_curves(project):
    train = _report(project, "train")
    assert train["method"] == "sft" and train["device_kind"] == "cpu" and train["world_size"] == 1
    assert train["checkpoint_steps"] == 50 and train["best_step"] and train["best_validation_loss"] > 0
    assert train["peak_memory_gb"] > 0 and train["tokens_per_s"] > 0 and train["mfu"] is None
    assert train["trainable_parameters"] < train["total_parameters"]
    # The checkpoints of a finished run are gone; the loss curves are there for `dvc plots`.
    assert not any((project / ".cache/train").glob("*/checkpoint-*"))
    plots = run_in(project, "dvc", "plots", "show", "--json", check=True).stdout
    assert "dvclive/runs/seed-1234/plots/metrics/train/loss.tsv" in plots
    assert "dvclive/runs/seed-1234/plots/metrics/validation/loss.tsv" in plots
    card = (project / "artifacts/model_card/README.md").read_text()
    assert (f"| Released checkpoint | the step-{train['best_step']} checkpoint of {train['optimizer_steps']} "
            "(lowest validation loss) |") in card
    # One seed by default (train.seeds): trained by train@1234, released by select-seed, evaluated by
    # evaluate-seed@1234; the tiers' across-seed section then holds that one run.
    assert train["seeds"]["count"] == 1 and train["seeds"]["chosen"] == 1234 and train["params"]["seed"] == 1234
    assert train["outputs"] == {"artifacts/adapter": train["seeds"]["runs"][0]["adapter_sha256"]}
    assert "| Training seeds | one training run (seed 1234) |" in card
    heldout = _report(project, "eval_heldout")
    seeds = heldout["across_seeds"]
    primary = heldout["primary_metric"]
    assert seeds["count"] == 1 and seeds["metrics"][primary]["per_seed"]["1234"] == pytest.approx(
        heldout["metrics"][primary]["delta"], abs=1e-9)


def test_second_repro_runs_no_stage(pipeline_copy):
    result = run_in(pipeline_copy, "dvc", "repro", check=True)
    assert "Running stage" not in result.stdout
    assert "up to date" in result.stdout


def test_stricter_policy_fails_the_gate_and_repro_with_the_reason(pipeline_copy):
    project = pipeline_copy
    strict = {"name": "strict", "description": "demands a perfect adapter", "extends": "default", "rules": [{
        "id": "heldout_primary_improves", "report": "eval_heldout", "field": "metrics.{primary_metric}.adapter",
        "op": "min", "threshold": 1.01, "severity": "block", "rationale": "only perfection ships"}]}
    (project / "policies/strict.yaml").write_text(yaml.safe_dump(strict))
    direct = run_in(project, "toolkit", "gate", "--policy", "strict")
    assert direct.returncode == 1
    assert "heldout_primary_improves (failed)" in direct.stderr

    params = yaml.safe_load((project / "params.yaml").read_text())
    params["gate"]["policy"] = "strict"
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    repro = run_in(project, "dvc", "repro")
    assert repro.returncode != 0
    assert "Running stage 'gate'" in repro.stdout and "Running stage 'train@" not in repro.stdout
    gate = _report(project, "gate")
    failed = [r for r in gate["rules"] if r["status"] == "failed"]
    assert gate["passed"] is False and [r["id"] for r in failed] == ["heldout_primary_improves"]
    assert failed[0]["threshold"] == 1.01 and 0 < failed[0]["value"] <= 1
    assert failed[0]["rationale"] == "only perfection ships"
    assert "only perfection ships" in (project / "reports/gate.md").read_text()


def _rows(table):
    """(name or rev, metrics by file) of every row of `dvc exp show --json`, experiments included."""
    if isinstance(table, list):
        for item in table:
            yield from _rows(item)
    elif isinstance(table, dict):
        data = table.get("data")
        if isinstance(data, dict) and "metrics" in data:
            metrics = {path: (entry or {}).get("data") for path, entry in (data["metrics"] or {}).items()}
            yield table.get("name") or table.get("rev"), metrics
        for key in ("experiments", "revs"):
            if table.get(key):
                yield from _rows(table[key])


def test_runs_compare_in_dvc_exp_show_and_metrics_diff(pipeline_copy):
    """Issue #15: metrics were git-ignored with cache: false, so `dvc exp show` and `dvc metrics diff`
    showed `!` for main and for every experiment, and `dvc metrics show` printed 539 columns."""
    project = pipeline_copy
    git_env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    run_in(project, "git", "add", "-A", check=True)
    run_in(project, "git", "commit", "-qm", "the reference run", check=True, env=git_env)
    assert not run_in(project, "git", "status", "--porcelain", "metrics", "plots", "dvclive", check=True).stdout

    shown = json.loads(run_in(project, "dvc", "metrics", "show", "--json", check=True).stdout)
    columns = [0]

    def count(value):
        if isinstance(value, dict):
            for item in value.values():
                count(item)
        else:
            columns[0] += 1
    count(next(iter(shown.values()))["data"])
    assert 20 <= columns[0] <= 80, columns[0]         # headline figures, not every report field

    run_in(project, "dvc", "exp", "run", "-n", "longer-horizon", "-S", "finops.horizon_months=24", check=True)
    rows = dict(_rows(json.loads(run_in(project, "dvc", "exp", "show", "--json", check=True).stdout)))
    experiment = rows["longer-horizon"]
    baseline = next(metrics for name, metrics in rows.items() if name not in ("workspace", "longer-horizon"))
    for metrics in (experiment, baseline):     # real numbers on both sides, never "!"
        assert isinstance(metrics["metrics/heldout.json"]["field_accuracy"]["delta"], float)
        assert isinstance(metrics["metrics/cost.json"]["roi"], float)
        assert isinstance(metrics["metrics/train.json"]["final_loss"], float)
    assert experiment["metrics/heldout.json"] == baseline["metrics/heldout.json"]      # evaluation did not re-run
    assert experiment["metrics/cost.json"]["roi"] != baseline["metrics/cost.json"]["roi"]

    diff = json.loads(run_in(project, "dvc", "metrics", "diff", "--json", check=True).stdout)
    roi = diff["metrics/cost.json"]["roi"]
    assert roi["old"] == baseline["metrics/cost.json"]["roi"] and roi["new"] == experiment["metrics/cost.json"]["roi"]


# Two tasks of the user's own over the same local data: one generates, one has two metrics.
TASK_DATA = """dataset_path: json
dataset_kwargs: {data_files: {test: eval_suites/mmlu_local/data/arithmetic.jsonl}}
test_split: test
doc_to_text: "{{question.strip()}}\\nAnswer:"
metadata: {version: 1.0}
"""
GENERATE_TASK = "task: arithmetic_generate\n" + TASK_DATA + """output_type: generate_until
doc_to_target: "{{choices[answer]}}"
generation_kwargs: {until: ["\\n"], max_gen_toks: 8, do_sample: false}
metric_list: [{metric: exact_match, aggregation: mean, higher_is_better: true, ignore_case: true}]
"""
NORM_TASK = "task: arithmetic_norm\n" + TASK_DATA + """output_type: multiple_choice
doc_to_choice: "{{choices}}"
doc_to_target: answer
metric_list: [{metric: acc, aggregation: mean, higher_is_better: true},
              {metric: acc_norm, aggregation: mean, higher_is_better: true}]
"""


def test_any_lm_eval_task_generate_until_included_with_its_own_metrics(pipeline_copy):
    """Issue #15: a generate_until task crashed (KeyError 'acc'), the chat template was always off,
    and an unknown or unreachable task was a traceback with exit 1."""
    project = pipeline_copy
    (project / "extra_tasks").mkdir()
    (project / "extra_tasks/arithmetic_generate.yaml").write_text(GENERATE_TASK)
    (project / "extra_tasks/arithmetic_norm.yaml").write_text(NORM_TASK)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["evaluate"]["general"].update(tasks=["arithmetic_generate", "arithmetic_norm"], include_path="extra_tasks",
                                         limit=10, apply_chat_template=True)
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run_in(project, "toolkit", "evaluate", "general", check=True)
    report = _report(project, "eval_general")
    assert {"exact_match", "accuracy", "acc_norm", "exact_match:arithmetic_generate", "accuracy:arithmetic_norm",
            "acc_norm:arithmetic_norm"} == set(report["metrics"])
    assert report["primary_metric"] == "accuracy" and report["generation"]["apply_chat_template"] is True
    assert report["n_items"] == 30                                   # 10 documents x 3 metrics, paired
    assert "general capability exact_match: base" in result.stdout
    samples = [json.loads(line) for line in
               (project / "artifacts/eval/general_samples/adapter/arithmetic_generate.jsonl").read_text().splitlines()]
    assert len(samples) == 10 and all(isinstance(s["resps"], list) for s in samples)   # the generations are kept
    assert json.loads((project / "metrics/general.json").read_text())["exact_match"]["base"] == report["metrics"]["exact_match"]["base"]

    params["evaluate"]["general"].update(tasks=["arithmetic_generat"])
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    failed = run_in(project, "toolkit", "evaluate", "general")
    assert failed.returncode == 2 and "unknown lm-eval task(s): arithmetic_generat" in failed.stderr
    assert "did you mean arithmetic_generate" in failed.stderr and "Traceback" not in failed.stderr
    params["evaluate"]["general"].update(tasks=["hellaswag"], include_path=None)         # needs the Hub, offline here
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    offline = run_in(project, "toolkit", "evaluate", "general", env={"HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"})
    assert offline.returncode == 2 and "cannot be reached" in offline.stderr and "Traceback" not in offline.stderr


def test_the_sft_then_dpo_variant_of_the_demo_runs_end_to_end_through_dvc(pipeline_copy):
    """Issue #15: the documented SFT -> DPO variant (scripts/demo_sft_dpo.sh): the SFT adapter of the
    reference run is released, then DPO on preference pairs continues it as a `dvc exp run`. It found
    the card crashing on preference metrics that the prompted baseline does not have."""
    project = pipeline_copy
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    result = run_in(project, "bash", "scripts/demo_sft_dpo.sh", env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "released version 1 -> registry/releases/v1" in result.stdout

    validate, train = _report(project, "validate"), _report(project, "train")
    assert validate["kind"] == "preference" and validate["records_in"] == 400
    assert train["method"] == "dpo" and train["adapter"]["init_adapter"] == "registry/releases/v1"
    assert train["final_loss"] < train["first_loss"]
    heldout = _report(project, "eval_heldout")
    assert heldout["n_items"] == validate["splits"]["heldout"]
    accuracy = heldout["metrics"]["preference_accuracy"]
    assert accuracy["adapter"] > accuracy["base"] and heldout["metrics"]["logprob_margin"]["delta"] > 0
    canary = _report(project, "eval_canary")       # SFT+DPO against the SFT release it continued
    assert canary["previous"]["version"] == "1" and canary["against_previous"]
    card = (project / "artifacts/model_card/README.md").read_text()
    assert "Direct Preference Optimization (DPO)" in card and "continued from `registry/releases/v1`" in card
    assert "preference_accuracy" in card
    assert _report(project, "gate")["passed"] is True
    rows = dict(_rows(json.loads(run_in(project, "dvc", "exp", "show", "--json", check=True).stdout)))
    assert isinstance(rows["sft-dpo"]["metrics/heldout.json"]["preference_accuracy"]["adapter"], float)


def test_the_sft_then_grpo_variant_of_the_demo_runs_end_to_end_through_dvc(pipeline_copy):
    """Issue #18: the documented SFT -> GRPO variant (scripts/demo_sft_grpo.sh): the released SFT
    adapter continued by GRPO on the tickets, rewarded by the held-out tier's own metrics, through
    every stage to a passing gate; the card names the rewards and the held-out report carries the
    reward-hacking check against the SFT adapter the run started from."""
    project = pipeline_copy
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    result = run_in(project, "bash", "scripts/demo_sft_grpo.sh", env=env)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    train = _report(project, "train")
    assert train["method"] == "grpo" and train["adapter"]["init_adapter"] == "registry/releases/v1"
    assert [r["metric"] for r in train["objective"]["rewards"]] == ["json_valid", "field_accuracy"]
    history = train["reward_history"]        # one row per logged step (train.logging_steps: 10)
    assert [row["step"] for row in history] == [1, 10, 20, 30, 40] == [1] + list(range(10, train["optimizer_steps"] + 1, 10))
    assert all({"reward", "json_valid", "field_accuracy", "kl", "completion_length"} <= set(row) for row in history)
    assert (project / "dvclive/runs/seed-1234/plots/metrics/train/rewards/field_accuracy.tsv").is_file()
    heldout = _report(project, "eval_heldout")
    check = heldout["reward_hacking"]
    assert check["compared_with"] == "the initial adapter registry/releases/v1"
    assert set(check["checked_metrics"]) == {"field_f1", "ticket_schema", "exact_match"}
    assert isinstance(check["suspected"], bool)
    card = (project / "artifacts/model_card/README.md").read_text()
    assert "Group Relative Policy Optimization (GRPO)" in card and "json_valid (metric json_valid, weight 0.5)" in card
    gate = _report(project, "gate")
    assert gate["passed"] is True
    assert next(r for r in gate["rules"] if r["id"] == "no_reward_hacking")["status"] in ("passed", "warned")
    rows = dict(_rows(json.loads(run_in(project, "dvc", "exp", "show", "--json", check=True).stdout)))
    assert isinstance(rows["sft-grpo"]["metrics/train.json"]["final_reward"], float)
    from toolkit.governance.statements import missing_statements

    documentation = project / "artifacts/model_card/technical_documentation.md"
    assert missing_statements(train, {"card": card, "documentation": documentation.read_text()}) == []
