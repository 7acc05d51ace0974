from pathlib import Path

import pytest
from click.testing import CliRunner

from toolkit.cli import cli
from toolkit.config import Params, load_params, yaml_line
from toolkit.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_repository_params_load_and_match_defaults_types():
    params = load_params(REPO / "params.yaml")
    assert isinstance(params, Params)
    assert params.base.model == "builtin"
    assert params.evaluate.canary.previous_adapter is None


def test_unknown_key_names_key_and_line(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 1\ntrain:\n  epochs: 2\n  learnin_rate: 0.1\n")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    message = str(err.value)
    assert f"{path}:4" in message and "train.learnin_rate" in message and "unknown key" in message
    assert "did you mean 'learning_rate'?" in message


def test_unknown_top_level_key_suggests_the_section(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("trian:\n  epochs: 2\n")
    with pytest.raises(ConfigError, match=r"params.yaml:1: trian: unknown key; did you mean 'train'\?"):
        load_params(path)


def test_wrong_type_names_key_line_and_expectation(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  lora:\n    r: sixteen\n")
    with pytest.raises(ConfigError) as err:
        load_params(path)
    message = str(err.value)
    assert f"{path}:3" in message and "train.lora.r" in message and "integer" in message and "sixteen" in message


def test_out_of_range_value(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("data:\n  heldout_fraction: 0.9\n")
    with pytest.raises(ConfigError, match=r"data.heldout_fraction.*less than 0.5"):
        load_params(path)


def test_suite_settings_in_params_are_refused_with_the_key(tmp_path):
    """What a tier measures moved to eval_suites/<tier>/suite.yaml; the old keys are errors, not ignored."""
    path = tmp_path / "params.yaml"
    path.write_text("evaluate:\n  heldout:\n    primary_metric: field_accuracy\n")
    with pytest.raises(ConfigError, match="evaluate.heldout.primary_metric: unknown key"):
        load_params(path)


def test_invalid_yaml_and_missing_file(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: [1,\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(path)
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "nope.yaml")


def test_yaml_line_finds_nested_keys():
    text = "a:\n  b:\n    c: 1\nlist:\n  - x\n  - y\n"
    assert yaml_line(text, ["a", "b", "c"]) == 3
    assert yaml_line(text, ["list", "1"]) == 6
    assert yaml_line(text, ["a", "missing"]) == 1


def test_cli_exits_2_on_bad_params_before_any_work(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: abc\n")
    result = CliRunner().invoke(cli, ["train", "--params", str(path)])
    assert result.exit_code == 2
    assert "seed" in result.output and "integer" in result.output
    assert not (tmp_path / "artifacts").exists()


def test_check_params_prints_resolved_values():
    result = CliRunner().invoke(cli, ["check-params", "--params", str(REPO / "params.yaml")])
    assert result.exit_code == 0, result.output
    assert "previous_adapter: null" in result.output


def test_code_defaults_equal_the_shipped_params_file():
    """A minimal params.yaml must get the same (tuned) embedded default as the shipped one."""
    shipped = load_params(REPO / "params.yaml")
    defaults = Params()
    for section in ("base", "data", "train", "evaluate", "gate", "release", "monitor"):
        assert getattr(shipped, section) == getattr(defaults, section), section
