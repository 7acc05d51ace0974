"""toolkit.finops.stage's parts on their own (the e2e tests run the whole cost stage on a real run):
device time priced per GPU, the serving throughput's source, and the what-if estimate."""

import json
from types import SimpleNamespace

import pytest

from toolkit.config import Params
from toolkit.errors import ConfigError
from toolkit.finops import stage
from toolkit.finops.catalog import load_catalog


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(None)


def test_device_time_is_priced_per_gpu_and_an_unknown_device_is_not_priced(catalog):
    one = stage._device_cost(catalog, "1x NVIDIA H100 80GB HBM3", 2.0)
    eight = stage._device_cost(catalog, "8x NVIDIA H100 80GB HBM3", 2.0)
    h100 = catalog.gpus["H100-80GB"]
    assert one["catalog_entry"] == "H100-80GB" and one["price_per_hour"] == h100.typical_hourly("on_demand")
    assert eight["device_hours"] == 16.0 and eight["cost"] == pytest.approx(8 * one["cost"])
    assert eight["energy_kwh"] == pytest.approx(16.0 * h100.tdp_watts / 1000)
    spot = stage._device_cost(catalog, "1x NVIDIA H100 80GB HBM3", 2.0, tier="spot")
    assert spot["cost"] < one["cost"]
    unknown = stage._device_cost(catalog, "1x Imaginary TPU", 1.0)
    assert unknown["cost"] is None and unknown["energy_kwh"] is None and "not in the price catalog" in unknown["note"]


def _heldout(**generation):
    return SimpleNamespace(generation={"device": "cpu", "batch_size": 16, **generation})


def test_serving_throughput_is_the_measured_one_unless_params_assume_one(catalog):
    measured = stage._inference(Params(), catalog, _heldout(adapter_tokens_per_s=250.0))
    assert measured.tokens_per_second == 250.0 and measured.throughput_source.startswith("measured: held-out tier")
    assert measured.device == "CPU-2vCPU"            # the device the held-out tier ran on
    assumed = stage._inference(Params.model_validate({"finops": {"inference": {"tokens_per_second": 900,
                                                                                "device": "H100-80GB"}}}),
                               catalog, _heldout(adapter_tokens_per_s=250.0))
    assert assumed.tokens_per_second == 900 and assumed.throughput_source.startswith("assumed")
    assert assumed.device == "H100-80GB" and [a.model for a in assumed.apis] == Params().finops.inference.compare_with


def test_no_throughput_at_all_names_the_key_to_set(catalog):
    with pytest.raises(ConfigError, match="finops.inference.tokens_per_second"):
        stage._inference(Params(), catalog, _heldout())


def test_the_what_if_estimate_takes_a_catalog_shape_and_a_data_size(in_tmp):
    params = Params.model_validate({"train": {"epochs": 2}})
    estimate = stage.run_what_if_estimate(params, gpu="H100-80GB", technique="qlora", model="llama-3.1-8b",
                                          examples=10_000, tokens_per_example=300)
    assert (estimate.gpu, estimate.technique, estimate.model) == ("H100-80GB", "qlora", "llama-3.1-8b")
    assert estimate.tokens_per_epoch == 3_000_000 and estimate.tokens == 6_000_000
    assert estimate.flops == pytest.approx(6 * 8.03e9 * 6_000_000)
    written = json.loads(stage.ESTIMATE_REPORT.read_text())
    assert written["gpu_hours"] == estimate.gpu_hours and written["memory"]["verdict"] == estimate.memory.verdict
    bigger = stage.run_what_if_estimate(params, gpu="H100-80GB", technique="qlora", model="llama-3.1-8b", epochs=4,
                                        examples=10_000, tokens_per_example=300)
    assert bigger.gpu_hours == pytest.approx(2 * estimate.gpu_hours)


def test_the_what_if_estimate_refuses_half_a_data_size_and_an_unknown_shape(in_tmp):
    with pytest.raises(ConfigError, match="--examples and --tokens-per-example go together"):
        stage.run_what_if_estimate(Params(), examples=100)
    with pytest.raises(ConfigError, match="finops.training.model: unknown model shape 'gpt-9'"):
        stage.run_what_if_estimate(Params(), model="gpt-9", examples=100, tokens_per_example=10)


def test_a_multi_gpu_run_is_billed_once_per_gpu_as_the_train_report_counts_it(catalog):
    """The train report's GPU-hours and the cost report's device-hours use one rule (toolkit.usage):
    two H100s for an hour (half of it before a resume) are two GPU-hours, not four."""
    from toolkit.usage import device_hours

    train = SimpleNamespace(device="2x NVIDIA H100 80GB HBM3 (79 GiB)", wall_time_s=1800.0, previous_wall_time_s=1800.0,
                            mfu=0.31, tokens_seen=1_000_000, tokens_per_s=277.8, seeds=None)
    cost = stage._training_cost(catalog, train)
    assert cost.hours == 1.0 and cost.device_hours == 2.0
    assert cost.device_hours == device_hours(train.wall_time_s + train.previous_wall_time_s, train.device)
    assert cost.cost == pytest.approx(2.0 * catalog.gpus["H100-80GB"].typical_hourly("on_demand"))
    assert cost.mfu == 0.31
    assert stage._training_cost(catalog, SimpleNamespace(**{**vars(train), "device": "cpu"})).device_hours == 1.0
    # Three training seeds, one released: every seed's training is paid for.
    seeds = SimpleNamespace(count=3, chosen=7, total_wall_time_s=3 * 3600.0)
    three = stage._training_cost(catalog, SimpleNamespace(**{**vars(train), "seeds": seeds}))
    assert three.hours == 3.0 and three.device_hours == 6.0 and "3 training runs (train.seeds); seed 7 released" in three.note
