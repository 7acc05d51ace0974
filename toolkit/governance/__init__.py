"""Governance: policies and the gate, the model card."""
