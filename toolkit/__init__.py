"""Governance-first toolkit for releasing fine-tuned LLM adapters."""

__version__ = "0.1.0"
