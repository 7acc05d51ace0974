"""The train stage on a tiny random Llama: every objective and adapter, resume after SIGKILL,
divergence, early stopping, metering, dvclive curves, and a 2-process data-parallel run."""

import json
import shutil

import pytest

from conftest import BIN, REPO, run_in, tiny_random_llama
from training_runs import TICKETS, kill_after_first_checkpoint, kto_rows, make_project, preference_rows, sft_rows, train_in
from toolkit.errors import ConfigError, TrainingDiverged, UnsupportedHardwareError

def test_sft_reduces_the_loss_and_the_saved_adapter_reloads_to_identical_logits(tmp_path, tiny_base):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    params = make_project(tmp_path, tiny_base, sft_rows(32), sft_rows(8, offset=100), epochs=6)
    report, model = train_in(tmp_path, params)
    # A 2-layer, 32-wide random model learns slowly through rank-4 adapters: 6.00 -> about 5.5 in 48 steps.
    assert report.method == "sft" and report.final_loss < report.first_loss - 0.25
    assert report.optimizer_steps == 48 and report.best_step is not None and report.checkpoint_steps == 5
    assert report.tokens_seen > 0 and report.tokens_per_s > 0 and report.peak_memory_gb > 0
    assert report.device_kind == "cpu" and report.world_size == 1 and report.gpu_hours == 0 and report.mfu is None
    adapter = tmp_path / "artifacts/adapter"
    assert (adapter / "adapter_model.safetensors").is_file() and not list(adapter.rglob("*.bin"))
    assert not (adapter / "ref").exists()
    # Reloaded from disk onto a fresh base: the very same logits as the model in memory.
    ids = torch.tensor([[5, 17, 42, 99, 7, 3]])
    model.eval()
    with torch.no_grad():
        in_memory = model(input_ids=ids).logits
        base = AutoModelForCausalLM.from_pretrained(tiny_base, use_safetensors=True)
        reloaded = PeftModel.from_pretrained(base, adapter).eval()(input_ids=ids).logits
    assert torch.equal(in_memory, reloaded)
    # Loss curves for `dvc plots`, written by dvclive without touching dvc.yaml.
    curve = (tmp_path / "dvclive/train/plots/metrics/train/loss.tsv").read_text().splitlines()
    assert curve[0].split("\t")[:2] == ["step", "loss"] and len(curve) > 10
    assert (tmp_path / "dvclive/train/plots/metrics/validation/loss.tsv").is_file()
    assert not (tmp_path / "dvc.yaml").exists()
    assert not (tmp_path / ".cache/train").exists() or not any((tmp_path / ".cache/train").iterdir())


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo"])
def test_dpo_reduces_the_loss(tmp_path, tiny_base, loss_type):
    params = make_project(tmp_path, tiny_base, preference_rows(32), method="dpo", epochs=4,
                          preference={"loss_type": loss_type, "beta": 0.1})
    report, _ = train_in(tmp_path, params)
    assert report.method == "dpo" and report.objective["loss_type"] == loss_type
    assert report.final_loss < report.first_loss
    assert (tmp_path / "artifacts/adapter/adapter_model.safetensors").is_file()


@pytest.mark.parametrize("method, rows", [("kto", kto_rows(16)), ("orpo", preference_rows(16))])
def test_kto_and_orpo_complete(tmp_path, tiny_base, method, rows):
    params = make_project(tmp_path, tiny_base, rows, method=method, epochs=1)
    report, _ = train_in(tmp_path, params)
    assert report.method == method and report.optimizer_steps == 4
    assert (tmp_path / "artifacts/adapter/adapter_model.safetensors").is_file()


