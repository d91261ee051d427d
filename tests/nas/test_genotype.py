"""Deriving genotypes from alphas, their JSON record, and validation against a space."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nascomp.errors import ConfigError
from nascomp.nas import EdgeKind, Genotype, SearchSpace, derive, validate

CELL = {"n0": ["c0", "c1"], "n1": ["c0", "c1", "n0"], "n2": ["c0", "c1", "n0", "n1"]}


def mixed_space() -> SearchSpace:
    """An argmax kind (like AutoReCon's cross edges) and a DARTS cell (top-2 per node, no ``none``)."""
    return SearchSpace(
        "mixed",
        {
            "cross": EdgeKind(ops=["none", "nearest", "bilinear"], edges=3),
            "normal": EdgeKind(
                ops=["none", "skip", "conv"], rule="top2_no_none", inputs=CELL, concat=["n0", "n1", "n2"]
            ),
        },
    )


def hand_alphas() -> dict[str, torch.Tensor]:
    cross = [[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    normal = [
        [5.0, 0.0, 1.0],  # n0<-c0: none strongest, excluded -> conv
        [0.0, 2.0, 0.0],  # n0<-c1: skip
        [9.0, 0.5, 0.0],  # n1<-c0: none dominates, its best real op is weak -> dropped
        [0.0, 0.0, 3.0],  # n1<-c1: conv (strong)
        [0.0, 1.0, 0.0],  # n1<-n0: skip
        [0.0, 0.0, 2.0],  # n2<-c0: conv, 0.79
        [0.0, 0.0, 0.0],  # n2<-c1: tie -> skip, 0.33
        [0.0, 3.0, 0.0],  # n2<-n0: skip, 0.91
        [0.0, 0.0, 1.0],  # n2<-n1: conv, 0.58
    ]
    return {"cross": torch.tensor(cross), "normal": torch.tensor(normal)}


def test_derive_argmax_keeps_every_edge_and_lets_none_win() -> None:
    genotype = derive(mixed_space(), hand_alphas())
    assert genotype.ops("cross") == ["none", "nearest", "bilinear"]
    assert genotype.chosen("cross") == {"e0": "none", "e1": "nearest", "e2": "bilinear"}


def test_derive_top2_no_none_keeps_two_strongest_real_edges_per_node() -> None:
    genotype = derive(mixed_space(), hand_alphas())
    kept = [(e["node"], e["input"], e["op"]) for e in genotype.edges["normal"]]
    assert kept == [
        ("n0", "c0", "conv"),
        ("n0", "c1", "skip"),
        ("n1", "c1", "conv"),
        ("n1", "n0", "skip"),
        ("n2", "c0", "conv"),
        ("n2", "n0", "skip"),
    ]
    assert genotype.concat == {"normal": ["n0", "n1", "n2"]}
    validate(genotype, mixed_space())


def test_derive_reads_arch_params_and_checks_their_shape() -> None:
    space = mixed_space()
    arch = space.arch_params()
    with torch.no_grad():
        arch["cross"].copy_(hand_alphas()["cross"])
    assert derive(space, arch).ops("cross") == ["none", "nearest", "bilinear"]
    with pytest.raises(ConfigError, match=r"alphas of kind 'cross' have shape \(2, 3\)"):
        derive(space, {**hand_alphas(), "cross": torch.zeros(2, 3)})
    with pytest.raises(ConfigError, match="no alphas for edge kind 'normal'"):
        derive(space, {"cross": torch.zeros(3, 3)})


def test_json_round_trip_and_file_round_trip(tmp_path: Path) -> None:
    space = mixed_space()
    genotype = derive(space, hand_alphas(), meta={"epoch": 49, "dataset": "cifar10"})
    data = json.loads(genotype.to_json())
    assert data["format"] == "nascomp-genotype" and data["version"] == 1 and data["space"] == "mixed"
    assert Genotype.from_json(genotype.to_json(), space) == genotype
    path = genotype.save(tmp_path / "run" / "genotype.json")
    loaded = Genotype.load(path, space)
    assert loaded == genotype and loaded.meta["epoch"] == 49 and loaded.source == str(path)


def test_published_genotypes_can_be_written_as_op_lists() -> None:
    space = SearchSpace("gen", {"up": EdgeKind(ops=["nearest", "bilinear"], edges=2)})
    genotype = Genotype.from_ops(space, {"up": ["bilinear", "nearest"]}, source_paper="arXiv:2105.12151")
    assert genotype.chosen("up") == {"e0": "bilinear", "e1": "nearest"}
    with pytest.raises(ConfigError, match="wrong edge count"):
        Genotype.from_ops(space, {"up": ["bilinear"]})


def good_record() -> dict:
    return derive(mixed_space(), hand_alphas()).to_dict()


def broken(change) -> dict:
    data = json.loads(json.dumps(good_record()))
    change(data)
    return data


BAD_CASES = {
    "wrong format": (lambda d: d.update(format="darts"), "not a genotype file (format 'darts'"),
    "unknown version": (lambda d: d.update(version=7), "genotype version 7 is not supported"),
    "unknown space": (lambda d: d.update(space="nasb"), "genotype is for space 'nasb', not 'mixed'"),
    "unknown op": (
        lambda d: d["edges"]["cross"][1].update(op="bicubic"),
        "unknown op 'bicubic' on edge 'e1'",
    ),
    "wrong edge count": (lambda d: d["edges"]["cross"].pop(), "wrong edge count for kind 'cross': 2 entries"),
    "wrong node count": (lambda d: d["edges"]["normal"].pop(), "wrong edge count at node 'n2'"),
    "none kept in a cell": (lambda d: d["edges"]["normal"][0].update(op="none"), "keeps 'none'"),
    "edge out of order": (lambda d: d["edges"]["cross"].reverse(), "entry 0 of kind 'cross' is edge 'e2'"),
    "unknown edge": (lambda d: d["edges"]["normal"][0].update(edge="n0<-c9"), "unknown edge 'n0<-c9'"),
    "missing kind": (lambda d: d["edges"].pop("normal"), "edge kinds do not match"),
    "bad entry": (lambda d: d["edges"]["cross"].__setitem__(0, "none"), "needs string 'edge' and 'op'"),
    "wrong concat": (lambda d: d["concat"].update(normal=["n2"]), "concat of kind 'normal'"),
}


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_genotype_files_raise_one_line_config_errors_naming_file_and_problem(
    case: str, tmp_path: Path
) -> None:
    change, problem = BAD_CASES[case]
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(broken(change)))
    with pytest.raises(ConfigError) as err:
        Genotype.load(path, mixed_space())
    message = str(err.value)
    assert message.startswith(f"{path}: ") and problem in message
    assert "\n" not in message and ";" in message  # one line: the problem, then the fix


def test_invalid_json_and_missing_file_raise_config_errors(tmp_path: Path) -> None:
    path = tmp_path / "genotype.json"
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        Genotype.load(path)
    with pytest.raises(ConfigError, match="genotype file not found"):
        Genotype.load(tmp_path / "missing.json")


def test_load_without_a_space_checks_only_the_record(tmp_path: Path) -> None:
    path = tmp_path / "g.json"
    path.write_text(json.dumps(broken(lambda d: d.update(space="other"))))
    assert Genotype.load(path).space == "other"
