"""FinOps: the catalog and its errors, training estimates against hand-computed and published
figures, memory fit, inference break-even, payback and ROI."""

import json

import pytest
import yaml
from click.testing import CliRunner

from toolkit.cli import cli
from toolkit.errors import ConfigError
from toolkit.finops.catalog import SHIPPED_CATALOG, ApiPrice, load_catalog
from toolkit.finops.economics import DAYS_PER_MONTH, HOURS_PER_MONTH, break_even, economics, roi
from toolkit.finops.estimate import estimate_training, lora_parameters, memory_fit


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _estimate(catalog, model, technique, gpu, examples, tokens_per_example, epochs=1, batch=4, seq=512):
    return estimate_training(catalog, model=model, shape=catalog.models[model], technique=technique, gpu_name=gpu,
                             pricing="on_demand", tokens_per_epoch=examples * tokens_per_example, epochs=epochs,
                             batch_size=batch, seq_len=seq)


def test_shipped_catalog_is_dated_sourced_and_priced(catalog):
    assert catalog.currency == "USD" and catalog.catalog_date.year >= 2026
    for name, gpu in catalog.gpus.items():
        assert gpu.prices and all(p.per_hour > 0 and p.source and p.date for p in gpu.prices), name
    for name in ("H100-80GB", "H200-141GB", "B200-180GB", "A100-40GB", "A100-80GB", "A10G-24GB", "RTX-4090-24GB"):
        assert name in catalog.gpus
    assert {"gpt-4o", "claude-sonnet-4-5"} <= set(catalog.apis)


def test_training_estimate_matches_hand_computation(catalog):
    est = _estimate(catalog, "llama-3.1-8b", "lora", "H100-80GB", examples=1000, tokens_per_example=1000, epochs=2)
    flops = 6 * 8.03e9 * 2_000_000
    assert est.flops == pytest.approx(flops)
    mfu = catalog.mfu["lora"]
    assert est.gpu_hours == pytest.approx(flops / (989e12 * (mfu.low * mfu.high) ** 0.5) / 3600)
    assert est.gpu_hours_low == pytest.approx(flops / (989e12 * mfu.high) / 3600)
    assert est.gpu_hours_high == pytest.approx(flops / (989e12 * mfu.low) / 3600)
    prices = [p.per_hour for p in catalog.gpus["H100-80GB"].prices if p.tier == "on_demand"]
    assert est.cost_low == pytest.approx(est.gpu_hours_low * min(prices))
    assert est.cost_high == pytest.approx(est.gpu_hours_high * max(prices))
    assert est.energy_kwh == pytest.approx(est.gpu_hours * 700 / 1000)


# Published figures to land near (issue #9). The token counts are ours, stated: "10k examples" of
# instruction data at about 512 tokens each; "5k examples x 3 epochs" of chat SFT at about 1,024.
ANCHORS = [
    ("mistral-7b", "qlora", "A100-40GB", 10_000, 512, 1, 1.0, True),
    ("mistral-7b", "qlora", "A10G-24GB", 10_000, 512, 1, 2.0, False),  # lands at 2.3x: see docs/finops.md
    ("llama-3.1-70b", "qlora", "A100-40GB", 10_000, 512, 1, 8.0, True),
    ("llama-3.1-8b", "lora", "A100-80GB", 5_000, 1024, 3, 3.5, True),
]


@pytest.mark.parametrize("model, technique, gpu, examples, tokens, epochs, published_hours, in_range", ANCHORS)
def test_estimates_land_near_published_figures(catalog, model, technique, gpu, examples, tokens, epochs,
                                               published_hours, in_range):
    est = _estimate(catalog, model, technique, gpu, examples, tokens, epochs)
    assert published_hours / 3 <= est.gpu_hours <= published_hours * 3
    if in_range:
        assert est.gpu_hours_low <= published_hours <= est.gpu_hours_high


def test_memory_fit(catalog):
    small = _estimate(catalog, "mistral-7b", "qlora", "A10G-24GB", 10_000, 512)
    assert small.memory.verdict == "fits" and 3 < small.memory.weights_gb < 6
    big = _estimate(catalog, "llama-3.1-70b", "qlora", "A100-40GB", 10_000, 512)
    assert big.memory.verdict == "does not fit" and big.memory.weights_gb > 38  # 4-bit 70B plus 16-bit embeddings
    assert _estimate(catalog, "llama-3.1-70b", "qlora", "H200-141GB", 10_000, 512).memory.verdict == "fits"
    full = memory_fit(catalog.models["llama-3.1-8b"], "full", 24, 1, 512, 16)
    assert full.verdict == "does not fit" and full.adapter_and_optimizer_gb == pytest.approx(8.03e9 * 14 / 1e9, rel=0.01)


def test_lora_parameter_count_matches_peft_on_a_llama_shape(catalog):
    shape = catalog.models["llama-3.1-8b"]
    # q, o: 4096->4096; k, v: 4096->1024; gate, up: 4096->14336; down: 14336->4096; r=16, 32 layers.
    per_layer = 2 * (4096 + 4096) + 2 * (4096 + 1024) + 3 * (4096 + 14336)
    assert lora_parameters(shape, 16) == 16 * per_layer * 32 == 41_943_040


API = ApiPrice(input_per_mtok=2.0, output_per_mtok=8.0, source="test", date="2026-01-01")


