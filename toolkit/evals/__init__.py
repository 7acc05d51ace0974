"""Evaluation: generation, metrics, paired statistics and the evaluation tiers."""
