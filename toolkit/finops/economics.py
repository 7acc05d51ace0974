"""Inference economics: self-hosted cost against API prices, break-even, payback and ROI.

Self-hosting means always-on instances: each costs its hourly price x 730 hours a month whatever
the traffic, and serves `tokens_per_second x utilisation` tokens (prompt + completion). An API costs
its per-token prices times the traffic. So self-hosting wins above a break-even volume, and the
one-off cost of the fine-tune (training, evaluation, engineering time) is paid back by the monthly
saving at the project's stated volume.
"""

from __future__ import annotations

import math

from toolkit.finops.catalog import ApiPrice
from toolkit.reports import ApiComparison, InferenceEconomics, Roi

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24


def capacity_requests_per_day(tokens_per_second: float, utilisation: float, tokens_per_request: float) -> float:
    return tokens_per_second * utilisation * 86400 / tokens_per_request


def self_hosted_monthly(requests_per_day: float, price_per_hour: float, per_instance_per_day: float) -> tuple[int, float]:
    instances = max(1, math.ceil(requests_per_day / per_instance_per_day))
    return instances, instances * price_per_hour * HOURS_PER_MONTH


def break_even(api_per_request: float, price_per_hour: float, per_instance_per_day: float) -> float | None:
    """Smallest daily request volume at which self-hosting is no dearer than the API."""
    if api_per_request <= 0:
        return None
    instance_month = price_per_hour * HOURS_PER_MONTH
    # With k instances (volume in ((k-1)c, kc]), the API catches up at k x instance_month / (api x days).
    if api_per_request * per_instance_per_day * DAYS_PER_MONTH < instance_month:
        return None  # even a fully used instance costs more per request than the API
    return instance_month / (api_per_request * DAYS_PER_MONTH)


def economics(*, device: str, pricing: str, price_per_hour: float, tokens_per_second: float, throughput_source: str,
              utilisation: float, requests_per_day: float, input_tokens: float, output_tokens: float,
              apis: dict[str, ApiPrice]) -> InferenceEconomics:
    tokens_per_request = input_tokens + output_tokens
    per_instance = capacity_requests_per_day(tokens_per_second, utilisation, tokens_per_request)
    instances, monthly = self_hosted_monthly(requests_per_day, price_per_hour, per_instance)
    monthly_requests = requests_per_day * DAYS_PER_MONTH
    comparisons = []
    for name, api in apis.items():
        per_request = api.per_request(input_tokens, output_tokens)
        api_monthly = per_request * monthly_requests
        comparisons.append(ApiComparison(
            model=name, cost_per_request=per_request, cost_per_mtok=per_request / tokens_per_request * 1e6,
            monthly_cost=api_monthly, monthly_saving=api_monthly - monthly,
            break_even_requests_per_day=break_even(per_request, price_per_hour, per_instance)))
    return InferenceEconomics(
        device=device, pricing=pricing, price_per_hour=price_per_hour, tokens_per_second=tokens_per_second,
        throughput_source=throughput_source, utilisation=utilisation, requests_per_day=requests_per_day,
        input_tokens_per_request=input_tokens, output_tokens_per_request=output_tokens,
        monthly_tokens=monthly_requests * tokens_per_request, instances=instances, self_hosted_monthly=monthly,
        self_hosted_cost_per_mtok=price_per_hour / (tokens_per_second * utilisation * 3600) * 1e6,
        self_hosted_cost_per_request=monthly / monthly_requests if monthly_requests else None,
        apis=comparisons)


def roi(one_off: float, monthly_saving: float, horizon_months: int, compared_with: str) -> Roi:
    net = monthly_saving * horizon_months - one_off
    return Roi(one_off_cost=one_off, compared_with=compared_with, monthly_saving=monthly_saving,
               payback_months=one_off / monthly_saving if monthly_saving > 0 else None,
               horizon_months=horizon_months, net_benefit=net,
               roi=net / one_off if one_off > 0 else None, positive=net > 0)
