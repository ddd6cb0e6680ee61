"""The packages' layering, read statically from the source: no import circle in ``harness/`` or ``models/``, and
no run-time room (training, data, dispatch, tracking, inputs) reaches for the sweep package.

Every ``import`` statement counts, at module level and inside functions alike (a function-local import that hides
a circle is still a circle); only imports under ``if TYPE_CHECKING:`` are left out, since they never run.
``from pkg import name`` is an edge to the module ``pkg.name`` when there is one, else to ``pkg``.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("harness", "models")
RUN_TIME_ROOMS = ("harness.train", "harness.data", "harness.dispatch", "harness.tracking", "harness.inputs")
SWEEP = "harness.sweep"

# Circles tolerated for now, each with the reason (none today; an entry whose circle is gone fails below).
ALLOWED_CIRCLES: list[frozenset[str]] = []


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _import_nodes(tree: ast.AST):
    """Every Import / ImportFrom in ``tree``, at any depth, except those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
            continue
        base = node.module or ""
        if node.level:
            anchor = package.split(".")
            anchor = anchor[: len(anchor) - (node.level - 1)]
            base = ".".join(anchor + ([base] if base else []))
        for alias in node.names:
            sub = f"{base}.{alias.name}"
            targets.add(sub if sub in modules else base)
    return {t for t in targets if t in modules and t != name}


def import_graph() -> dict[str, set[str]]:
    modules = project_modules()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (each one an import circle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:
        # Iterative, so that a deep import chain cannot exhaust the recursion limit.
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return found


def one_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """A shortest circle through the component's first module, as ``[a, b, ..., a]``."""
    members, start = set(component), component[0]
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [*reversed(path), start]
                if child not in parents:
                    parents[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"{component} is not strongly connected")


def _in(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def test_graph_reader_sees_function_local_and_relative_imports(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from pkg import b\n")
    (pkg / "b.py").write_text("from . import c\nfrom .c import thing\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n")
    modules = {"pkg": pkg / "__init__.py", "pkg.a": pkg / "a.py", "pkg.b": pkg / "b.py", "pkg.c": pkg / "c.py"}
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    assert graph == {"pkg": set(), "pkg.a": {"pkg.b"}, "pkg.b": {"pkg.c"}, "pkg.c": set()}
    graph["pkg.c"].add("pkg.a")
    assert strongly_connected(graph) == [["pkg.a", "pkg.b", "pkg.c"]]
    assert one_cycle(graph, ["pkg.a", "pkg.b", "pkg.c"]) == ["pkg.a", "pkg.b", "pkg.c", "pkg.a"]
    assert path_to(graph, "pkg.b", lambda m: m == "pkg.a") == ["pkg.b", "pkg.c", "pkg.a"]
    assert path_to(graph, "pkg", lambda m: m == "pkg.a") is None


def test_no_import_circles():
    graph = import_graph()
    circles = [c for c in strongly_connected(graph) if frozenset(c) not in ALLOWED_CIRCLES]
    assert circles == [], "import circles:\n" + "\n".join(" -> ".join(one_cycle(graph, c)) for c in circles)


def test_allowed_circles_still_exist():
    """An allow-list entry whose circle is gone must be deleted, so that the circle cannot come back unseen."""
    present = {frozenset(c) for c in strongly_connected(import_graph())}
    assert [sorted(c) for c in ALLOWED_CIRCLES if c not in present] == []


def path_to(graph: dict[str, set[str]], start: str, wanted) -> list[str] | None:
    """A shortest import chain from ``start`` to a module for which ``wanted(name)`` holds, or None."""
    parents: dict[str, str] = {start: start}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node]):
                if child in parents:
                    continue
                parents[child] = node
                if wanted(child):
                    chain = [child]
                    while chain[-1] != start:
                        chain.append(parents[chain[-1]])
                    return chain[::-1]
                following.append(child)
        frontier = following
    return None


def test_run_time_rooms_do_not_import_the_sweep_package():
    """Directly or through other modules: training reads its sizes from ``harness.sizes``, not from the sweep."""
    graph = import_graph()
    chains = [path_to(graph, name, lambda m: _in(m, SWEEP)) for name in sorted(graph)
              if any(_in(name, room) for room in RUN_TIME_ROOMS)]
    assert [" -> ".join(c) for c in chains if c] == []