def test_dpo_continues_an_sft_adapter_and_ships_only_the_trained_copy(tmp_path, tiny_base):
    sft_root, dpo_root = tmp_path / "sft", tmp_path / "dpo"
    train_in(sft_root, make_project(sft_root, tiny_base, sft_rows(16), epochs=1))
    shutil.copytree(sft_root / "artifacts/adapter", tmp_path / "sft_adapter")
    params = make_project(dpo_root, tiny_base, preference_rows(16), method="dpo", epochs=1,
                          init_adapter=str(tmp_path / "sft_adapter"))
    report, _ = train_in(dpo_root, params)
    assert report.adapter["init_adapter"] == str(tmp_path / "sft_adapter")
    saved = dpo_root / "artifacts/adapter"
    assert (saved / "adapter_model.safetensors").is_file() and not (saved / "ref").exists()
    assert (saved / "adapter_model.safetensors").read_bytes() != (tmp_path / "sft_adapter/adapter_model.safetensors").read_bytes()


@pytest.mark.parametrize("adapter, lora, flag", [("dora", {}, "use_dora"), ("lora", {"rslora": True}, "use_rslora")])
def test_dora_and_rslora_give_loadable_adapters(tmp_path, tiny_base, adapter, lora, flag):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    params = make_project(tmp_path, tiny_base, sft_rows(8), adapter=adapter, epochs=1,
                          lora={"r": 4, "alpha": 8, "dropout": 0.0, **lora})
    train_in(tmp_path, params)
    saved = tmp_path / "artifacts/adapter"
    assert json.loads((saved / "adapter_config.json").read_text())[flag] is True
    base = AutoModelForCausalLM.from_pretrained(tiny_base, use_safetensors=True)
    assert PeftModel.from_pretrained(base, saved).peft_config["default"].__getattribute__(flag) is True


def test_qlora_on_cpu_stops_at_once_with_a_clear_message(tmp_path, tiny_base):
    params = make_project(tmp_path, tiny_base, sft_rows(8), adapter="qlora")
    with pytest.raises(UnsupportedHardwareError, match="needs a CUDA GPU") as error:
        train_in(tmp_path, params)
    assert error.value.exit_code == 2 and not (tmp_path / "artifacts/adapter").exists()
    result = run_in(tmp_path, "toolkit", "train")
    assert result.returncode == 2 and "qlora" in result.stderr and "Traceback" not in result.stderr


def test_method_and_data_must_match(tmp_path, tiny_base):
    params = make_project(tmp_path, tiny_base, sft_rows(8), method="dpo")
    with pytest.raises(ConfigError, match="train.method dpo needs preference pairs, but the validated data is "
                                          r"conversations \(SFT\); use method sft"):
        train_in(tmp_path, params)


def test_a_diverging_run_stops_with_a_report_and_no_adapter(tmp_path, tiny_base):
    params = make_project(tmp_path, tiny_base, sft_rows(32), learning_rate=50.0, epochs=3,
                          divergence_spike_factor=2.0)
    with pytest.raises(TrainingDiverged, match="training stopped: the training loss") as error:
        train_in(tmp_path, params)
    assert error.value.exit_code == 1
    diverged = json.loads((tmp_path / "reports/train_diverged.json").read_text())
    assert diverged["diverged"] and diverged["step"] < 24 and diverged["reason"].startswith("the training loss")
    assert not (tmp_path / "artifacts/adapter").exists() and not (tmp_path / "reports/train.json").exists()


def test_early_stopping_releases_the_best_checkpoint(tmp_path, tiny_base):
    # Validation answers contradict the training answers: validation loss rises as training fits.
    contradicting = [{"messages": r["messages"][:2] + [{"role": "assistant", "content": "banana"}]}
                     for r in sft_rows(8)]
    params = make_project(tmp_path, tiny_base, sft_rows(32), contradicting, epochs=10, checkpoint_steps=4,
                          early_stopping_patience=1, learning_rate=0.02)
    report, _ = train_in(tmp_path, params)
    assert report.stopped_early and report.optimizer_steps < 80
    assert report.best_step < report.optimizer_steps
    assert report.validation_loss == report.best_validation_loss


