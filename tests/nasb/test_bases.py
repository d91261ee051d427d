"""NASB with multiple binary bases: one base is the single-base op, K / M x N bases cost K / M x N times the BOPs,
the bases travel in the genotype JSON and train; a published genotype loads by name; the full preset resumes;
bad bases are one line and exit 2."""

from __future__ import annotations

import json

import pytest
import torch

from nascomp.cli import main
from nascomp.config import NASB_SEARCH_PRESETS, NASB_TRAIN_PRESETS, NASBSearchConfig, NASBTrainConfig, resolve
from nascomp.errors import Paused
from nascomp.models import ModelCfg
from nascomp.nas import Genotype, derive
from nascomp.nasb import (
    NASB_SPACE,
    NASBNetwork,
    Supernet,
    load_genotype,
    published_genotypes,
    run_search,
    run_train,
    with_bases,
)
from nascomp.nasb.ops import NASB_OPS
from nascomp.nasb.report import network_cost
from nascomp.nasb.student import build_student
from nascomp.quant.binary import set_binary_stage

CIFAR = ModelCfg(10, (3, 32, 32), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))


@pytest.fixture(scope="module")
def genotype() -> Genotype:
    torch.manual_seed(0)
    return derive(NASB_SPACE, NASB_SPACE.arch_params(init_std=1.0))


@pytest.mark.parametrize("op", ["binary_conv_3x3", "binary_dil_conv_5x5"])
@pytest.mark.parametrize("bases", ["groupnet:1", "abcnet:1x1"])
@pytest.mark.parametrize("stride", [1, 2])
def test_one_base_ops_are_the_single_base_op(op, bases, stride):
    torch.manual_seed(0)
    single = NASB_OPS.build(op, c=4, stride=stride, affine=True)
    multi = NASB_OPS.build(op, c=4, stride=stride, affine=True, bases=bases)
    multi.load_state_dict(single.state_dict(), strict=False)
    x = torch.randn(2, 4, 8, 8)
    for stage in (1, 2, 3):
        set_binary_stage(single, stage)
        set_binary_stage(multi, stage)
        assert torch.equal(multi(x), single(x))


@pytest.mark.parametrize(("bases", "convs"), [("groupnet:4", 4), ("abcnet:3x3", 9), ("abcnet:2x1", 2)])
def test_a_network_with_bases_costs_that_many_times_the_binary_ops(genotype, bases, convs):
    one = network_cost(genotype, CIFAR, 8, 5)
    many = network_cost(genotype, CIFAR, 8, 5, bases=bases)
    assert many.flops == one.flops
    assert many.bops == convs * one.bops
    assert many.ops == one.flops + convs * one.bops / 64


def test_bases_round_trip_through_the_genotype_json_and_rebuild_the_network(genotype, tmp_path):
    path = with_bases(genotype, "groupnet:3").save(tmp_path / "genotype.json")
    assert json.loads(path.read_text())["meta"]["bases"] == "groupnet:3"
    loaded = load_genotype(path)
    net = NASBNetwork(loaded, 3, 10, 4, 3)
    assert net.bases == "groupnet:3" and net.genotype.meta["bases"] == "groupnet:3"
    assert NASBNetwork(loaded, 3, 10, 4, 3, bases="single").genotype.meta.get("bases") is None
    torch.manual_seed(1)
    twin = NASBNetwork(load_genotype(net.genotype.save(tmp_path / "again.json")), 3, 10, 4, 3)
    twin.load_state_dict(net.state_dict())  # same modules, same keys
    x = torch.randn(2, 3, 32, 32)
    net.eval(), twin.eval()
    assert torch.equal(net(x), twin(x))


