import re

import pytest
import torch

from nascomp.errors import CheckpointError, ConfigError
from nascomp.models import create_model, list_models
from nascomp.models.checkpoint import read_state_dict
from shared_data import shared_path, shared_weights


def test_registry_lists_the_cifar_resnets_and_the_demo_net():
    names = list_models()
    assert {"cifar_resnet20", "cifar_resnet32", "cifar_resnet44", "cifar_resnet56", "demo_net"} <= set(names)
    assert list_models("cifar_resnet5*") == ["cifar_resnet56"]


@pytest.mark.parametrize("depth,params", [(20, 0.27e6), (56, 0.85e6)])
def test_cifar_resnet_sizes_match_the_paper(depth, params):
    model = create_model(f"cifar_resnet{depth}")
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - params) / params < 0.02
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert model.default_cfg.mean == (0.485, 0.456, 0.406)


def test_unknown_model_is_a_config_error_with_suggestions():
    with pytest.raises(ConfigError, match="unknown model 'resnet20'.*cifar_resnet20"):
        create_model("resnet20")


def test_torchvision_models_build_without_weights():
    model = create_model("torchvision:resnet18")
    assert model.default_cfg.input_size == (3, 224, 224)
    with pytest.raises(ConfigError, match="unknown torchvision model"):
        create_model("torchvision:not_a_net")


@pytest.mark.parametrize("depth", [20, 32, 44, 56])
def test_every_shared_checkpoint_loads(depth):
    model = create_model(f"cifar_resnet{depth}", shared_weights(depth))
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 10)


@pytest.mark.parametrize("depth", [20, 56])
def test_resnets_classify_all_20_lossless_samples(depth):
    from nascomp.data.sources import load_image

    folder = shared_path("data", "cifar-lossless-samples")
    model = create_model(f"cifar_resnet{depth}", shared_weights(depth)).eval()
    files = sorted(folder.glob("cifar10_*.png"))
    assert len(files) == 20
    cfg = model.default_cfg
    x = torch.stack([load_image(f, 3) for f in files]).float() / 255
    x = (x - torch.tensor(cfg.mean).view(1, 3, 1, 1)) / torch.tensor(cfg.std).view(1, 3, 1, 1)
    labels = torch.tensor([int(re.search(r"_(\d+)\.png$", f.name).group(1)) for f in files])
    with torch.no_grad():
        assert torch.equal(model(x).argmax(1), labels)


def test_mismatched_checkpoint_names_counts_and_the_model_it_fits():
    with pytest.raises(CheckpointError, match=r"does not fit cifar_resnet56: 180 missing keys.*fits cifar_resnet20"):
        create_model("cifar_resnet56", shared_weights(20))


def test_module_prefix_and_nested_dicts_are_accepted(tmp_path):
    model = create_model("demo_net")
    path = tmp_path / "ck.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}, "epoch": 3}, path)
    loaded = create_model("demo_net", path)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in model.state_dict().items())


def test_safetensors_checkpoint_loads(tmp_path):
    from safetensors.torch import save_file

    model = create_model("demo_net")
    save_file(model.state_dict(), str(tmp_path / "w.safetensors"))
    create_model("demo_net", tmp_path / "w.safetensors")


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04broken zip"])
def test_corrupt_checkpoint_is_one_clear_error(tmp_path, content):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="could not be read"):
        read_state_dict(path)
    assert path.read_bytes() == content  # the user's file is untouched


def test_missing_checkpoint_and_non_state_dict(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        read_state_dict(tmp_path / "nope.pt")
    torch.save([1, 2, 3], tmp_path / "list.pt")
    with pytest.raises(CheckpointError, match="holds no state dict"):
        read_state_dict(tmp_path / "list.pt")
