"""Data: synthetic default dataset, canonical records, validation and splits."""
