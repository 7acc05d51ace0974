"""The import rule of docs/architecture.md: a package imports only the core and lower layers."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# Higher number = higher layer. Modules directly in toolkit/ and toolkit/scoring/ are the core (layer 0).
LAYERS = {"scoring": 0, "data": 1, "finops": 1, "registry": 1, "train": 2, "evals": 3, "governance": 4, "monitoring": 4, "cli": 5}


def _layer(module: str) -> tuple[str, int]:
    """(package name, layer) of a dotted toolkit module."""
    parts = module.split(".")
    name = parts[1] if len(parts) > 1 else "toolkit"
    return name, LAYERS.get(name, 0)


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("toolkit"):
            yield node.lineno, node.module
        elif isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names if alias.name.startswith("toolkit"))


def test_no_package_imports_one_beside_or_above_it():
    wrong = []
    for path in sorted((REPO / "toolkit").rglob("*.py")):
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        package, layer = _layer(module)
        for line, imported in _imports(path):
            other, other_layer = _layer(imported)
            if other != package and other_layer >= layer and other_layer > 0:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {package} (layer {layer}) imports {imported} "
                             f"({other}, layer {other_layer})")
    assert not wrong, "imports against docs/architecture.md:\n" + "\n".join(wrong)


def test_every_package_has_a_layer():
    packages = {p.name for p in (REPO / "toolkit").iterdir() if (p / "__init__.py").is_file()}
    assert packages <= set(LAYERS), packages - set(LAYERS)
