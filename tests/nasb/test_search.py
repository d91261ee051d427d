"""``nasb.search`` on the demo digits: a few steps give a valid genotype and a complete, resumable run folder."""

from __future__ import annotations

import json

import pytest

from interrupt import interrupted
from nascomp.config import NASB_SEARCH_PRESETS, NASBSearchConfig, resolve
from nascomp.errors import ConfigError
from nascomp.nas import Genotype
from nascomp.nasb import NASB_SPACE, run_search
from run_metrics import reproducible

TINY = dict(channels=4, layers=3, subset=192, batch_size=32, epochs=2, plot=False)


def _cfg(**kw) -> NASBSearchConfig:
    return resolve(NASBSearchConfig, NASB_SEARCH_PRESETS, "demo", {**TINY, **kw})


def _same(metrics: dict) -> dict:
    return reproducible(metrics, "drawings", "genotype", "alpha_plot")


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "run"
    return out, run_search(_cfg(plot=True), out=str(out), quiet=True)


def test_a_few_demo_steps_give_a_valid_genotype_and_the_run_folder(searched):
    out, metrics = searched
    genotype = Genotype.load(out / "genotype.json", NASB_SPACE)  # validates against the space
    assert all(len(genotype.edges[k]) == 8 and "none" not in genotype.ops(k) for k in ("normal", "reduce"))
    assert genotype.meta["layers"] == 3 and genotype.meta["relaxation"] == "softmax"
    for name in ("config.yaml", "log.txt", "checkpoint.pt", "metrics.json", "cost.json", "cost.txt",
                 "cell_normal.dot", "cell_reduce.dot"):
        assert (out / name).is_file(), name
    assert "digraph" in (out / "cell_normal.dot").read_text()
    assert metrics["steps"] == 2 * 3 and metrics["seconds_per_step"] > 0
    assert len(metrics["history"]) == 2 and set(metrics["parameter_free"]) == {"normal", "reduce"}
    cost = json.loads((out / "cost.json").read_text())
    assert cost["input_size"] == [1, 8, 8] and cost["bops"] > 0 and cost["ops"] == metrics["cost"]["ops"]


def test_alpha_history_has_one_snapshot_per_epoch_plus_the_start(searched):
    pytest.importorskip("matplotlib")
    out, metrics = searched
    assert (out / "alphas.png").is_file() and metrics["alpha_plot"].endswith("alphas.png")


def test_interrupted_search_resumed_gives_the_same_genotype_and_losses(searched, tmp_path, monkeypatch):
    _, full = searched
    with interrupted(monkeypatch, "search", 1):
        run_search(_cfg(), out=str(tmp_path / "cut"), quiet=True)
    resumed = run_search(_cfg(), resume=str(tmp_path / "cut"), quiet=True)
    assert _same(resumed) == _same(full)
    assert (tmp_path / "cut" / "genotype.json").read_text() == (searched[0] / "genotype.json").read_text()


@pytest.mark.parametrize("kw", [dict(relaxation="gumbel"), dict(order=2, epochs=1, subset=96)], ids=["gumbel", "second-order"])
def test_gdas_sampling_and_second_order_search_run(tmp_path, kw):
    metrics = run_search(_cfg(**kw), out=str(tmp_path / "r"), quiet=True)
    Genotype.load(metrics["genotype"], NASB_SPACE)
    if "relaxation" in kw:
        assert [row["tau"] for row in metrics["history"]] == pytest.approx([10.0, 0.1])


@pytest.mark.parametrize("kw,message", [
    (dict(order=3), "--order 3"),
    (dict(relaxation="hard"), "unknown relaxation"),
    (dict(tau_min=0.0), "tau-min"),
    (dict(subset=2), "at least 4"),
])
def test_bad_search_settings_are_config_errors(tmp_path, kw, message):
    with pytest.raises(ConfigError if "subset" not in kw else Exception, match=message):
        run_search(_cfg(**kw), out=str(tmp_path / "r"), quiet=True)


def test_derivation_cap_keeps_at_most_n_parameter_free_edges_per_cell():
    import torch

    from nascomp.nasb.ops import PARAMETER_FREE
    from nascomp.nasb.search import derive_capped, parameter_free_edges
    from nascomp.nasb.space import NASB_SPACE

    alphas = {}
    for kind, spec in NASB_SPACE.kinds.items():
        a = torch.zeros(len(spec.edges), len(spec.ops))
        a[:, spec.ops.index("skip_connect")] = 5.0  # a collapsed search: skip wins every edge
        alphas[kind] = a
    assert all(n == 8 for n in parameter_free_edges(derive_capped(alphas, None)).values())
    capped = derive_capped(alphas, 2)
    assert all(n == 2 for n in parameter_free_edges(capped).values())
    assert all(e["op"] != "none" for kind in capped.edges for e in capped.edges[kind])
    assert sum(e["op"] in PARAMETER_FREE for e in capped.edges["normal"]) == 2
