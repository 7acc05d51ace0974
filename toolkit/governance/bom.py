"""The bundle's AI bill of materials: a CycloneDX 1.6 ML-BOM (`bom.cdx.json`).

Components: the base model, the adapter (with its `modelCard`), the training data and each
evaluation suite, with SHA-256 hashes, licences and the datasheet's provenance. Everything comes
from the bundle's own reports and files. cyclonedx-python-lib builds and serialises the BOM; it has
no `modelCard` object yet (11.x), so that object is added to the adapter component as the 1.6 JSON
schema defines it, and the whole document is checked with the library's strict JSON validator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toolkit import __version__
from toolkit.files import file_digests, sha256_file
from toolkit.registry.bundle import Bundle

ADAPTER_REF = "adapter"


def _read(bundle: Bundle, name: str) -> dict:
    return bundle.read_report(name) if bundle.report(name).is_file() else {}


def _file_properties(digests: dict[str, str], label: str):
    from cyclonedx.model import Property

    return [Property(name=f"toolkit:sha256:{label}/{name}", value=digest) for name, digest in digests.items()]


def build_bom(bundle: Bundle, version: str, model_name: str, base_files: dict[str, str],
              suites: dict[str, dict[str, str]]) -> dict:
    """The ML-BOM of a bundle as a JSON-ready dict, validated against CycloneDX 1.6."""
    from cyclonedx.contrib.license.factories import LicenseFactory
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6

    base, validate, train = _read(bundle, "base"), _read(bundle, "validate"), _read(bundle, "train")
    governance = _read(bundle, "card").get("params", {}).get("governance", {})
    datasheet = validate.get("datasheet") or {}
    licenses = LicenseFactory()

    def sha256(path: Path):
        return [HashType(alg=HashAlgorithm.SHA_256, content=sha256_file(path))]

    base_component = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref="base-model", name=base.get("model", "base"),
        version=base.get("revision") or None, description=f"{base.get('architecture')} base model "
        f"({base.get('parameters')} parameters, source: {base.get('source')})",
        properties=_file_properties(base_files, "base"))
    adapter_dir = bundle.adapter
    adapter = Component(
        type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref=ADAPTER_REF, name=model_name, version=version,
        description=f"{train.get('adapter_type', 'lora').upper()} adapter trained with {train.get('method', '?').upper()} "
                    f"on {base.get('model')}",
        hashes=sha256(bundle.adapter_weights),
        licenses=[licenses.make_from_string(governance["license"])] if governance.get("license") else [],
        properties=[*_file_properties(file_digests(adapter_dir), "adapter"),
                    Property(name="toolkit:training_objective", value=str(train.get("method"))),
                    Property(name="toolkit:loss_on", value=str(train.get("loss_on")))])
    data = Component(
        type=ComponentType.DATA, bom_ref="training-data", name=validate.get("data_file", "training data"),
        description=datasheet.get("description") or datasheet.get("name") or None,
        hashes=[HashType(alg=HashAlgorithm.SHA_256, content=validate["data_sha256"])] if validate.get("data_sha256") else [],
        licenses=[licenses.make_from_string(str(datasheet["license"]))] if datasheet.get("license") else [],
        properties=[Property(name=f"toolkit:datasheet:{key}", value=str(datasheet[key]))
                    for key in ("source", "collection_method", "legal_basis", "pii_handling", "date") if datasheet.get(key)])
    suite_components = [Component(type=ComponentType.DATA, bom_ref=f"suite-{name}", name=f"eval_suites/{name}",
                                  description=f"evaluation suite {name}", properties=_file_properties(digests, name))
                        for name, digests in sorted(suites.items())]
    bom = Bom(components=[base_component, adapter, data, *suite_components])
    bom.metadata.component = Component(type=ComponentType.APPLICATION, bom_ref="release", name=f"{model_name} release",
                                       version=version)
    bom.metadata.properties.add(Property(name="toolkit:version", value=__version__))
    bom.register_dependency(adapter, [base_component, data])
    bom.register_dependency(bom.metadata.component, [adapter])
    document = json.loads(JsonV1Dot6(bom).output_as_string())
    for component in document["components"]:
        if component.get("bom-ref") == ADAPTER_REF:
            component["modelCard"] = model_card(bundle, train, governance, datasheet)
    validate_bom(document)
    return document


def model_card(bundle: Bundle, train: dict, governance: dict, datasheet: dict) -> dict[str, Any]:
    """The CycloneDX 1.6 `modelCard`: parameters, the evaluation tiers' results, the governance fields."""
    metrics = []
    for report in sorted(bundle.reports.glob("eval_*.json")):
        tier = json.loads(report.read_text(encoding="utf-8"))
        if tier.get("skipped") or "metrics" not in tier:
            continue
        for name, m in tier["metrics"].items():
            metrics.append({"type": f"{name} (adapter)", "value": f"{m['adapter']:.4f}", "slice": tier.get("tier", "")})
            metrics.append({"type": f"{name} delta vs base", "value": f"{m['delta']:+.4f}", "slice": tier.get("tier", ""),
                            "confidenceInterval": {"lowerBound": f"{m['ci_low']:+.4f}", "upperBound": f"{m['ci_high']:+.4f}"}})
    considerations: dict[str, Any] = {}
    if governance.get("intended_use"):
        considerations["useCases"] = [governance["intended_use"]]
    if governance.get("out_of_scope_use"):
        considerations["technicalLimitations"] = [f"Out of scope: {governance['out_of_scope_use']}"]
    if governance.get("risk_category"):
        considerations["ethicalConsiderations"] = [{
            "name": f"EU AI Act risk category: {governance['risk_category']}. {governance.get('risk_reasoning', '')}".strip(),
            "mitigationStrategy": governance.get("human_oversight") or "not stated"}]
    card: dict[str, Any] = {
        "modelParameters": {
            # Every objective the toolkit trains learns from labelled data (answers, preferences, labels).
            "approach": {"type": "supervised"},
            "task": "text-generation",
            "architectureFamily": "transformer",
            "modelArchitecture": f"{train.get('adapter_type', 'lora')} adapter ({train.get('method')}) on {train.get('base_model')}",
            "datasets": [{"ref": "training-data"}],
        },
        "quantitativeAnalysis": {"performanceMetrics": metrics},
    }
    if considerations:
        card["considerations"] = considerations
    return card


def validate_bom(document: dict) -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(json.dumps(document))
    if error is not None:
        raise ValueError(f"the ML-BOM does not validate against CycloneDX 1.6: {error}")
