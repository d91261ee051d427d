"""The generator search pipeline on the demo teacher: loss, genotype, determinism, resume, CLI, DFQ's `search`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interrupt import interrupted
from nascomp.cli import main
from nascomp.config import DFQ_PRESETS, GENERATOR_SEARCH_PRESETS, DFQConfig, GeneratorSearchConfig, resolve
from nascomp.dfq import run_dfq
from nascomp.errors import ConfigError
from nascomp.nas import Genotype
from nascomp.recon import AUTORECON_SPACE, GeneratorSearch, search_generator
from run_metrics import reproducible


@pytest.fixture(autouse=True)
def _no_alpha_plot(monkeypatch):
    """The alpha plot (33 panels, seconds) is drawn by the shared reference run only; nas/ tests the plotting."""
    monkeypatch.setattr("nascomp.recon.search.plot_alpha_history", lambda *args: None)


def _cfg(**kw) -> GeneratorSearchConfig:
    return resolve(GeneratorSearchConfig, GENERATOR_SEARCH_PRESETS, "demo", {"device": "cpu", **kw})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, demo_teacher):
    """One demo-preset search (2 epochs x 5 steps, seed 0), shared by the tests below (it draws its alphas)."""
    out = tmp_path_factory.mktemp("search") / "ref"
    return search_generator(_cfg(), demo_teacher, out=str(out), quiet=True)


def test_search_lowers_l_r_and_writes_a_valid_genotype_and_the_run_folder(reference):
    history = reference["history"]
    assert [row["epoch"] for row in history] == [1, 2]
    assert history[-1]["L_r"] < history[0]["L_r"]
    genotype = Genotype.load(reference["genotype"], AUTORECON_SPACE)
    assert {k: genotype.ops(k) for k in AUTORECON_SPACE.kinds} == reference["ops"]
    assert genotype.meta["seed"] == 0 and genotype.meta["steps"] == 10
    run = Path(reference["run_dir"])
    files = {p.name for p in Path(run).iterdir()}
    assert {"config.yaml", "log.txt", "checkpoint.pt", "metrics.json", "genotype.json", "genotype.dot",
            "alpha_history.json"} <= files
    alphas = json.loads((Path(run) / "alpha_history.json").read_text())
    assert len(alphas) == 3 and alphas[0] != alphas[-1]  # start + one entry per epoch
    assert len(alphas[-1]["normal"]) == 15 and all(abs(sum(r) - 1) < 1e-5 for r in alphas[-1]["cross"])
    metrics = json.loads((Path(run) / "metrics.json").read_text())
    assert metrics["seconds_per_step"] > 0 and metrics["peak_rss_mb"] > 0 and metrics["steps"] == 10
    assert "peak RSS" in (Path(run) / "log.txt").read_text()
    pytest.importorskip("matplotlib")
    assert metrics["alpha_plot"] == str(Path(run) / "alphas.png") and (Path(run) / "alphas.png").is_file()


def test_same_seed_gives_the_same_genotype_and_alphas(reference, demo_teacher, tmp_path):
    again = search_generator(_cfg(), demo_teacher, out=str(tmp_path / "again"), quiet=True)
    assert Genotype.load(again["genotype"]) == Genotype.load(reference["genotype"])
    assert again["history"] == reference["history"]
    other = search_generator(_cfg(seed=1, epochs=1), demo_teacher, out=str(tmp_path / "other"), quiet=True)
    assert other["history"][0] != reference["history"][0]


def test_interrupted_search_resumed_gives_the_same_genotype(reference, demo_teacher, tmp_path, monkeypatch):
    with interrupted(monkeypatch, "search", 1):  # in epoch 2
        search_generator(_cfg(), demo_teacher, out=str(tmp_path / "cut"), quiet=True)
    resumed = search_generator(_cfg(), demo_teacher, resume=str(tmp_path / "cut"), quiet=True)
    assert Genotype.load(resumed["genotype"]) == Genotype.load(reference["genotype"])
    assert resumed["history"] == reference["history"]


def test_second_order_search_runs(demo_teacher, tmp_path):
    metrics = search_generator(_cfg(order=2, epochs=1, steps_per_epoch=2), demo_teacher, out=str(tmp_path / "o2"),
                               quiet=True)
    Genotype.load(metrics["genotype"], AUTORECON_SPACE)
    assert metrics["order"] == 2


@pytest.mark.parametrize("kw,message", [({"order": 3}, "--order 3"), ({"batch_size": 1}, "batch-size 1"),
                                        ({"epochs": 0}, "epochs >= 1")])
def test_impossible_settings_are_config_errors(demo_teacher, tmp_path, kw, message):
    with pytest.raises(ConfigError, match=message):
        GeneratorSearch(_cfg(**kw), demo_teacher, out=str(tmp_path / "x"))
    assert not (tmp_path / "x").exists()


def test_search_generator_cli_prints_json_and_its_genotype_drives_dfq(tmp_path, capsys):
    out = tmp_path / "s"
    argv = ["search-generator", "--out", str(out), "--epochs", "1", "--steps-per-epoch", "2", "--json", "--quiet"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) >= {"genotype", "lr_first", "lr_last", "seconds_per_step", "peak_rss_mb", "run_dir"}
    tiny = ["--gen-steps", "3", "--calib-size", "64", "--epochs", "1", "--batch-size", "32", "--quiet"]
    assert main(["dfq", "--generator", str(out), "--out", str(tmp_path / "d"), *tiny]) == 0  # the run folder
    assert main(["search-generator", "--order", "3", "--out", str(tmp_path / "bad")]) == 2
    assert "--order 3" in capsys.readouterr().err


def test_dfq_with_generator_search_reports_the_search_cost_apart_and_resumes_exactly(tmp_path, monkeypatch):
    cfg = resolve(DFQConfig, DFQ_PRESETS, "demo", dict(generator="search", gen_steps=3, calib_size=64, epochs=1,
                                                       batch_size=32, device="cpu"))
    full = run_dfq(cfg, out=str(tmp_path / "full"), quiet=True)
    search = json.loads((tmp_path / "full" / "search" / "metrics.json").read_text())
    assert full["generator"] == "search" and full["search_seconds"] == search["seconds"] > 0
    assert Genotype.load(search["genotype"], AUTORECON_SPACE).meta["model"] == "demo_net"
    assert full["dfq_top1"] > 50

    with interrupted(monkeypatch, "search", 1):  # in epoch 2
        run_dfq(cfg, out=str(tmp_path / "cut"), quiet=True)
    resumed = run_dfq(cfg, resume=str(tmp_path / "cut"), quiet=True)
    assert reproducible(resumed) == reproducible(full)
