"""Personal-data detectors on a labelled set (issue #15): realistic data made with Faker in four
locales for recall, hard negatives (numbers in maths, code, dates, versions, ids; words and public
figures that look like names) for precision. docs/benchmarks.md has the figures."""

import pytest

from pii_eval_set import HARD_NEGATIVES, labelled_texts, score
from toolkit.data.pii import PiiScanner, masked_context

REGIONS = ("DE", "FR", "GB", "US")


@pytest.fixture(scope="module")
def scanner():
    from conftest import REPO

    return PiiScanner(phone_regions=REGIONS, first_names_file=REPO / "policies/pii/first_names.txt")


@pytest.mark.parametrize("seed", [20261202, 7])
def test_precision_and_recall_meet_the_targets(scanner, seed):
    result = score(scanner.find, labelled_texts(seed=seed, per_kind=80))
    for kind in ("email", "phone", "iban", "credit_card", "ip_address"):
        assert result[kind]["recall"] >= 0.95 and result[kind]["precision"] >= 0.9, (kind, result[kind])
    assert result["name"]["precision"] >= 0.9 and result["name"]["recall"] >= 0.9, result["name"]


@pytest.mark.parametrize("text", HARD_NEGATIVES)
def test_numbers_that_are_not_personal_data_are_left_alone(scanner, text):
    """Decimals, arithmetic, timestamps, URL ids, versions, order ids: no number finding at all."""
    assert [f for f in scanner.find(text) if f.kind != "name"] == [], text


def test_sentence_words_after_a_greeting_are_not_names(scanner):
    for text in ("Hey! Can you pass that to me?", "Hello World is the first program everyone writes.",
                 "Thanks, Will do that tomorrow.", "Hi, My printer stopped again."):
        assert not scanner.find(text), text
    (name,) = scanner.find("Thanks. Regards, Anna Schmidt")          # the cue after a cue still counts
    assert name.value == "Anna Schmidt" and name.score == 0.9


def test_context_and_scores_let_a_reviewer_judge_without_seeing_the_data(scanner):
    text = "Hi, call me on +49 30 901820 or write to anna.schmidt@example.de. Order id 4915763208."
    findings = list(scanner.find(text))
    assert [f.kind for f in findings] == ["phone", "email"] and all(0.5 <= f.score <= 1 for f in findings)
    for finding in findings:
        context = masked_context(text, findings, finding)
        assert "901820" not in context and "anna.schmidt" not in context and f"[{finding.kind}: " in context
    weak = PiiScanner(phone_regions=REGIONS, min_score={"phone": 1.01}).find(text)
    assert [f.kind for f in weak] == ["email"]                       # the threshold is a setting
