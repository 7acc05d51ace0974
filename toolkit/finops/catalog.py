"""The price catalog: GPU and API prices with their source and date, validated on load.

The toolkit ships `toolkit/finops/prices.yaml`; a project's own catalog (params.yaml
`finops.catalog`) states its own date and currency and is merged over it entry by entry (a GPU, an
API model, a technique's MFU range, a model shape), so a project changes one price without copying
the rest. A project catalog in another currency is used alone: currencies are never mixed. A negative price, a
missing currency or date, or an unknown key stops with exit 2, naming the file, line and key.
"""

from __future__ import annotations

import datetime as dt
import statistics
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from toolkit.config import validation_error, yaml_line
from toolkit.errors import ConfigError
from toolkit.files import parse_yaml

SHIPPED_CATALOG = Path(__file__).with_name("prices.yaml")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Price(_Strict):
    provider: str = Field(min_length=1)
    tier: Literal["on_demand", "spot"]
    per_hour: float = Field(gt=0)
    source: str = Field(min_length=1)
    date: dt.date


class Gpu(_Strict):
    match: list[str] = []
    peak_tflops: float | None = Field(None, gt=0)
    memory_gb: float = Field(gt=0)
    memory_bandwidth_gbs: float | None = Field(None, gt=0)
    tdp_watts: float = Field(gt=0)
    spec_source: str = Field(min_length=1)
    prices: list[Price] = Field(min_length=1)

    def hourly(self, tier: str) -> list[Price]:
        prices = [p for p in self.prices if p.tier == tier]
        return prices or [p for p in self.prices if p.tier == "on_demand"]

    def typical_hourly(self, tier: str) -> float:
        """The median price of the tier across providers (spot falls back to on-demand)."""
        return statistics.median(p.per_hour for p in self.hourly(tier))


class ApiPrice(_Strict):
    input_per_mtok: float = Field(ge=0)
    output_per_mtok: float = Field(ge=0)
    source: str = Field(min_length=1)
    date: dt.date

    def per_request(self, input_tokens: float, output_tokens: float) -> float:
        return (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1e6


class Engineering(_Strict):
    per_hour: float = Field(ge=0)
    source: str = Field(min_length=1)
    date: dt.date


class MfuRange(_Strict):
    low: float = Field(gt=0, le=1)
    high: float = Field(gt=0, le=1)
    source: str = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> MfuRange:
        if self.low > self.high:
            raise ValueError("low must not exceed high")
        return self

    @property
    def point(self) -> float:
        return (self.low * self.high) ** 0.5  # geometric middle: the range is a ratio


class ModelShape(_Strict):
    parameters: float = Field(gt=0)
    hidden: int = Field(gt=0)
    layers: int = Field(gt=0)
    intermediate: int | None = Field(None, gt=0)
    heads: int | None = Field(None, gt=0)
    kv_heads: int | None = Field(None, gt=0)
    vocab: int = Field(gt=0)


class Catalog(_Strict):
    catalog_date: dt.date
    currency: str = Field(min_length=3, max_length=3)
    gpus: dict[str, Gpu]
    apis: dict[str, ApiPrice]
    engineering: Engineering
    mfu: dict[Literal["full", "lora", "qlora"], MfuRange]
    models: dict[str, ModelShape] = {}

    def gpu(self, name: str, where: str) -> Gpu:
        if name not in self.gpus:
            raise ConfigError(f"unknown GPU {name!r}; the catalog has {', '.join(self.gpus)}", file="params.yaml", key=where)
        return self.gpus[name]

    def api(self, name: str, where: str) -> ApiPrice:
        if name not in self.apis:
            raise ConfigError(f"unknown API model {name!r}; the catalog has {', '.join(self.apis)}",
                              file="params.yaml", key=where)
        return self.apis[name]

    def gpu_for_device(self, device: str) -> tuple[str, Gpu] | None:
        """The catalog GPU whose match pattern appears in a device description ("1x NVIDIA H100 ...")."""
        for name, gpu in self.gpus.items():
            if any(pattern.lower() in device.lower() for pattern in gpu.match):
                return name, gpu
        return None


def load_catalog(project_catalog: str | None = None) -> Catalog:
    raw = _read(SHIPPED_CATALOG)
    sources = [SHIPPED_CATALOG]
    if project_catalog:
        path = Path(project_catalog)
        if not path.is_file():
            raise ConfigError("price catalog not found", file="params.yaml", key="finops.catalog")
        overlay = _read(path)
        for required in ("catalog_date", "currency"):
            if required not in overlay:
                raise ConfigError("missing; a project catalog states its date and currency", file=str(path), line=1,
                                  key=required)
        if overlay["currency"] != raw.get("currency"):
            raw = {}  # prices in another currency are never mixed with the shipped ones: this catalog stands alone
        for key, value in overlay.items():
            if isinstance(value, dict) and isinstance(raw.get(key), dict) and key != "engineering":
                raw[key] = {**raw[key], **value}
            else:
                raw[key] = value
        sources.append(path)
    try:
        return Catalog.model_validate(raw)
    except ValidationError as exc:
        # The catalog is layered: name the overlay that set the first bad key (else the last file read).
        loc = [str(part) for part in exc.errors()[0]["loc"]]
        source = next((s for s in reversed(sources) if yaml_line(s.read_text(encoding="utf-8"), loc[:1])), sources[-1])
        raise validation_error(exc, str(source), source.read_text(encoding="utf-8")) from None


def _read(path: Path) -> dict:
    raw = parse_yaml(path, ConfigError)
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping (catalog_date, currency, gpus, apis, ...)", file=str(path), line=1)
    return raw