def test_a_killed_run_resumes_from_its_last_checkpoint_with_the_same_step_count(tmp_path, tiny_base):
    rows = sft_rows(48)
    reference_root, killed_root = tmp_path / "reference", tmp_path / "killed"
    reference = make_project(reference_root, tiny_base, rows, epochs=8, checkpoint_steps=6)
    expected, _ = train_in(reference_root, reference)
    make_project(killed_root, tiny_base, rows, epochs=8, checkpoint_steps=6)
    kill_after_first_checkpoint(killed_root)
    assert not (killed_root / "reports/train.json").exists()
    resumed = run_in(killed_root, "toolkit", "train", check=True)
    report = json.loads((killed_root / "reports/train.json").read_text())
    assert report["resumed_from_step"] and report["resumed_from_step"] % 6 == 0
    assert report["optimizer_steps"] == expected.optimizer_steps == 96
    assert f"resumed at step {report['resumed_from_step']}" in resumed.stdout
    assert report["previous_wall_time_s"] > 0
    rows = (killed_root / "dvclive/train/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]
    steps = [int(row.split("\t")[0]) for row in rows]
    assert steps == sorted(set(steps))                # steps after the checkpoint are not logged twice


def test_sft_on_tool_calling_conversations_trains_on_calls_and_answers(tmp_path, tiny_tokenizer):
    """Issue #15: tool-calling records (calls, results, tools) train end to end through TRL."""
    from transformers import AutoTokenizer

    long_base = tmp_path / "base"     # the tools' definitions make a conversation ~280 tiny-tokenizer tokens
    tokenizer = AutoTokenizer.from_pretrained(tiny_tokenizer)
    tiny_random_llama(tokenizer, hidden_size=32, max_positions=512).save_pretrained(long_base, safe_serialization=True)
    tokenizer.save_pretrained(long_base)
    tools = [{"type": "function", "function": {"name": "route", "description": "Route a ticket.",
                                               "parameters": {"type": "object", "properties": {"queue": {"type": "string"}}}}}]
    rows = []
    for text, label in TICKETS * 3:
        rows.append({"messages": [{"role": "user", "content": text},
                                  {"role": "assistant", "content": "", "tool_calls": [
                                      {"type": "function", "function": {"name": "route", "arguments": {"queue": label}}}]},
                                  {"role": "tool", "content": "ok"},
                                  {"role": "assistant", "content": "Routed."}], "tools": tools})
    params = make_project(tmp_path / "project", long_base, rows, epochs=4, max_length=384)
    report, _ = train_in(tmp_path / "project", params)
    assert report.optimizer_steps == 24 and report.final_loss < report.first_loss
    assert report.tokens_seen > 0 and "assistant" in report.loss_on


def test_a_checkpoint_killed_while_its_trainer_state_was_written_is_not_resumed(tmp_path):
    """CI saw this: the kill landed while transformers wrote trainer_state.json (last, not
    atomically), the empty file was taken for a complete checkpoint and the resume crashed."""
    from toolkit.train.run import last_complete_checkpoint
    for step, state in ((6, '{"global_step": 6}'), (12, ""), (18, '{"global_st')):
        checkpoint = tmp_path / f"checkpoint-{step}"
        checkpoint.mkdir()
        (checkpoint / "optimizer.pt").write_bytes(b"x")
        (checkpoint / "trainer_state.json").write_text(state)
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-6"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-6"]


def test_curves_killed_while_dvclive_wrote_them_are_trimmed_for_the_resumed_run(tmp_path):
    """CI saw this: the kill landed while dvclive rewrote its summary, and the resumed run crashed
    reading the empty file (exit 4). A torn last row and rows past the checkpoint go too."""
    from toolkit.train.callbacks import trim_for_resume

    (tmp_path / "metrics.json").write_text("")
    curve = tmp_path / "plots/metrics/train/loss.tsv"
    curve.parent.mkdir(parents=True)
    curve.write_text("step\tloss\n0\t5.99\n2\t5.97\n6\t5.90\n8\t5.8\n10\t5.")
    trim_for_resume(tmp_path, 6)
    assert not (tmp_path / "metrics.json").exists()
    assert curve.read_text() == "step\tloss\n0\t5.99\n2\t5.97\n6\t5.90\n"
    (tmp_path / "metrics.json").write_text('{"step": 6}')
    trim_for_resume(tmp_path, 6)                      # a sound summary and curve are left alone
    assert (tmp_path / "metrics.json").read_text() == '{"step": 6}'
    assert curve.read_text() == "step\tloss\n0\t5.99\n2\t5.97\n6\t5.90\n"


