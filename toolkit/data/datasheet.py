"""The datasheet that sits next to the training data: where it came from and on what terms.

The model card, the EU AI Act documentation and the BOM quote it, so the validate stage checks it
against a schema: every required field present, non-empty and of the right type (exit 2 naming each
key and line otherwise). Whether a run may go on without any datasheet (`data.datasheet: null`) is
the policy's decision (rule `datasheet_present`: a warning by default, blocking in production).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, StringConstraints, ValidationError, field_validator

from toolkit.config import validation_error
from toolkit.errors import DataError
from toolkit.files import parse_yaml

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
LANGUAGE_CODE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")   # BCP 47 as people write it: en, de-AT, zh-Hant
DATE_TEXT = re.compile(r"^\d{4}(\D.*)?$")                          # "2026-11", "2024-01 to 2024-06"


class Datasheet(BaseModel):
    """Gebru et al.'s questions that the documentation quotes. Further keys are kept as written."""

    model_config = ConfigDict(extra="allow", strict=True)

    name: Text
    description: Text | None = None
    source: Text
    license: Text
    collection_method: Text
    legal_basis: Text
    pii_handling: Text
    languages: list[str]
    date: dt.date | str
    known_limitations: Text | None = None

    @field_validator("languages", mode="plain")
    @classmethod
    def _language_codes(cls, value: Any) -> list[str]:
        if not isinstance(value, list) or not value:
            raise ValueError("expected a non-empty list of language codes, e.g. [en] or [en, de-AT]")
        wrong = [code for code in value if not (isinstance(code, str) and LANGUAGE_CODE.match(code))]
        if wrong:
            raise ValueError(f"not a language code: {', '.join(map(repr, wrong))}; write codes such as en, de-AT")
        return value

    @field_validator("date", mode="plain")
    @classmethod
    def _date(cls, value: Any) -> dt.date | str:
        if isinstance(value, dt.date) or (isinstance(value, str) and DATE_TEXT.match(value.strip())):
            return value
        raise ValueError("expected a date (2026-11-23) or text that starts with the year (2024-01 to 2024-06)")


def load_datasheet(path: str | Path) -> dict[str, Any]:
    """The datasheet's fields as written; a missing file, a field missing, empty or of the wrong type
    is a DataError listing every problem with its line."""
    path = Path(path)
    if not path.is_file():
        raise DataError("datasheet not found; every dataset needs one (see docs/data.md for the fields)", file=str(path))
    sheet = parse_yaml(path, DataError)
    if not isinstance(sheet, dict):
        raise DataError("expected a mapping of datasheet fields (see docs/data.md)", file=str(path), line=1)
    try:
        Datasheet.model_validate(sheet)
    except ValidationError as exc:
        raise validation_error(exc, str(path), path.read_text(encoding="utf-8"), error_type=DataError) from None
    return sheet
