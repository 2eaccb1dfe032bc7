"""The import graph of bot/ and strategies/, read with `ast` (nothing is imported).

Every import counts: module level, inside functions and under `TYPE_CHECKING`, because a
guarded import that closes a loop is still a loop in the design. Each module belongs to a
room; rooms have ranks and arrows may only point down (or stay inside a room).

`python -m tests.support.import_graph` prints the summary: rooms, arrows between rooms,
cycles and rule violations.
"""

from __future__ import annotations

import ast
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("bot", "strategies")

# Room of each module, by the longest matching dotted prefix.
ROOM_OF_PREFIX: dict[str, str] = {
    "bot.cli": "cli",
    "bot.analysis": "analysis",
    "bot.backtest": "backtest",
    "bot.sim": "sim",
    "bot.monitor": "monitor",
    "bot.store": "store",
    "bot.venues": "venues",
    "strategies": "floor",
    "bot": "floor",  # the package marker bot/__init__.py
    **{
        f"bot.{name}": "floor"
        for name in (
            "domain",
            "config",
            "config_sources",
            "clock",
            "units",
            "labels",
            "greeks",
            "black76_kernel",
            "implied",
            "volatility",
            "logs",
        )
    },
    **{
        f"bot.{name}": "pipeline"
        for name in (
            "positions",
            "plausibility",
            "policy",
            "risk",
            "execution",
            "intake",
            "exclusion",
            "cycle",
            "reconcile",
            "daemon",
            "heartbeat",
            "app",
            "lock",
            "audit",
            "sentry",
            "events",
            "order_pushes",
        )
    },
}
RANK: dict[str, int] = {
    "cli": 7,
    "analysis": 6,
    "backtest": 5,
    "pipeline": 4,
    "sim": 4,
    "monitor": 3,
    "store": 2,
    "venues": 1,
    "floor": 0,
}
# Rooms of equal rank that must not import each other.
APART: frozenset[frozenset[str]] = frozenset({frozenset({"pipeline", "sim"})})
# Third-party packages confined to one part of the tree (dotted prefixes that may import them).
CONFINED: dict[str, tuple[str, ...]] = {
    "ccxt": ("bot.venues",),
    "sqlalchemy": ("bot.store",),
    "alembic": ("bot.store",),
}
# The strategies are pure: besides the standard library, only these.
STRATEGY_IMPORTS: tuple[str, ...] = ("numpy", "bot.domain", "strategies")


@dataclass(frozen=True)
class Import:
    """One import statement's target as written (absolute dotted name) and where it is."""

    source: str
    target: str
    line: int


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_files(root: Path = ROOT) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for top in SCANNED:
        for path in sorted((root / top).rglob("*.py")):
            files[module_name(path, root)] = path
    return files


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def imports_of(module: str, path: Path) -> Iterator[Import]:
    """Every import in the file, wherever it sits; `from p import m` yields p.m when m is a name."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(module, alias.name, node.lineno)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, is_package, node)
            for alias in node.names:
                yield Import(module, f"{base}.{alias.name}", node.lineno)


def room_of(module: str) -> str | None:
    """The room by the longest listed prefix; bot's own top-level files must be listed by name."""
    parts = module.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix == "bot" and module != "bot":
            return None
        room = ROOM_OF_PREFIX.get(prefix)
        if room is not None:
            return room
    return None


def _resolve(target: str, modules: Iterable[str]) -> str | None:
    """The module of ours that `target` names (longest prefix), or None for outside code."""
    known = set(modules)
    parts = target.split(".")
    for end in range(len(parts), 0, -1):
        name = ".".join(parts[:end])
        if name in known:
            return name
    return None


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


