"""Scoring: the metric registry and the rewards built from it. Below every stage, so that the data
stage (checking references), training (GRPO rewards) and evaluation (the suites) share one
implementation."""
