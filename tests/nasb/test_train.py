"""``nasb.train`` on the demo digits: every stage runs, is reported and checkpointed; resume is exact."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from interrupt import interrupted
from nascomp.config import NASB_TRAIN_PRESETS, NASBTrainConfig, resolve
from nascomp.engine import lr_factor
from nascomp.errors import ConfigError
from nascomp.nas import derive
from nascomp.nasb import NASB_SPACE, NASBNetwork, run_train
from nascomp.nasb.optim import param_groups
from nascomp.nasb.stages import stage_plan, use_real_activation
from nascomp.quant.binary import BinaryConv2d, binary_stage, set_binary_stage
from run_metrics import reproducible

TINY = dict(channels=4, layers=3, subset=128, eval_subset=64, batch_size=32, epochs=2)


@pytest.fixture(scope="module")
def genotype_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("genotype") / "genotype.json"
    return str(derive(NASB_SPACE, NASB_SPACE.arch_params(init_std=1.0)).save(path))


def _cfg(**kw) -> NASBTrainConfig:
    return resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, "demo", {**TINY, **kw})


def _same(metrics: dict) -> dict:
    return reproducible(metrics)


@pytest.fixture(scope="module")
def trained(genotype_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "run"
    return out, run_train(_cfg(genotype=genotype_file), out=str(out), quiet=True)


def test_all_three_stages_run_and_report_top1_and_cost(trained, genotype_file):
    out, metrics = trained
    stages = metrics["stages"]
    assert [s["stage"] for s in stages] == [1, 2, 3]
    assert all(0.0 <= s["top1"] <= 100.0 for s in stages) and metrics["top1"] == stages[-1]["top1"]
    assert stages[0]["bops"] == 0 < stages[2]["bops"] < stages[1]["bops"]  # 32x1 bits, then 1x1
    assert stages[2]["ops"] < stages[0]["ops"] and metrics["cost"]["ops"] == stages[2]["ops"]
    assert [(r["stage"], r["epoch"]) for r in metrics["history"]] == [(s, e) for s in (1, 2, 3) for e in (1, 2)]
    assert all(("top1" in r) == (r["epoch"] == 2) for r in metrics["history"])
    for name in ("config.yaml", "log.txt", "checkpoint.pt", "metrics.json", "model.safetensors", "model.json", "cost.json",
                 "genotype.json"):
        assert (out / name).is_file(), name
    assert torch.load(out / "checkpoint.pt", weights_only=False)["progress"]["stage"] == 3


def test_saved_model_is_the_fully_binary_network(trained, genotype_file):
    out, metrics = trained
    from nascomp.deploy import load_model
    from nascomp.nasb import load_genotype

    net = load_model(out, trainable=True)
    assert isinstance(net, NASBNetwork) and net.genotype.to_dict() == load_genotype(out).to_dict()
    assert binary_stage(net) == 3
    frozen = load_model(out)  # the deployable form: sign activations, +-1 weights with their scales
    x = torch.randn(4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(frozen(x), net(x), atol=1e-4)


def test_interrupted_training_resumed_gives_the_same_final_numbers(trained, genotype_file, tmp_path, monkeypatch):
    _, full = trained
    with interrupted(monkeypatch, "stage 2", 1):  # in stage 2, epoch 2
        run_train(_cfg(genotype=genotype_file), out=str(tmp_path / "cut"), quiet=True)
    ckpt = torch.load(tmp_path / "cut" / "checkpoint.pt", weights_only=False)
    assert ckpt["progress"]["stage"] == 1 and ckpt["progress"]["unit"] == 1  # stage 2, after epoch 1
    resumed = run_train(_cfg(genotype=genotype_file), resume=str(tmp_path / "cut"), quiet=True)
    assert _same(resumed) == _same(full)


def test_the_bi_real_baseline_trains_on_one_channel_digits_with_a_teacher(tmp_path, demo_teacher):
    metrics = run_train(_cfg(model="cifar_birealnet20", channels=None, stages=1, epochs=1,
                             teacher="demo_net"), out=str(tmp_path / "b"), quiet=True)
    assert metrics["student"] == "cifar_birealnet20" and [s["stage"] for s in metrics["stages"]] == [3]
    assert metrics["cost"]["bops"] > 0


def test_stage_plan_runs_the_last_n_stages():
    assert stage_plan(3) == [1, 2, 3] and stage_plan(2) == [2, 3] and stage_plan(1) == [3]
    for bad in (0, 4, -1):
        with pytest.raises(ConfigError, match="--stages"):
            stage_plan(bad)


def test_stage1_clips_activations_where_the_sign_will_be():
    conv = BinaryConv2d(1, 1, 1, bias=False)
    torch.nn.init.ones_(conv.weight)
    model = torch.nn.Sequential(conv)
    use_real_activation(model, "clip")
    x = torch.tensor([-3.0, -0.5, 0.5, 3.0]).view(1, 1, 2, 2)
    set_binary_stage(model, 1)
    assert model(x).flatten().tolist() == [-1.0, -0.5, 0.5, 1.0]
    set_binary_stage(model, 2)
    assert model(x).flatten().tolist() == [-1.0, -1.0, 1.0, 1.0]


def test_binary_weights_get_no_weight_decay_and_lr_decays_to_zero():
    net = torch.nn.Sequential(BinaryConv2d(2, 2, 3), torch.nn.BatchNorm2d(2))
    groups = param_groups(net, net.parameters(), 1e-5, 0.0)
    assert groups[0]["params"] == [net[0].weight] and groups[0]["weight_decay"] == 0.0
    assert len(groups[1]["params"]) == 3 and groups[1]["weight_decay"] == 1e-5
    assert lr_factor(0, 10, "linear") == 1.0 and lr_factor(5, 10, "linear") == 0.5 and lr_factor(10, 10, "cosine") == 0.0


@pytest.mark.parametrize("kw,message", [
    (dict(stages=4), "--stages 4"),
    (dict(lr_schedule="step"), "unknown lr schedule"),
    (dict(stage1_act="relu"), "unknown stage-1 activation"),
    (dict(genotype=None), "exactly one of --genotype"),
    (dict(model="cifar_birealnet20"), "exactly one of --genotype"),
    (dict(genotype=None, model="cifar_resnet20", channels=None), "has no binary convs"),
    (dict(genotype=None, model="cifar_birealnet20"), "--channels sets the width"),
    (dict(teacher="cifar_resnet20"), "needs --teacher-weights"),
    (dict(data="no/such/dir"), "not found"),
    (dict(eval_data="no/such/dir"), "not found"),
])
def test_bad_training_settings_are_config_errors(tmp_path, genotype_file, kw, message):
    from nascomp.errors import UserError

    with pytest.raises(UserError, match=message):
        run_train(_cfg(**{"genotype": genotype_file, **kw}), out=str(tmp_path / "r"), quiet=True)


def test_loss_with_a_teacher_adds_kl_to_ce():
    from nascomp.nasb.kd import student_loss

    logits, y = torch.randn(4, 10), torch.tensor([1, 2, 3, 4])
    assert torch.allclose(student_loss(logits, y, logits), F.cross_entropy(logits, y), atol=1e-6)
    assert student_loss(logits, y, -logits) > student_loss(logits, y, logits)


@pytest.mark.parametrize("bases", [None, "abcnet:2x2", "groupnet:2"])
def test_saved_network_evaluates_and_exports_through_the_cli(trained, genotype_file, tmp_path, bases):
    import json
    import subprocess
    import sys

    out = trained[0] if bases is None else tmp_path / "run"
    if bases is not None:  # multi-base cells: frozen as M weight planes and N shifted signs, or K branches
        run_train(_cfg(genotype=genotype_file, bases=bases, epochs=1), out=str(out), quiet=True)
    cli = [sys.executable, "-m", "nascomp"]
    ev = subprocess.run([*cli, "eval", "--weights", str(out), "--data", "demo", "--json"], capture_output=True,
                        text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr
    top1 = json.loads(ev.stdout)["top1"]  # the whole demo test set (the run reports its eval subset)
    ex = subprocess.run([*cli, "export", str(out), "--output", str(tmp_path / "b.onnx"), "--check", "demo",
                         "--json"], capture_output=True, text=True, timeout=300)
    assert ex.returncode == 0, ex.stderr
    check = json.loads(ex.stdout)
    assert check["agreement"] == 100.0 and check["torch_top1"] == pytest.approx(top1)  # frozen form = student form
