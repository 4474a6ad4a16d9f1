"""Seams of the scoring core: code outside the runtime package uses only its public names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OUTSIDE = ("training", "benchmarks", "corpus")


def _private_uses(path: Path) -> list[str]:
    """Imports of private detector names and reach-ins to private attributes (``x._name`` on anything but self/cls)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "detector" and any(p.startswith("_") for p in alias.name.split(".")):
                    found.append(f"{path.name}:{node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "detector":
            parts = node.module.split(".")
            names = [a.name for a in node.names]
            if any(p.startswith("_") for p in parts) or any(n.startswith("_") for n in names):
                found.append(f"{path.name}:{node.lineno}: from {node.module} import {', '.join(names)}")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
            if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
    return found


@pytest.mark.parametrize("folder", OUTSIDE)
def test_no_private_runtime_names_outside_the_package(folder: str) -> None:
    found = [u for p in sorted((REPO / folder).rglob("*.py")) for u in _private_uses(p)]
    assert found == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from detector._detector import Detector", 1),
        ("import detector._text", 1),
        ("from detector import _errors", 1),
        ("det._model.zero_()", 1),
        ("from detector import Detector\nfrom detector.evaluation import evaluate\nself._x = 1", 0),
    ],
    ids=["from-private-module", "import-private-module", "private-name", "private-attribute", "public-only"],
)
def test_the_check_catches_private_uses(tmp_path: Path, source: str, expected: int) -> None:
    p = tmp_path / "x.py"
    p.write_text(source, encoding="utf-8")
    assert len(_private_uses(p)) == expected


def test_public_modules_declare_their_names() -> None:
    import detector
    import detector.evaluation
    import detector.network

    for mod in (detector, detector.evaluation, detector.network):
        assert mod.__all__ and all(hasattr(mod, n) and not n.startswith("_") for n in mod.__all__)


#: the packages each top-level package must not import: the pipeline runs corpus -> training -> model, the runtime
#: stands alone, benchmarks measure through the public runtime and the corpus (they run training steps as commands)
LAYERS = {
    "detector": ("corpus", "training", "benchmarks"),
    "corpus": ("detector", "training", "benchmarks"),
    "training": ("benchmarks",),
    "benchmarks": ("training",),
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_packages_import_only_along_the_layers(package: str) -> None:
    found = sorted(f"{p.relative_to(REPO)} imports {name}" for p in sorted((REPO / package).rglob("*.py"))
                   for name in _imported_packages(p) & set(LAYERS[package]))
    assert found == []


def _relative_imports(path: Path) -> tuple[set[str], list[int]]:
    """The sibling modules a training module imports at its top, and the lines of imports made inside functions."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    top = {node.module.split(".")[0] for node in tree.body
           if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}
    nested = [node.lineno for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
              for node in ast.walk(fn) if isinstance(node, ast.ImportFrom) and node.level >= 1]
    return top, nested


def test_training_steps_import_without_loops() -> None:
    """training/: no module imports a sibling inside a function (which would hide a loop), and the imports between
    its modules form no cycle."""
    graph: dict[str, set[str]] = {}
    nested: list[str] = []
    for p in sorted((REPO / "training").glob("*.py")):
        top, inner = _relative_imports(p)
        graph[p.stem] = top
        nested += [f"{p.name}:{n}" for n in inner]
    assert nested == []
    seen: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph.get(node, ())):
            assert seen.get(nxt) != 1, f"import loop: {' -> '.join([*path, node, nxt])}"
            if nxt not in seen:
                visit(nxt, [*path, node])
        seen[node] = 2

    for node in sorted(graph):
        if node not in seen:
            visit(node, [])


#: detector's faces: how people and programs reach the core (commands, input files, output formats, the report,
#: the server, corpus jobs, the datatrove filter): the public ones beside the core, the private ones in
#: detector/_faces/; everything else in detector/ is the core, which imports no face
PUBLIC_FACES = {"cli", "subtitles", "documents", "localisation", "datatrove_filter", "__main__"}


def test_the_core_imports_no_face() -> None:
    found = []
    for p in sorted((REPO / "detector").glob("*.py")):
        if p.stem in PUBLIC_FACES or p.stem == "__init__":
            continue
        tree = ast.parse(p.read_text(encoding="utf-8"), str(p))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                names = [node.module] if node.module else [a.name for a in node.names]
                found += [f"{p.name}:{node.lineno} imports {n}" for n in names
                          if n and (n.split(".")[0] in PUBLIC_FACES or n.split(".")[0] == "_faces")]
    assert found == []
    assert {p.stem for p in (REPO / "detector").glob("*.py")} >= PUBLIC_FACES  # the list names real modules
    assert (REPO / "detector" / "_faces" / "reading.py").is_file()
