"""The datasheet that must sit next to the training data: where it came from and on what terms.

The model card and the EU AI Act documentation quote it; the validate stage refuses data whose
datasheet lacks a required field.
"""

from __future__ import annotations

from pathlib import Path

from toolkit.errors import DataError
from toolkit.files import parse_yaml

REQUIRED_FIELDS = ("name", "source", "license", "collection_method", "legal_basis", "pii_handling", "languages", "date")


def load_datasheet(path: str | Path) -> tuple[dict, list[str]]:
    """(datasheet, missing required fields). A file that is absent or not a mapping is an error."""
    path = Path(path)
    if not path.is_file():
        raise DataError("datasheet not found; every dataset needs one (see docs/data.md for the fields)", file=str(path))
    sheet = parse_yaml(path, DataError)
    if not isinstance(sheet, dict):
        raise DataError("expected a mapping of datasheet fields", file=str(path), line=1)
    missing = [name for name in REQUIRED_FIELDS if sheet.get(name) in (None, "", [])]
    return sheet, missing
