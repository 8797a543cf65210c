"""The layout holds: one unit of work makes presence changes, SQL and asyncpg stay in
adapters/db/ (and the composition root), and no import runs in a circle or back up.

Static checks over the source (ast), so a change that breaks a rule fails here whether or not a
test happens to exercise it. ARCHITECTURE.md explains the rules."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("geo_engine", "geofences", "adapters")
UNIT_OF_WORK = "adapters/services/unit_of_work.py"
SQL_HOMES = ("adapters/db/", "adapters/composition.py")
# asyncpg's query API and a pool's connection checkout
QUERY_METHODS = {
    "fetch",
    "fetchrow",
    "fetchval",
    "execute",
    "executemany",
    "copy_records_to_table",
    "copy_to_table",
    "copy_from_query",
    "acquire",
}
SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|DELETE\s+FROM|UPDATE\s+\w+\s+SET|CREATE\s+TABLE)\b",
    re.IGNORECASE | re.DOTALL,
)


def sources(*packages: str) -> Iterator[tuple[str, ast.Module]]:
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            yield rel, ast.parse(path.read_text(), rel)


def module_name(rel: str) -> str:
    name = rel.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def imported(tree: ast.Module) -> Iterator[str]:
    """Every module named by an import, TYPE_CHECKING ones included (a cycle is a cycle)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{a.name}" for a in node.names)


def test_only_the_unit_of_work_begins_commits_writes_or_rolls_back_presence() -> None:
    offenders = []
    for rel, tree in sources("adapters"):
        if rel == UNIT_OF_WORK:
            continue
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            method = node.func.attr
            receiver = ast.unparse(node.func.value)
            if method in {"begin", "commit", "rollback"} or (
                method == "write" and ("presence" in receiver or "store" in receiver)
            ):
                offenders.append(f"{rel}:{node.lineno} {receiver}.{method}()")
    assert offenders == []


def test_sql_and_asyncpg_live_in_adapters_db_and_the_composition_root() -> None:
    offenders = []
    for rel, tree in sources(*PACKAGES):
        if rel.startswith(SQL_HOMES):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
                names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if any(n.split(".")[0] == "asyncpg" for n in names):
                    offenders.append(f"{rel}:{node.lineno} imports asyncpg")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in QUERY_METHODS
                and re.search(r"\b(conn|pool|connection)\b", ast.unparse(node.func.value))
            ):
                offenders.append(f"{rel}:{node.lineno} {ast.unparse(node.func)}()")
            elif (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and SQL.search(node.value)
            ):
                offenders.append(f"{rel}:{node.lineno} SQL text")
    assert offenders == []


def _graph() -> dict[str, set[str]]:
    trees = dict(sources(*PACKAGES))
    modules = {module_name(rel) for rel in trees}
    return {
        module_name(rel): {m for m in imported(tree) if m in modules} - {module_name(rel)}
        for rel, tree in trees.items()
    }


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _folder(module: str) -> str:
    """adapters.<folder or top module>; the core packages as a whole."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "adapters" and len(parts) > 1 else parts[0]


def test_no_import_cycle_between_modules() -> None:
    assert _cycles(_graph()) == []


def test_no_import_cycle_between_folders() -> None:
    folders: dict[str, set[str]] = {}
    for module, deps in _graph().items():
        mine = _folder(module)
        folders.setdefault(mine, set()).update(_folder(d) for d in deps if _folder(d) != mine)
    for deps in list(folders.values()):
        for d in deps:
            folders.setdefault(d, set())
    assert _cycles(folders) == []


def test_no_arrow_runs_back_up() -> None:
    """The core imports no adapter; settings (read by every layer) import only the core; only
    the composition root, the CLI and the API app know the composition root."""
    graph = _graph()
    up = []
    for module, deps in graph.items():
        for d in deps:
            if module.startswith(("geo_engine", "geofences")) and d.startswith("adapters"):
                up.append(f"{module} -> {d}")
            if module == "adapters.settings" and d.startswith("adapters"):
                up.append(f"{module} -> {d}")
            if d == "adapters.composition" and not module.startswith(
                ("adapters.cli", "adapters.api", "adapters.demo")
            ):
                up.append(f"{module} -> {d}")
    assert up == []


def test_the_checks_catch_what_they_check() -> None:
    """The checks are only as good as their matchers: each finds its own kind of offence."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
    assert SQL.search("SELECT id FROM presence_events WHERE id > $1")
    assert SQL.search("insert into outbox (id) values ($1)")
    assert not SQL.search("Select the fences a fix lies in")