def test_break_even_payback_and_roi_by_hand():
    # $1/h always on = $730/month; the API costs 500 x 2/1e6 + 0 = $0.001 per request.
    per_request = API.per_request(500, 0)
    assert per_request == pytest.approx(0.001)
    assert break_even(per_request, 1.0, per_instance_per_day=1e9) == pytest.approx(730 / (0.001 * DAYS_PER_MONTH))
    assert break_even(per_request, 1.0, per_instance_per_day=1000) is None  # a full instance still dearer
    result = roi(1000.0, 250.0, 12, "api")
    assert result.payback_months == pytest.approx(4.0) and result.roi == pytest.approx(2.0) and result.positive
    never = roi(1000.0, -5.0, 12, "api")
    assert never.payback_months is None and not never.positive


def test_economics_at_a_stated_volume():
    # 1,000 tokens/s at 50 % = 43.2M tokens/day per instance; 100 tokens per request = 432,000 requests/day.
    inf = economics(device="X", pricing="on_demand", price_per_hour=2.0, tokens_per_second=1000, throughput_source="t",
                    utilisation=0.5, requests_per_day=1_000_000, input_tokens=80, output_tokens=20, apis={"api": API})
    assert inf.instances == 3 and inf.self_hosted_monthly == pytest.approx(3 * 2.0 * HOURS_PER_MONTH)
    assert inf.self_hosted_cost_per_mtok == pytest.approx(2.0 / (1000 * 0.5 * 3600) * 1e6)
    api = inf.apis[0]
    assert api.cost_per_request == pytest.approx((80 * 2 + 20 * 8) / 1e6)
    assert api.monthly_cost == pytest.approx(api.cost_per_request * 1_000_000 * DAYS_PER_MONTH)
    assert api.monthly_saving == pytest.approx(api.monthly_cost - inf.self_hosted_monthly)
    assert api.break_even_requests_per_day == pytest.approx(2.0 * HOURS_PER_MONTH / (api.cost_per_request * DAYS_PER_MONTH))


@pytest.mark.parametrize("edit, key", [
    (lambda c: c["gpus"]["H100-80GB"]["prices"][0].update(per_hour=-1.0), "gpus.H100-80GB.prices.0.per_hour"),
    (lambda c: c.pop("currency"), "currency"),
    (lambda c: c["apis"]["gpt-4o"].pop("date"), "apis.gpt-4o.date"),
    (lambda c: c["gpus"]["A10G-24GB"]["prices"][0].pop("source"), "gpus.A10G-24GB.prices.0.source"),
    (lambda c: c["mfu"]["lora"].update(low=0.9, high=0.1), "mfu.lora"),
])
def test_catalog_errors_name_file_line_and_key(tmp_path, edit, key):
    raw = yaml.safe_load(SHIPPED_CATALOG.read_text())
    edit(raw)
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(ConfigError) as error:
        load_catalog(str(path))
    assert f"{path}" in str(error.value) and key in str(error.value) and error.value.exit_code == 2


def test_a_project_catalog_overrides_one_entry(tmp_path):
    path = tmp_path / "prices.yaml"
    overlay = {"catalog_date": "2026-11-20", "currency": "USD",
               "apis": {"gpt-4o": {"input_per_mtok": 1.0, "output_per_mtok": 4.0, "source": "our contract", "date": "2026-11-01"}}}
    path.write_text(yaml.safe_dump(overlay))
    catalog = load_catalog(str(path))
    assert catalog.apis["gpt-4o"].input_per_mtok == 1.0 and catalog.apis["gpt-4o"].source == "our contract"
    assert "claude-sonnet-4-5" in catalog.apis and "H100-80GB" in catalog.gpus  # the rest is kept
    assert str(catalog.catalog_date) == "2026-11-20"
    path.write_text(yaml.safe_dump({**overlay, "currency": "EUR"}))  # another currency: it must stand alone
    with pytest.raises(ConfigError, match="gpus"):
        load_catalog(str(path))
    path.write_text(yaml.safe_dump({"apis": overlay["apis"]}))
    with pytest.raises(ConfigError, match="prices.yaml:1: catalog_date: missing"):
        load_catalog(str(path))


def test_cost_estimate_cli_what_if_and_bad_gpu(in_tmp):
    (in_tmp / "params.yaml").write_text("seed: 1\n")
    result = CliRunner().invoke(cli, ["cost", "estimate", "--model", "llama-3.1-8b", "--technique", "qlora",
                                      "--gpu", "H100-80GB", "--examples", "10000", "--tokens-per-example", "512"])
    assert result.exit_code == 0, result.output
    assert "qlora on H100-80GB" in result.output and "GPU-hours" in result.output and "fits" in result.output
    bad = CliRunner().invoke(cli, ["cost", "estimate", "--model", "llama-3.1-8b", "--gpu", "TPU-v9",
                                   "--examples", "10", "--tokens-per-example", "10"])
    assert bad.exit_code == 2 and "unknown GPU 'TPU-v9'" in bad.output
    alone = CliRunner().invoke(cli, ["cost", "estimate", "--model", "llama-3.1-8b", "--examples", "10"])
    assert alone.exit_code == 2 and "--examples and --tokens-per-example go together" in alone.output
    written = json.loads((in_tmp / "reports/cost_estimate.json").read_text())
    assert written["technique"] == "qlora" and written["gpu"] == "H100-80GB"   # the what-if run's, not overwritten
