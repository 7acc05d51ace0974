"""What a release measured, for `toolkit monitor` to compare production with: the reference-free
metrics of its held-out and canary suites with their release values, its training split's input
lengths, languages and answer labels, its PII and injection shares, and its cost report; plus the
data stage's detectors, to apply the same checks to production inputs."""

from __future__ import annotations

import json
from collections import Counter

from toolkit.config import Params
from toolkit.errors import ConfigError
from toolkit.files import read_jsonl, sha256_file
from toolkit.layout import SPLIT_FILES
from toolkit.monitoring.language import language_of
from toolkit.monitoring.logs import user_text
from toolkit.registry.bundle import Bundle


class ReleaseReference:
    """What the release measured: reference-free suite metrics per tier, the training data's inputs,
    and the cost report's serving estimate."""

    def __init__(self, bundle: Bundle, params: Params):
        from toolkit.data import injection
        from toolkit.data.pii import PiiScanner

        self.warnings: list[str] = []
        self.metrics = self._metrics(bundle)
        validate = bundle.read_report("validate")
        out = max(1, validate.get("records_out", 0))
        self.pii = (validate.get("pii", {}).get("records_with_pii", 0), out)
        self.injection = (validate.get("injection", {}).get("flagged_records", 0), out)
        self.label_field = params.monitor.label_field
        self.training_words, self.training_languages, self.training_labels = self._training_inputs(validate)
        self.cost = bundle.read_report("cost") if bundle.report("cost").is_file() else {}
        self.scanner = PiiScanner.of(params.data.pii)
        self.patterns = injection.load_patterns()

    def _metrics(self, bundle: Bundle) -> dict[str, tuple]:
        """name -> (SuiteMetric, release value, release items) for every metric that needs no reference."""
        from toolkit.evals.suites import load_suite

        found = {}
        for tier in ("heldout", "canary"):
            if not bundle.report(f"eval_{tier}").is_file():
                continue
            tier_report = bundle.read_report(f"eval_{tier}")
            try:
                suite = load_suite(tier_report.get("suite", tier))
            except ConfigError as exc:
                self.warnings.append(f"the {tier} suite cannot be read, its metrics are not monitored: {exc}")
                continue
            for name, spec in suite.metrics.items():
                recorded = tier_report.get("metrics", {}).get(name)
                if spec.metric.needs_reference or recorded is None or not usable(spec):
                    continue
                found.setdefault(name, (spec, recorded["adapter"], tier_report["n_items"], tier))
        if not found:
            self.warnings.append("the release's suites have no metric that needs no reference: nothing to score")
        return found

    def _training_inputs(self, validate: dict) -> tuple[Counter, Counter, Counter]:
        """User-text lengths, languages and answer labels of the release's training split, when the file
        here is the one it validated."""
        path = SPLIT_FILES["train"]
        recorded = validate.get("outputs", {}).get(path.as_posix())
        if not path.is_file() or recorded != sha256_file(path):
            self.warnings.append(f"{path} is not the training split of this release (missing or changed): input "
                                 "length, language and label drift are not tested")
            return Counter(), Counter(), Counter()
        lengths, languages, labels = Counter(), Counter(), Counter()
        for row in read_jsonl(path):
            text = user_text(row.get("messages") or row.get("prompt") or [])
            lengths[words(text)] += 1
            languages[language_of(text)] += 1
            if self.label_field:
                label = answer_label(training_answer(row), self.label_field)
                if label is not None:
                    labels[label] += 1
        return lengths, languages, labels


def training_answer(row: dict) -> str:
    """The answer a training record teaches: its last assistant turn, in `messages` or in a
    conversational `completion`, or a plain-text completion."""
    completion = row.get("completion")
    turns = (row.get("messages") or []) + (completion if isinstance(completion, list) else [])
    answers = [m.get("content") for m in turns if isinstance(m, dict) and m.get("role") == "assistant"]
    answer = answers[-1] if answers else completion
    return answer if isinstance(answer, str) else ""


def answer_label(answer: str, key: str) -> str | None:
    """The value of `key` in a JSON answer; None when the answer is not JSON or lacks it (the suite
    metrics judge such answers; the label mix is of the answers that carry one)."""
    try:
        value = json.loads(answer)
    except (json.JSONDecodeError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get(key), (str, int, float, bool)):
        return str(value[key])
    return None


def usable(spec) -> bool:
    """A metric whose suite-level arguments are complete (per-item arguments cannot apply to logs)."""
    try:
        spec.metric("", None, **spec.args)
        return True
    except (TypeError, ValueError, KeyError):
        return False


def words(text: str) -> int:
    return len(text.split())
