"""EfficientNet-Lite0: architecture, TF "SAME" padding, the shared checkpoint's keys, accuracy on the ImageNet
sample in ../shared (skipped where it is absent)."""

import time

import torch
from torch import nn

from nascomp.models import create_model, model_entry
from nascomp.models.checkpoint import read_state_dict
from nascomp.models.efficientnet_lite import SamePad, same_padding
from nascomp.quant.cost import count_cost
from shared_data import shared_path

LITE0_WEIGHTS = ("weights", "imagenet", "efficientnet-lite0-57934424.pth")
IMAGENET_SAMPLE = ("data", "imagenet-val1300", "val.tar.gz")


def test_builds_with_the_published_size_and_shape():
    model = create_model("efficientnet_lite0").eval()
    assert sum(p.numel() for p in model.parameters()) == 4_652_008  # 4.65 M, as published
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(bns) == 49 and all(m.eps == 1e-3 for m in bns)
    with torch.no_grad():
        assert model(torch.randn(2, 3, 224, 224)).shape == (2, 1000)
        assert model(torch.randn(1, 3, 65, 65)).shape == (1, 1000)  # any size: SAME padding follows the input


def test_config_carries_the_lite_preprocessing():
    cfg = create_model("efficientnet_lite0").default_cfg
    assert cfg.input_size == (3, 224, 224) and cfg.num_classes == 1000
    assert cfg.mean == (127 / 255,) * 3 and cfg.std == (128 / 255,) * 3
    assert cfg.interpolation == "bicubic" and round(224 / cfg.crop_pct) == 256
    assert create_model("cifar_resnet20").default_cfg.interpolation == "bilinear"  # others keep today's transform
    assert create_model("efficientnet_lite0", num_classes=10).default_cfg.interpolation == "bicubic"


def test_same_padding_puts_the_extra_zero_at_bottom_right():
    assert same_padding(224, 3, 2) == (0, 1) and same_padding(112, 5, 2) == (1, 2)
    assert same_padding(225, 3, 2) == (1, 1) and same_padding(56, 3, 1) == (1, 1)
    padded = SamePad(3, 2)(torch.ones(1, 1, 4, 4))
    assert padded.shape == (1, 1, 5, 5)
    assert padded[0, 0, 4].sum() == 0 and padded[0, 0, :, 4].sum() == 0 and padded[0, 0, :4, :4].min() == 1


def test_stem_of_the_model_sums_the_hand_checked_windows():
    """All-ones 3x3 stride-2 stem on a 4x4 all-ones image (3 channels): windows rows/cols {0,1,2} and {2,3,pad},
    so the outputs are 27, 18 / 18, 12; zeros on top/left instead would give 12, 18 / 18, 27."""
    model = create_model("efficientnet_lite0")
    with torch.no_grad():
        model._conv_stem.weight.fill_(1.0)
        out = model._conv_stem(model._stem_pad(torch.ones(1, 3, 4, 4)))[0, 0]
    assert out.tolist() == [[27.0, 18.0], [18.0, 12.0]]


def test_depthwise_convs_cost_macs_over_groups():
    model = create_model("efficientnet_lite0")
    layers = {row.name: row for row in count_cost(model, (3, 224, 224)).layers}
    dw = layers["_blocks.1._depthwise_conv"]  # 96 channels, 3x3, stride 2: 112 -> 56
    assert dw.macs == 96 * 3 * 3 * 56 * 56
    assert 0.38e9 < sum(r.macs for r in layers.values()) < 0.41e9  # EfficientNet-Lite0: about 0.4 G MACs


def test_state_dict_keys_equal_the_shared_checkpoints():
    state = read_state_dict(shared_path(*LITE0_WEIGHTS))
    model = model_entry("efficientnet_lite0").builder()
    assert set(model.state_dict()) == set(state)
    assert all(model.state_dict()[k].shape == v.shape for k, v in state.items())


# every 13th image of the sample in its sorted (class, file) order (100 images; all 1,300 take minutes on 2 busy
# cores); top-1 correct counted independently with torchvision (ImageFolder, Resize(256, bicubic),
# CenterCrop(224), ToTensor, Normalize(127/255, 128/255)) on torch 2.14.1 CPU: 75 here, 1,082 of all 1,300
# (83.23 %; nascomp's predictions equalled torchvision's on every one of the 1,300).
SUBSET = list(range(0, 1300, 13))
SUBSET_CORRECT = 75


def test_top1_on_a_fixed_subset_of_the_imagenet_sample_matches_torchvision():
    from nascomp.data import ImageBatches, open_images
    from nascomp.engine import evaluate

    imageset = open_images(str(shared_path(*IMAGENET_SAMPLE)))
    assert len(imageset) == 1300
    model = create_model("efficientnet_lite0", shared_path(*LITE0_WEIGHTS))
    imageset.files = [imageset.files[i] for i in SUBSET]
    imageset.labels = imageset.labels[SUBSET]
    start = time.perf_counter()
    acc = evaluate(model, ImageBatches(imageset, model.default_cfg, batch_size=50, workers=2))
    assert round(acc.top1 * acc.n / 100) == SUBSET_CORRECT, f"took {time.perf_counter() - start:.1f} s"
