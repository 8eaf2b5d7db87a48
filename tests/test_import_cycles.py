"""The package's import graph has no cycles, and the numerical core stands alone.

Every ``import`` and ``from ... import`` under ``skre/`` counts, at module level
or inside a function (a lazy import is still a dependency). Post-fit tools read
fit results and helpers from below; estimator modules call them; nothing points
back up. A module's import of the package ``__init__`` it lives in is not an
edge (Python runs that ``__init__`` first anyway), but ``from . import x``
naming module ``x`` is an edge to ``x``.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "skre"


def module_files():
    """``{dotted module name: path}`` for every ``.py`` file under ``skre/``."""
    files = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        files[".".join(parts)] = path
    return files


def imported_names(name, path, modules):
    """The absolute module names one module imports (skre's and others')."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            found.add(base)
            # ``from pkg import x``: module ``pkg.x`` if there is one
            found.update(
                f"{base}.{alias.name}"
                for alias in node.names
                if f"{base}.{alias.name}" in modules
            )
    return found


def import_graph():
    """``{module: set of skre modules it imports}`` and each module's raw imports."""
    modules = module_files()
    graph, raw = {}, {}
    for name, path in modules.items():
        raw[name] = imported_names(name, path, modules)
        edges = set()
        for target in raw[name]:
            # importing ``a.b.c`` runs ``a`` and ``a.b`` too
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                prefix = ".".join(parts[:i])
                inside = name == prefix or name.startswith(prefix + ".")
                if prefix in modules and not inside:
                    edges.add(prefix)
        graph[name] = edges
    return graph, raw


def strongly_connected(graph):
    """Tarjan's strongly connected components (iterative)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.add(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def test_no_import_cycles():
    graph, _ = import_graph()
    assert "skre._core" in graph and "skre" in graph  # the walk found the package
    cycles = [c for c in strongly_connected(graph) if len(c) > 1]
    report = [
        "\n".join(f"  {m} -> {', '.join(sorted(graph[m] & c))}" for m in sorted(c))
        for c in cycles
    ]
    assert not cycles, "import cycles in skre:\n" + "\n\n".join(report)


def test_core_imports_nothing_from_outside_core():
    _, raw = import_graph()
    bad = {
        name: sorted(
            t
            for t in targets
            if t.split(".")[0] == "sklearn"
            or (
                t.split(".")[0] == "skre"
                and not (t == "skre._core" or t.startswith("skre._core."))
            )
        )
        for name, targets in raw.items()
        if name == "skre._core" or name.startswith("skre._core.")
    }
    bad = {name: targets for name, targets in bad.items() if targets}
    assert not bad, f"skre._core imports from outside itself: {bad}"


def test_graph_resolves_relative_imports():
    """The resolver sees lazy imports and ``from . import x`` as edges to ``x``."""
    graph, _ = import_graph()
    assert "skre._core.glm" in graph["skre._fit_result"]
    assert "skre._dask.parts" in graph["skre._dask.fit"]  # from . import parts
    assert "skre._dask.backend" in graph["skre._dask.detect"]  # lazy, in a function
    assert "skre._dask" in graph["skre._base"]  # importing a.b.c runs a.b
    # the package's own __init__ runs before any of its modules: not an edge
    assert all("skre" not in targets for targets in graph.values())
    assert "skre._dask" not in graph["skre._dask.fit"]
