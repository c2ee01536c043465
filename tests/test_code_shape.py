"""The package keeps the shape the Architecture page (docs/architecture.md) and Contributing (docs/contributing.md) promise: small units, one seam per concern."""

import ast
from pathlib import Path
from seqadapt.kinds import TASK_KINDS

PACKAGE = Path(__file__).resolve().parents[1] / "seqadapt"


def definitions() -> list[tuple[str, int, str]]:
    """(kind, lines including decorators and docstring, where) for every class and function in the package."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                start = min([node.lineno] + [d.lineno for d in node.decorator_list])
                kind = "class" if isinstance(node, ast.ClassDef) else "function"
                found.append((kind, node.end_lineno - start + 1, f"{path.relative_to(PACKAGE)}:{node.name}"))
    return found


def test_no_class_over_200_lines_and_no_function_over_50():
    limits = {"class": 200, "function": 50}
    too_long = [(kind, size, where) for kind, size, where in definitions() if size > limits[kind]]
    assert not too_long


def test_only_the_kinds_package_names_a_task_kind():
    """Everything that differs between kinds is asked of the kind; no module branches on a kind's name."""
    allowed = {PACKAGE / "data" / "tasks.py",  # the definition's default type
               PACKAGE / "exchange" / "adapterhub_format.py"}  # AdapterHub's head_type "classification", not a kind
    naming = [
        (str(path.relative_to(PACKAGE)), name) for path in PACKAGE.rglob("*.py") for name in TASK_KINDS
        if "kinds" not in path.parts and path not in allowed and f'"{name}"' in path.read_text()
    ]
    assert not naming and len(TASK_KINDS) == 5
