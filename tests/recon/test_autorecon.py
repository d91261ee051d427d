"""The AutoReCon generator space: ops, supernet, derived generators, genotypes (published and derived)."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nascomp.cli import main
from nascomp.errors import ConfigError
from nascomp.nas import Genotype, MixedOp, to_dot
from nascomp.recon import AUTORECON_SPACE as SPACE
from nascomp.recon import (
    AutoReConGenerator,
    AutoReConSupernet,
    load_genotype,
    published_genotypes,
    reconstruction_loss,
)
from nascomp.recon.autorecon import GEN_OPS, SCALE, ConditionalBatchNorm2d, UpEdge

PUBLISHED = ["autorecon-cifar10-resnet20", "autorecon-cifar100-resnet20", "autorecon-imagenet-resnet18"]


def _latent(gen, n: int = 4, seed: int = 0):
    torch.manual_seed(seed)
    return gen.sample_latent(n)


def test_space_declares_6_up_15_normal_12_cross_edges_with_the_published_op_order():
    assert SPACE.arch_shapes() == {"up": (6, 2), "normal": (15, 7), "cross": (12, 3)}
    assert SPACE.kinds["normal"].ops == ["none", "skip_connect", "conv_1x1", "conv_3x3", "conv_5x5",
                                         "dil_conv_3x3", "dil_conv_5x5"]
    assert SPACE.kinds["up"].ops == ["nearest", "bilinear"] and SPACE.kinds["cross"].ops == ["none", "nearest", "bilinear"]
    pairs = SPACE.kinds["normal"].edge_pairs()
    assert [pairs[f"cell1.e{i}"] for i in range(5)] == [
        ("cell1.n2", "cell1.n0"), ("cell1.n2", "cell1.n1"),
        ("cell1.n3", "cell1.n0"), ("cell1.n3", "cell1.n1"), ("cell1.n3", "cell1.n2")]
    cross = SPACE.kinds["cross"].edge_pairs()
    assert [cross[f"cell2.x{i}"] for i in range(6)] == [
        ("cell2.n2", "cell1.n0"), ("cell2.n2", "cell1.n1"), ("cell2.n2", "cell1.n2"),
        ("cell2.n3", "cell1.n0"), ("cell2.n3", "cell1.n1"), ("cell2.n3", "cell1.n2")]


@pytest.mark.parametrize("kind,op", [(k, op) for k, spec in SPACE.kinds.items() for op in spec.ops])
def test_every_op_gives_the_shape_of_its_edge(kind, op):
    module = GEN_OPS.build(op, channels=8, num_classes=3, scale=SCALE[kind])
    x, y = torch.randn(2, 8, 4, 5), torch.tensor([0, 2])
    side = SCALE[kind]
    assert module(x, y).shape == (2, 8, 4 * side, 5 * side)


@pytest.mark.parametrize("op", ["skip_connect", "conv_3x3", "dil_conv_5x5"])
def test_same_size_ops_refuse_an_upsampling_edge(op):
    with pytest.raises(ValueError, match="keeps the resolution"):
        GEN_OPS.build(op, channels=4, num_classes=2, scale=2)


def test_convs_use_same_padding_bias_and_dilation_two_for_dil_ops():
    for op, (k, d) in {"conv_1x1": (1, 1), "conv_3x3": (3, 1), "conv_5x5": (5, 1), "dil_conv_3x3": (3, 2),
                       "dil_conv_5x5": (5, 2)}.items():
        conv = GEN_OPS.build(op, channels=4, num_classes=2, scale=1).conv
        assert conv.kernel_size == (k, k) and conv.dilation == (d, d) and conv.bias is not None, op
    up = GEN_OPS.build("bilinear", channels=4, num_classes=2, scale=2)
    assert isinstance(up, UpEdge) and up.body.conv.kernel_size == (1, 1)


def test_conditional_bn_starts_as_plain_bn_and_then_depends_on_the_label():
    cbn = ConditionalBatchNorm2d(3, num_classes=2)
    x = torch.randn(4, 3, 5, 5)
    plain = nn.BatchNorm2d(3, affine=False)
    assert torch.allclose(cbn(x, torch.tensor([0, 1, 0, 1])), plain(x), atol=1e-6)
    with torch.no_grad():
        cbn.gamma.weight[1].fill_(2.0)
        cbn.beta.weight[1].fill_(0.5)
    out = cbn(x, torch.tensor([0, 1, 0, 1]))
    ref = plain(x)
    assert torch.allclose(out[0], ref[0], atol=1e-6) and torch.allclose(out[1], 2 * ref[1] + 0.5, atol=1e-5)


def test_mixed_op_with_one_hot_alphas_equals_the_chosen_op():
    torch.manual_seed(0)
    x, y = torch.randn(3, 8, 4, 4), torch.tensor([0, 1, 2])
    for kind in ("normal", "cross"):
        ops = SPACE.kinds[kind].ops
        mixed = MixedOp(ops, GEN_OPS, channels=8, num_classes=3, scale=SCALE[kind])
        for i, op in enumerate(ops):
            assert torch.equal(mixed(x, torch.eye(len(ops))[i], y), mixed.op(op)(x, y)), (kind, op)


def _one_hot_supernet_equals_derived(genotype: Genotype, image_shape=(3, 8, 8)) -> None:
    torch.manual_seed(0)
    supernet = AutoReConSupernet(10, image_shape, channels=8)
    derived = AutoReConGenerator(genotype, 10, image_shape, channels=8)
    state = supernet.state_dict()
    copied = {}
    for key in derived.state_dict():
        parts = key.split(".")
        if parts[0] == "cells":  # cells.<k>.edges.<local>.<rest> <- cells.<k>.edges.<local>.ops.<index>.<rest>
            kind = {"u": "up", "e": "normal", "x": "cross"}[parts[3][0]]
            op = genotype.chosen(kind)[f"cell{parts[1]}.{parts[3]}"]
            parts = parts[:4] + ["ops", str(SPACE.kinds[kind].ops.index(op))] + parts[4:]
        copied[key] = state[".".join(parts)]
    derived.load_state_dict(copied)
    one_hot = {kind: torch.eye(len(spec.ops))[[spec.ops.index(op) for op in genotype.ops(kind)]]
               for kind, spec in SPACE.kinds.items()}
    supernet.edge_weights = lambda: one_hot
    z, y = _latent(supernet)
    assert torch.allclose(supernet(z, y), derived(z, y), atol=1e-5)


@pytest.mark.parametrize("name", PUBLISHED)
def test_supernet_with_one_hot_alphas_computes_the_derived_generator(name):
    _one_hot_supernet_equals_derived(load_genotype(name))


@pytest.mark.parametrize("size,channels", [(8, 64), (32, 16), (28, 8), (224, 4)])
def test_supernet_output_has_the_image_shape(size, channels):
    """28 is not a multiple of 8: generated at 24, resized. Narrower widths only to stay fast."""
    gen = AutoReConSupernet(10, (3, size, size), channels=channels).eval()
    with torch.no_grad():
        out = gen(*_latent(gen, n=2))
    assert out.shape == (2, 3, size, size) and torch.isfinite(out).all()
    assert [fc.out_features for fc in gen.stem] == [channels * (size // 8 * 2**k) ** 2 for k in range(3)]
    assert [fc.in_features for fc in gen.stem] == [33, 33, 34]


def test_generators_expose_the_image_source_interface_and_train(demo_teacher):
    from nascomp.recon import BNStatistics

    torch.manual_seed(0)
    gen = AutoReConGenerator(load_genotype(PUBLISHED[0]), 10, (1, 8, 8))
    assert (gen.num_classes, gen.image_shape, gen.latent_dim, gen.trainable) == (10, (1, 8, 8), 100, True)
    z, y = gen.sample_latent(16)
    assert z.shape == (16, 100) and y.shape == (16,) and int(y.max()) < 10
    out = gen(z, y)
    assert out.shape == (16, 1, 8, 8)
    assert torch.allclose(out.mean((0, 2, 3)), torch.zeros(1), atol=1e-5)  # the last BN has no affine
    bns = BNStatistics(demo_teacher)
    loss, _ = reconstruction_loss(gen, demo_teacher, bns, z, y)
    loss.backward()
    assert all(p.grad is not None for p in gen.parameters())
    bns.remove()


def test_derive_and_json_round_trip(tmp_path):
    torch.manual_seed(0)
    gen = AutoReConSupernet(10, (1, 8, 8), channels=4)
    with torch.no_grad():
        gen.arch["normal"][3, 0] = 5.0  # none wins on cell0.e3
        gen.arch["cross"][0, 2] = 5.0  # bilinear on cell1.x0
    genotype = gen.derive(model="demo_net")
    assert genotype.chosen("normal")["cell0.e3"] == "none" and genotype.ops("cross")[0] == "bilinear"
    assert Genotype.from_json(genotype.to_json(), SPACE) == genotype
    genotype.save(tmp_path / "g.json")
    loaded = load_genotype(tmp_path / "g.json")
    assert loaded == genotype and loaded.meta == {"model": "demo_net"}
    edges = AutoReConGenerator(loaded, 10, (1, 8, 8), channels=4).cells[0].edges
    assert "e3" not in edges and "e2" in edges
    dot = to_dot(loaded, SPACE)
    assert '"generator/cell0.n1" -> "generator/cell0.n3" [label="none", style=dashed' in dot


EXPECTED = {  # from the description of the published genotypes
    "autorecon-cifar10-resnet20": dict(normal=14, cross=8, conv_1x1=1, conv_3x3=1, conv_5x5=2, dil_conv_3x3=3,
                                       dil_conv_5x5=7, bilinear=5, nearest=9),
    "autorecon-cifar100-resnet20": dict(normal=14, cross=8, conv_1x1=1, conv_3x3=0, conv_5x5=4, dil_conv_3x3=2,
                                        dil_conv_5x5=7, bilinear=5, nearest=9),
    "autorecon-imagenet-resnet18": dict(normal=15, cross=12, conv_1x1=0, conv_3x3=0, conv_5x5=1, dil_conv_3x3=3,
                                        dil_conv_5x5=11, bilinear=12, nearest=6),
}


@pytest.mark.parametrize("name", PUBLISHED)
def test_published_genotype_builds_a_generator_with_the_described_layers(name):
    want = EXPECTED[name]
    gen = AutoReConGenerator(load_genotype(name), 10, (3, 32, 32))
    per_kind = {kind: sum(1 for c in gen.cells for k in c.edges if k[0] == kind[0]) for kind in ("up", "e", "x")}
    assert per_kind == {"up": 6, "e": want["normal"], "x": want["cross"]}
    convs = [m for m in gen.modules() if isinstance(m, nn.Conv2d)]
    edge_convs = 6 + want["normal"] + want["cross"]
    assert len(convs) == edge_convs + 1  # + the head's 3x3 conv to the image
    assert all(c.in_channels == 64 for c in convs) and convs[-1].out_channels == 3
    assert sum(isinstance(m, ConditionalBatchNorm2d) for m in gen.modules()) == edge_convs + 1
    assert sum(isinstance(m, nn.Linear) for m in gen.modules()) == 3
    shapes = {op: (k, d) for op, k, d in [("conv_1x1", 1, 1), ("conv_3x3", 3, 1), ("conv_5x5", 5, 1),
                                          ("dil_conv_3x3", 3, 2), ("dil_conv_5x5", 5, 2)]}
    for op, (k, d) in shapes.items():
        n = sum(c.kernel_size == (k, k) and c.dilation == (d, d) for c in convs)
        assert n == want[op] + (6 + want["cross"] if op == "conv_1x1" else 0) + (op == "conv_3x3"), op
    modes = [m.mode for m in gen.modules() if isinstance(m, UpEdge)]
    assert (modes.count("bilinear"), modes.count("nearest")) == (want["bilinear"], want["nearest"])
    assert not any(isinstance(m, MixedOp) for m in gen.modules())


def test_published_genotypes_are_shipped_and_validated():
    assert published_genotypes() == PUBLISHED
    genotype = load_genotype("autorecon-cifar10-resnet20")
    assert genotype.ops("up") == ["nearest"] * 4 + ["bilinear", "nearest"]
    assert genotype.ops("cross")[:6] == ["none", "none", "bilinear", "none", "none", "nearest"]
    assert genotype.meta["model"] == "cifar_resnet20"


def _write(tmp_path, mutate) -> str:
    data = load_genotype("autorecon-cifar10-resnet20").to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    return str(path)


BAD = {
    "unknown op": (lambda d: d["edges"]["normal"][0].update(op="sep_conv_3x3"), "unknown op 'sep_conv_3x3'"),
    "wrong edge count": (lambda d: d["edges"]["cross"].pop(), "wrong edge count for kind 'cross'"),
    "wrong version": (lambda d: d.update(version=7), "genotype version 7 is not supported"),
    "other space": (lambda d: d.update(space="nasb"), "genotype is for space 'nasb'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_genotype_files_raise_one_clear_config_error(tmp_path, case):
    mutate, message = BAD[case]
    path = _write(tmp_path, mutate)
    with pytest.raises(ConfigError, match=message) as err:
        load_genotype(path)
    assert path in str(err.value) and "\n" not in str(err.value)


def test_unknown_published_name_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="unknown published genotype 'autorecon-mnist'.*autorecon-cifar10-resnet20"):
        load_genotype("autorecon-mnist")


TINY = ["--gen-steps", "5", "--calib-size", "64", "--epochs", "1", "--batch-size", "32", "--quiet"]


def test_dfq_runs_with_a_published_genotype_on_the_demo_teacher(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["dfq", "--generator", "autorecon-cifar10-resnet20", "--out", str(out), "--json", *TINY]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["generator"] == "autorecon-cifar10-resnet20" and metrics["search_seconds"] is None
    assert result["dfq_top1"] > 50 and metrics["calib_lr"] is not None


@pytest.mark.parametrize("case", [*BAD, "missing file", "unknown name", "unknown generator"])
def test_bad_genotypes_through_the_cli_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch, case):
    monkeypatch.chdir(tmp_path)
    spec = {"missing file": "nowhere/genotype.json", "unknown name": "autorecon-mnist",
            "unknown generator": "gdfq2"}.get(case) or _write(tmp_path, BAD[case][0])
    want = {"missing file": "genotype file not found", "unknown name": "unknown published genotype",
            "unknown generator": "unknown generator 'gdfq2'"}.get(case) or BAD[case][1]
    assert main(["dfq", "--generator", spec, *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err and want in err and err.startswith("nascomp dfq: error:")
