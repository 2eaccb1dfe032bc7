"""The house rules: no import cycle, arrows only point down, heavy dependencies stay in their room.

The graph is read with `ast` from bot/ and strategies/ and counts every import, including those
inside functions and under `TYPE_CHECKING`; see tests/support/import_graph.py for the room table.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.import_graph import Graph, room_of, strongly_connected


@pytest.fixture(scope="module")
def graph() -> Graph:
    return Graph.build()


def test_every_module_has_a_room(graph: Graph) -> None:
    unplaced = graph.unplaced()
    assert not unplaced, (
        f"modules in no room: {unplaced}; place each one in ROOM_OF_PREFIX in "
        "tests/support/import_graph.py (and in the README's Layout section)"
    )


def test_no_module_imports_itself_back_through_other_modules(graph: Graph) -> None:
    assert graph.file_cycles() == []


def test_no_package_imports_itself_back_through_other_packages(graph: Graph) -> None:
    assert graph.package_cycles() == []


def test_no_room_imports_a_room_of_higher_rank_and_pipeline_and_sim_stay_apart(
    graph: Graph,
) -> None:
    assert graph.upward() == []


def test_ccxt_only_in_venues_and_sqlalchemy_only_in_store(graph: Graph) -> None:
    assert graph.misplaced_third_party() == []


def test_strategies_import_only_numpy_and_the_domain(graph: Graph) -> None:
    assert graph.impure_strategies() == []


def test_the_graph_sees_imports_inside_functions_and_type_checking_blocks(tmp_path: Path) -> None:
    package = tmp_path / "bot"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "domain.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from bot.cycle import X\n"
    )
    (package / "cycle.py").write_text("def f():\n    from bot import domain\n")
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "__init__.py").write_text("import pandas\n")
    small = Graph.build(tmp_path)
    assert small.file_cycles() == [["bot.cycle", "bot.domain"]]
    assert small.upward() == ["bot.domain:3 (floor) imports bot.cycle (pipeline)"]
    assert small.impure_strategies() == ["strategies:1 imports pandas"]


def test_a_module_outside_the_room_table_has_no_room() -> None:
    assert room_of("bot.newthing") is None
    assert room_of("bot.venues.paper.market") == "venues"
    assert room_of("strategies.band") == "floor"


def test_tarjan_finds_a_three_node_loop_and_ignores_a_tail() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