@dataclass
class Graph:
    """Modules, their internal edges and the external imports, with the rules checked on demand."""

    root: Path
    modules: dict[str, Path]
    edges: dict[str, set[str]]
    external: list[Import]
    internal: list[Import]

    @classmethod
    def build(cls, root: Path = ROOT) -> Graph:
        modules = module_files(root)
        edges: dict[str, set[str]] = {name: set() for name in modules}
        external: list[Import] = []
        internal: list[Import] = []
        for name, path in modules.items():
            for imp in imports_of(name, path):
                target = _resolve(imp.target, modules)
                if target is None:
                    external.append(imp)
                elif target != name:
                    edges[name].add(target)
                    internal.append(Import(name, target, imp.line))
        return cls(root, modules, edges, external, internal)

    def unplaced(self) -> list[str]:
        return sorted(name for name in self.modules if room_of(name) is None)

    def room_edges(self) -> Counter[tuple[str, str]]:
        counts: Counter[tuple[str, str]] = Counter()
        for source, targets in self.edges.items():
            for target in targets:
                a, b = room_of(source), room_of(target)
                if a is not None and b is not None and a != b:
                    counts[(a, b)] += 1
        return counts

    def file_cycles(self) -> list[list[str]]:
        return strongly_connected(self.edges)

    def package_cycles(self) -> list[list[str]]:
        """Cycles between packages; bot's top-level files count as their room (floor/pipeline)."""
        graph: dict[str, set[str]] = {}
        for source, targets in self.edges.items():
            graph.setdefault(package_of(source, self.root), set())
            for target in targets:
                a, b = package_of(source, self.root), package_of(target, self.root)
                if a != b:
                    graph[a].add(b)
        return strongly_connected(graph)

    def room_cycles(self) -> list[list[str]]:
        graph: dict[str, set[str]] = {room: set() for room in RANK}
        for a, b in self.room_edges():
            graph[a].add(b)
        return strongly_connected(graph)

    def upward(self) -> list[str]:
        wrong: list[str] = []
        for imp in self.internal:
            a, b = room_of(imp.source), room_of(imp.target)
            if a is None or b is None or a == b:
                continue
            if RANK[a] < RANK[b] or frozenset({a, b}) in APART:
                wrong.append(f"{imp.source}:{imp.line} ({a}) imports {imp.target} ({b})")
        return wrong

    def misplaced_third_party(self) -> list[str]:
        wrong: list[str] = []
        for imp in self.external:
            top = imp.target.split(".")[0]
            allowed = CONFINED.get(top)
            if allowed is not None and not any(_within(imp.source, p) for p in allowed):
                wrong.append(f"{imp.source}:{imp.line} imports {top}, allowed only in {allowed}")
        return wrong

    def impure_strategies(self) -> list[str]:
        wrong: list[str] = []
        for imp in [*self.external, *self.internal]:
            if not _within(imp.source, "strategies"):
                continue
            top = imp.target.split(".")[0]
            if top in sys.stdlib_module_names or top == "__future__":
                continue
            if not any(_within(imp.target, p) for p in STRATEGY_IMPORTS):
                wrong.append(f"{imp.source}:{imp.line} imports {imp.target}")
        return wrong


def package_of(module: str, root: Path = ROOT) -> str:
    parts = module.split(".")
    if len(parts) <= 2 and parts[0] == "bot" and not root.joinpath(*parts).is_dir():
        return f"bot ({room_of(module)})"
    path = root.joinpath(*parts)
    return module if path.is_dir() else ".".join(parts[:-1])


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm; returns the components with more than one node (the cycles)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    def visit(node: str) -> None:
        nonlocal counter
        index[node] = low[node] = counter
        counter += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: list[str] = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return cycles


def summary(graph: Graph) -> str:
    modules_per_room = Counter(room_of(name) or "UNPLACED" for name in graph.modules)
    lines = ["rooms (rank: modules):"]
    for room in sorted(RANK, key=lambda r: (-RANK[r], r)):
        lines.append(f"  {room:<9} {RANK[room]}: {modules_per_room.get(room, 0)}")
    lines.append("edges between rooms (module-to-module imports):")
    for (a, b), n in sorted(graph.room_edges().items(), key=lambda kv: (-RANK[kv[0][0]], kv[0])):
        lines.append(f"  {a} -> {b}: {n}")

    def show(title: str, found: list[list[str]] | list[str]) -> None:
        lines.append(f"{title}: {'none' if not found else len(found)}")
        lines.extend(f"  {item}" for item in found)

    show("file-level cycles", graph.file_cycles())
    show("package-level cycles", graph.package_cycles())
    show("room-level cycles", graph.room_cycles())
    show("upward or sideways arrows", graph.upward())
    show("confined third-party imports outside their room", graph.misplaced_third_party())
    show("strategy imports beyond numpy and bot.domain", graph.impure_strategies())
    show("modules in no room", graph.unplaced())
    lines.append(f"modules: {len(graph.modules)}, internal imports: {len(graph.internal)}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(Graph.build()))