def test_two_process_data_parallel_run_under_accelerate(tmp_path, tiny_base):
    make_project(tmp_path, tiny_base, sft_rows(32), epochs=2)
    # The shipped DDP config; without GPUs its processes train on the CPU over gloo.
    result = run_in(tmp_path, str(BIN / "accelerate"), "launch", "--config_file", str(REPO / "docs/accelerate/ddp.yaml"),
                    "--num_processes", "2", str(BIN / "toolkit"), "train")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((tmp_path / "reports/train.json").read_text())
    # The global batch is twice the per-device batch: half the steps of one process.
    assert report["world_size"] == 2 and report["optimizer_steps"] == 8
    assert (tmp_path / "artifacts/adapter/adapter_model.safetensors").is_file()
    assert result.stdout.count("train (sft, lora)") == 1   # only the main process reports
    # ... and only it writes the loss curves: one row per logged step.
    rows = (tmp_path / "dvclive/train/plots/metrics/train/loss.tsv").read_text().splitlines()[1:]
    steps = [int(row.split("\t")[0]) for row in rows]
    assert steps and steps == sorted(set(steps))


def test_a_run_shorter_than_logging_steps_reports_its_first_and_final_loss(tmp_path, tiny_base):
    """Issue #15: DPO for fewer steps than logging_steps wrote the adapter, then the CLI crashed on a
    None first loss. The first and the last step are always logged."""
    make_project(tmp_path, tiny_base, preference_rows(8), method="dpo", epochs=1, logging_steps=10)
    result = run_in(tmp_path, "toolkit", "train")
    assert result.returncode == 0 and "Traceback" not in result.stderr, result.stderr[-3000:]
    report = json.loads((tmp_path / "reports/train.json").read_text())
    assert report["optimizer_steps"] == 2 and [h["step"] for h in report["loss_history"]] == [1, 2]
    assert report["first_loss"] == report["loss_history"][0]["loss"] and report["final_loss"] is not None
    assert f"loss {report['first_loss']:.3f} -> {report['final_loss']:.3f}" in result.stdout


def test_the_adapter_names_its_base_so_it_loads_anywhere(tmp_path, tiny_base, monkeypatch):
    """Issue #15: adapter_config.json said `artifacts/base` (or a cache folder), so AutoPeftModel failed
    anywhere else and `publish` uploaded it so."""
    from peft import AutoPeftModelForCausalLM

    from toolkit.files import sha256_path
    from toolkit.reports import BaseModelReport
    from toolkit.train.adapters import base_reference

    make_project(tmp_path, tiny_base, sft_rows(8), epochs=1)
    run_in(tmp_path, "toolkit", "train", check=True)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "artifacts/adapter", elsewhere)
    config = json.loads((elsewhere / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str(tiny_base)           # the user's own folder, as written
    monkeypatch.chdir(tmp_path.parent)
    assert AutoPeftModelForCausalLM.from_pretrained(elsewhere).peft_config["default"].r == 4

    def report(source, model, path):
        return BaseModelReport(params={}, inputs={}, outputs={}, model=model, source=source, model_path=str(path),
                               architecture="LlamaForCausalLM", parameters=1, vocab_size=1, context_length=1,
                               chat_template_sha256=None)
    snapshot = tmp_path / "hub/models--org--m/snapshots/0123abcd"
    assert base_reference(report("hub", "org/m", snapshot), "org/m") == ("org/m", "0123abcd")
    name, revision = base_reference(report("builtin", "toolkit-builtin-tiny-llama", tiny_base), "builtin")
    assert name == f"toolkit-builtin-tiny-llama@sha256:{sha256_path(tiny_base)}" and revision is None
