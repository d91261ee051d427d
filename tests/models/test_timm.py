"""``timm:<name>`` models: built without weights (no download), input convention from timm's pretrained config,
the user's weights loaded as for any model, and one line when timm is missing or the name unknown."""

import json
import sys

import pytest
import torch

from nascomp.cli import main
from nascomp.errors import CheckpointError, ConfigError
from nascomp.models import create_model

timm = pytest.importorskip("timm")
TINY = "timm:test_resnet"  # 0.47 M parameters, 160 x 160, mean/std 0.5: unlike the ImageNet defaults


def test_timm_model_takes_its_input_convention_from_the_pretrained_config():
    model = create_model(TINY)
    cfg = model.default_cfg
    assert cfg.input_size == (3, 160, 160) and cfg.mean == (0.5, 0.5, 0.5) and cfg.std == (0.5, 0.5, 0.5)
    assert cfg.interpolation == "bilinear" and cfg.crop_pct == 0.95 and cfg.num_classes == 1000
    assert model(torch.zeros(1, *cfg.input_size)).shape == (1, 1000)
    tested = create_model("timm:resnet10t").default_cfg  # trained at 176, evaluated at its test size 224
    assert tested.input_size == (3, 224, 224) and tested.crop_pct == 0.95 and tested.interpolation == "bicubic"


def test_user_weights_load_and_a_mismatch_is_one_error(tmp_path):
    source = timm.create_model("test_resnet", pretrained=False, num_classes=10)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    model = create_model(TINY, tmp_path / "w.pth", num_classes=10)
    pairs = zip(model.state_dict().values(), source.state_dict().values(), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    with pytest.raises(CheckpointError):  # the 10-class checkpoint does not fit 1000 classes
        create_model(TINY, tmp_path / "w.pth")


def test_unknown_timm_name_is_a_config_error_with_suggestions():
    with pytest.raises(ConfigError, match="unknown timm model 'test_resnett'.*timm:"):
        create_model("timm:test_resnett")


def test_list_cost_and_eval_through_the_cli(tmp_path, capsys):
    assert main(["list", "timm:test_res*", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["models"] == [TINY]
    assert main(["cost", "--model", TINY, "--json"]) == 0
    cost = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert cost["input_size"] == [3, 160, 160] and cost["flops"] > 1e7
    torch.save(create_model(TINY).state_dict(), tmp_path / "w.pth")
    data = tmp_path / "data"
    for c in range(1000):  # class index = position among all 1000 class folders, empty ones included
        (data / f"c{c:04d}").mkdir(parents=True)
    from PIL import Image

    for i in range(2):
        Image.new("RGB", (40, 30), (60 * i, 90, 200)).save(data / f"c000{i}" / "x.png")
    assert main(["eval", "--model", TINY, "--weights", str(tmp_path / "w.pth"), "--data", str(data), "--workers", "0",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["n"] == 2


def test_missing_timm_is_one_line_exit_2(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "timm", None)  # any import of timm now fails
    assert main(["cost", "--model", TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'nascomp[timm]'" in err, err