def test_a_genotype_with_bases_trains_and_its_run_keeps_them(genotype, tmp_path):
    path = with_bases(genotype, "abcnet:2x2").save(tmp_path / "genotype.json")
    cfg = resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, "demo", dict(
        genotype=str(path), stages=1, epochs=1, channels=4, layers=3, subset=64, eval_subset=32, batch_size=32))
    result = run_train(cfg, out=str(tmp_path / "t"), quiet=True)
    assert "bases abcnet:2x2" in result["student"]
    kept = load_genotype(tmp_path / "t")
    assert kept.meta["bases"] == "abcnet:2x2"
    single = network_cost(genotype, ModelCfg(10, (1, 8, 8), (0.5,), (0.25,)), 4, 3)
    assert result["cost"]["bops"] == 4 * single.bops
    cfg = resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, "demo", {"genotype": str(tmp_path / "t"), "bases": "groupnet:2"})
    student, about = build_student(cfg, ModelCfg(10, (1, 8, 8), (0.5,), (0.25,)))
    assert student.genotype.meta["bases"] == "groupnet:2" and "bases groupnet:2" in about


def test_supernet_with_bases_runs_and_the_search_records_them(tmp_path):
    net = Supernet(1, 10, 4, 3, bases="groupnet:2")
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    cfg = resolve(NASBSearchConfig, NASB_SEARCH_PRESETS, "demo", dict(
        bases="abcnet:2x1", channels=2, layers=3, subset=64, epochs=1, batch_size=16, plot=False))
    found = run_search(cfg, out=str(tmp_path / "s"), quiet=True)
    assert load_genotype(found["genotype"]).meta["bases"] == "abcnet:2x1"


def test_the_published_quick_genotype_loads_by_name_with_the_documented_cost():
    assert "nasb-cifar10-quick-seed0" in published_genotypes()
    report = network_cost(load_genotype("nasb-cifar10-quick-seed0"), CIFAR, 16, 8)
    # docs/BENCHMARKS.md, "NASB vs Bi-Real (CIFAR-10)", 2026-11-25: FLOPs 4.45e5, BOPs 5.90e7, OPs 1.37e6
    assert (report.flops, report.bops) == (444_928, 58_982_400)


def test_full_preset_is_all_images_for_three_long_stages():
    cfg = resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, "full", {})
    assert (cfg.subset, cfg.eval_subset, cfg.stages, cfg.epochs, cfg.batch_size) == (0, 0, 3, 128, 256)


def test_full_preset_run_pauses_and_resumes_to_the_end(genotype, tmp_path):
    path = str(genotype.save(tmp_path / "genotype.json"))
    small = dict(genotype=path, channels=4, layers=3, epochs=1, subset=128, eval_subset=64, batch_size=64)
    cfg = resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, "full", small)
    out = str(tmp_path / "full")
    with pytest.raises(Paused):
        run_train(cfg, out=out, quiet=True, stop_after=0.001)
    result = run_train(cfg, resume=out, quiet=True)
    assert [s["stage"] for s in result["stages"]] == [1, 2, 3]


@pytest.mark.parametrize(("extra", "message"), [
    (["--bases", "groupnet:0"], "at least 1"),
    (["--bases", "abcnet:3x0"], "at least 1"),
    (["--bases", "xnor:2"], "unknown base scheme 'xnor'"),
])
def test_bad_bases_are_one_line_and_exit_2(genotype, tmp_path, capsys, extra, message):
    path = str(genotype.save(tmp_path / "genotype.json"))
    for argv in (["nasb", "train", "--genotype", path], ["nasb", "search"], ["cost", "--genotype", path]):
        assert main([*argv, *extra, "--out", str(tmp_path / "r")] if argv[0] == "nasb" else [*argv, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "r").exists()


def test_bases_for_a_named_model_and_in_a_genotype_file_are_refused_in_one_line(genotype, tmp_path, capsys):
    assert main(["nasb", "train", "--model", "cifar_birealnet20", "--bases", "groupnet:2"]) == 2
    assert "cifar_groupnet20_k4" in capsys.readouterr().err
    data = genotype.to_dict()
    data["meta"] = {"bases": "groupnet:-1"}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    assert main(["nasb", "train", "--genotype", str(path), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert str(path) in err and "meta.bases" in err and "\n" not in err
