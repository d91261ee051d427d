"""``nascomp cost`` and ``nascomp nasb search|train`` from the command line: JSON results, one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from nascomp.cli import main
from nascomp.nas import derive
from nascomp.nasb import NASB_SPACE

TINY_SEARCH = ["--channels", "4", "--layers", "3", "--subset", "128", "--epochs", "1", "--batch-size", "32", "--no-plot",
               "--quiet"]
TINY_TRAIN = ["--channels", "4", "--layers", "3", "--subset", "128", "--eval-subset", "64", "--epochs", "1",
              "--batch-size", "32", "--quiet"]


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def _error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_cost_of_birealnet18_gives_the_published_numbers(capsys):
    assert main(["cost", "--model", "birealnet18", "--json"]) == 0
    cost = _json(capsys)
    assert cost["bops"] == pytest.approx(1.68e9, rel=0.01) and cost["ops"] == pytest.approx(1.63e8, rel=0.01)
    assert cost["input_size"] == [3, 224, 224] and len(cost["layers"]) == 21


def test_cost_prints_a_table_for_a_model_at_another_input_and_for_a_genotype(capsys, tmp_path):
    assert main(["cost", "--model", "cifar_birealnet20", "--input", "3x64x64"]) == 0
    out = capsys.readouterr().out
    assert "BinaryConv2d" in out and "OPs" in out and "input      3x64x64" in out
    torch.manual_seed(0)
    path = derive(NASB_SPACE, NASB_SPACE.arch_params(init_std=1.0)).save(tmp_path / "genotype.json")
    assert main(["cost", "--genotype", str(path), "--channels", "8", "--layers", "5", "--json"]) == 0
    assert _json(capsys)["bops"] > 0


def test_search_then_train_the_found_genotype_from_the_command_line(tmp_path, capsys):
    assert main(["nasb", "search", "--out", str(tmp_path / "s"), "--json", *TINY_SEARCH]) == 0
    found = _json(capsys)
    assert set(found) >= {"genotype", "parameter_free", "cost", "seconds_per_step", "run_dir"}
    assert main(["nasb", "train", "--genotype", found["run_dir"], "--out", str(tmp_path / "t"), *TINY_TRAIN]) == 0
    out = capsys.readouterr().out
    assert "stage 1 (real)" in out and "stage 3 (binary)" in out and "OPs" in out


def test_train_with_one_stage_and_the_baseline_flag(tmp_path, capsys):
    argv = ["nasb", "train", "--model", "cifar_birealnet20", "--stages", "1", "--out", str(tmp_path / "b"),
            "--json", *TINY_TRAIN[2:]]
    assert main(argv) == 0
    result = _json(capsys)
    assert [s["stage"] for s in result["stages"]] == [3] and result["student"] == "cifar_birealnet20"


@pytest.mark.parametrize("argv,message", [
    (["nasb", "train", "--model", "cifar_birealnet20", "--stages", "4"], "--stages 4"),
    (["nasb", "train", "--model", "cifar_birealnet20", "--stages", "0"], "--stages 0"),
    (["nasb", "train", "--model", "cifar_birealnet20", "--data", "no/such/train.tar.gz"], "not found"),
    (["nasb", "train", "--genotype", "no/such/genotype.json"], "genotype file not found"),
    (["nasb", "search", "--data", "no/such/folder"], "not found"),
    (["nasb", "search", "--order", "3"], "--order 3"),
    (["nasb", "search", "--preset", "fast"], "unknown preset"),
    (["cost", "--model", "birealnet99"], "unknown model"),
    (["cost", "--model", "birealnet18", "--input", "224"], "--input '224'"),
    (["cost"], "exactly one of --model"),
])
def test_user_errors_are_one_line_and_exit_2(capsys, argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert message in _error_line(capsys, argv)


def test_unknown_op_in_a_genotype_is_one_line_naming_the_op(tmp_path, capsys):
    torch.manual_seed(0)
    data = derive(NASB_SPACE, NASB_SPACE.arch_params(init_std=1.0)).to_dict()
    data["edges"]["reduce"][3]["op"] = "binary_conv_7x7"
    path = tmp_path / "genotype.json"
    path.write_text(json.dumps(data))
    line = _error_line(capsys, ["nasb", "train", "--genotype", str(path), "--out", str(tmp_path / "r")])
    assert "unknown op 'binary_conv_7x7'" in line and str(path) in line
    assert _error_line(capsys, ["cost", "--genotype", str(path)]).endswith(line.split("error: ", 1)[1])
    assert not (tmp_path / "r").exists()
