"""SearchSpace / EdgeKind: plain-data declarations, checked on construction."""

from __future__ import annotations

import json

import pytest

from nascomp.errors import ConfigError
from nascomp.nas import EdgeKind, SearchSpace

CELL_INPUTS = {"n0": ["c0", "c1"], "n1": ["c0", "c1", "n0"]}


def test_edges_from_a_count_a_list_or_the_inputs_graph() -> None:
    space = SearchSpace(
        "demo",
        {
            "up": EdgeKind(ops=["nearest", "bilinear"], edges=2),
            "named": EdgeKind(ops=["none", "skip"], edges=["x0", "x1", "x2"]),
            "cell": EdgeKind(
                ops=["none", "skip", "conv"], rule="top2_no_none", inputs=CELL_INPUTS, concat=["n0", "n1"]
            ),
        },
    )
    assert space.kinds["up"].edges == ["e0", "e1"]
    assert space.kinds["named"].edges == ["x0", "x1", "x2"]
    assert space.kinds["cell"].edges == ["n0<-c0", "n0<-c1", "n1<-c0", "n1<-c1", "n1<-n0"]
    assert space.kinds["cell"].edge_pairs()["n1<-n0"] == ("n1", "n0")
    assert space.arch_shapes() == {"up": (2, 2), "named": (3, 2), "cell": (5, 3)}
    assert space.kinds["cell"].top_k == 2 and space.kinds["up"].top_k is None
    assert [p.shape for p in space.arch_params().alphas()] == [(2, 2), (3, 2), (5, 3)]


def test_custom_edge_names_map_positionally_onto_the_graph() -> None:
    kind = EdgeKind(ops=["a"], edges=["p", "q", "r"], inputs={"n2": ["n0", "n1"], "n3": ["n2"]})
    SearchSpace("s", {"k": kind})
    assert kind.edge_pairs() == {"p": ("n2", "n0"), "q": ("n2", "n1"), "r": ("n3", "n2")}


def test_graph_defaults_to_the_kind_name_and_can_be_shared() -> None:
    space = SearchSpace(
        "s", {"a": EdgeKind(ops=["x"], edges=1), "b": EdgeKind(ops=["x"], edges=1, graph="g")}
    )
    assert space.kinds["a"].graph == "a" and space.kinds["b"].graph == "g"


def test_space_round_trips_through_json() -> None:
    space = SearchSpace(
        "demo",
        {
            "up": EdgeKind(ops=["nearest", "bilinear"], edges=2),
            "cell": EdgeKind(ops=["none", "conv"], rule="top2_no_none", inputs=CELL_INPUTS, concat=["n1"]),
        },
    )
    text = space.to_json()
    json.loads(text)
    assert SearchSpace.from_json(text) == space


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        (EdgeKind(ops=["a"], edges=2, rule="best"), "unknown derivation rule 'best'"),
        (EdgeKind(ops=["a", "b"], edges=2, rule="top2_no_none"), "needs 'inputs'"),
        (
            EdgeKind(ops=["none"], rule="top2_no_none", inputs=CELL_INPUTS),
            "at least one op other than 'none'",
        ),
        (EdgeKind(ops=["a", "a"], edges=1), "distinct"),
        (EdgeKind(ops=["a"], edges=0), "non-empty list of distinct names"),
        (EdgeKind(ops=["a"], edges=["x", "y"], inputs=CELL_INPUTS), "2 edge names for 5"),
        (EdgeKind(ops=["a"], inputs=CELL_INPUTS, concat=["n9"]), "concat names unknown nodes"),
        (EdgeKind(ops=["a"], inputs={"n0": []}), "non-empty list of distinct inputs"),
    ],
)
def test_bad_declarations_raise_config_error(kind: EdgeKind, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SearchSpace("bad", {"k": kind})


def test_unknown_kind_lookup_names_the_known_kinds() -> None:
    space = SearchSpace("s", {"up": EdgeKind(ops=["a"], edges=1)})
    with pytest.raises(ConfigError, match="no edge kind 'down'; kinds: up"):
        space.kind("down")


def test_a_kind_declared_once_can_serve_two_kinds() -> None:
    cell = EdgeKind(ops=["none", "conv"], rule="top2_no_none", inputs=CELL_INPUTS)
    space = SearchSpace("darts", {"normal": cell, "reduce": cell})
    assert space.kinds["normal"].graph == "normal" and space.kinds["reduce"].graph == "reduce"
    assert cell.graph == ""
