"""The import rule of the files that travel with a checkpoint (trust_remote_code copies them, nothing else)."""

import ast
from collections.abc import Collection
from pathlib import Path

# What every architecture's travelling files may import; each test adds the standard-library modules its files use.
CORE_IMPORTS = frozenset(
    {"torch", "transformers", "numpy", "math", "dataclasses", "collections", "typing", "__future__"}
)


def assert_imports_travel(path: Path, siblings: Collection[str], allowed: Collection[str]) -> None:
    """Each import of `path` is a flat sibling among `siblings` (`from .x import`, the only relative form remote code
    copies) or a module whose top-level package is in `allowed`."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            assert node.level == 1 and f"{node.module}.py" in siblings, (path.name, ast.dump(node))
            continue
        if isinstance(node, ast.Import):
            roots = {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            roots = {node.module.split(".")[0]}
        else:
            continue
        assert roots <= set(allowed), (path.name, roots)
