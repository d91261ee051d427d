"""Deployable output: packed integer weights, the frozen model, the artefact, ONNX/pt2 export and its check."""

from __future__ import annotations

import json
import subprocess
import sys

import onnx
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from nascomp.config import DFQ_PRESETS, DFQConfig, resolve
from nascomp.deploy import export_model, freeze, load_artefact, load_model, save_artefact
from nascomp.deploy.frozen import QuantizedWeight
from nascomp.deploy.onnx import check_parity, export_onnx, export_pt2, onnx_sessions
from nascomp.deploy.packing import pack, packed_size, unpack
from nascomp.dfq import run_dfq
from nascomp.models import create_model
from nascomp.quant import freeze_ranges, quantize_model, set_observing
from nascomp.quant.binary import BinaryConv2d, set_binary_stage

CLI = [sys.executable, "-m", "nascomp"]


def calibrated_student(bits: int, seed: int = 0) -> torch.nn.Module:
    """A CIFAR ResNet-20 (random weights) quantized at W``bits``A``bits``, ranges calibrated on noise."""
    torch.manual_seed(seed)
    student = quantize_model(create_model("cifar_resnet20").eval(), bits, bits, "mse", "mse")
    set_observing(student, True)
    with torch.no_grad():
        student(torch.randn(32, 3, 32, 32))
    freeze_ranges(student)
    return student.eval()


def binary_net(name: str = "cifar_birealnet20") -> torch.nn.Module:
    """A fully binary network (stage 3) with BN statistics and, for multi-base nets, learned shifts and scales
    that are not their initial values."""
    torch.manual_seed(0)
    model = create_model(name)
    with torch.no_grad():
        for pname, p in model.named_parameters():
            if pname.endswith(("shifts", "betas", "scales")):
                p.add_(0.2 * torch.randn_like(p))
    set_binary_stage(model, 3)
    with torch.no_grad():  # BN statistics that are not the identity
        model.train()(torch.randn(16, 3, 32, 32))
    return model.eval()


@settings(max_examples=60, deadline=None)
@given(bits=st.sampled_from([1, 2, 3, 4, 5, 8]), shape=st.lists(st.integers(1, 7), min_size=1, max_size=4),
       seed=st.integers(0, 1000))
def test_packing_round_trips_to_the_same_integers(bits, shape, seed):
    gen = torch.Generator().manual_seed(seed)
    if bits == 1:
        q = (torch.randint(0, 2, shape, generator=gen) * 2 - 1).to(torch.int8)
    else:
        q = torch.randint(0, 2**bits, shape, generator=gen).to(torch.uint8)
    data = pack(q, bits)
    assert data.dtype == torch.uint8 and data.numel() == packed_size(q.numel(), bits)
    assert torch.equal(unpack(data, bits, shape), q)


def test_packing_takes_four_bits_per_low_bit_weight_and_one_per_binary_weight():
    assert packed_size(1000, 4) == packed_size(1000, 2) == 500 and packed_size(1000, 1) == 125
    assert packed_size(1000, 8) == 1000 and packed_size(3, 4) == 2
    assert pack(torch.tensor([1, 2], dtype=torch.uint8), 4).tolist() == [0x21]  # first weight in the low nibble
    with pytest.raises(ValueError):
        pack(torch.tensor([16], dtype=torch.uint8), 4)


@pytest.mark.parametrize("bits", [4, 8, 2])
def test_frozen_model_computes_exactly_what_the_student_computes(bits):
    student = calibrated_student(bits)
    frozen = freeze(student)
    weights = [m for m in frozen.modules() if isinstance(m, QuantizedWeight)]
    assert len(weights) == 20 and all(w.q.dtype == torch.uint8 and int(w.q.max()) < 2**bits for w in weights)
    x = torch.randn(8, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(frozen(x), student(x))


def test_frozen_binary_network_equals_the_binary_network():
    model = binary_net()
    frozen = freeze(model)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(frozen(x), model(x))
    weights = [m for m in frozen.modules() if isinstance(m, QuantizedWeight)]
    assert weights and all(set(w.q.unique().tolist()) <= {-1, 1} for w in weights)


@pytest.mark.parametrize("name", ["cifar_abcnet20_m3n3", "cifar_groupnet20_k4"])
def test_frozen_multi_base_network_equals_the_network(name):
    model = binary_net(name)
    frozen = freeze(model)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(frozen(x), model(x))
    planes = [m for m in frozen.modules() if isinstance(m, QuantizedWeight)]
    assert planes and all(set(w.q.unique().tolist()) <= {-1, 1} for w in planes)
    binary = [m for m in model.modules() if isinstance(m, BinaryConv2d)]
    assert len(planes) == sum(getattr(m, "weight_bases", 1) for m in binary)  # ABC-Net: M planes per layer


def test_freeze_refuses_an_uncalibrated_student():
    from nascomp.errors import ExportError

    student = quantize_model(create_model("cifar_resnet20"), 4, 4)
    with pytest.raises(ExportError, match="calibrate"):
        freeze(student)


@pytest.mark.parametrize("make,kind", [(lambda: calibrated_student(4), "dfq-student"), (binary_net, "nasb-network")])
def test_artefact_round_trips_both_forms_exactly_and_is_low_bit_on_disk(tmp_path, make, kind):
    model = make()
    save_artefact(model, tmp_path, kind)
    spec = json.loads((tmp_path / "model.json").read_text())
    assert spec["kind"] == kind and spec["architecture"]["builder"] == "registry"
    frozen, trainable = load_artefact(tmp_path), load_artefact(tmp_path, trainable=True)
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(frozen(x), freeze(model)(x))
        assert torch.allclose(trainable(x), model(x), atol=1e-5)
    assert type(trainable.get_submodule(next(iter(spec["layers"])))).__name__ in ("QuantConv2d", "BinaryConv2d")
    fp32_bytes = 4 * sum(p.numel() for p in model.parameters())
    assert (tmp_path / "model.safetensors").stat().st_size < 0.3 * fp32_bytes


def test_a_damaged_artefact_is_one_clear_error(tmp_path):
    from nascomp.errors import CheckpointError

    save_artefact(calibrated_student(4), tmp_path, "dfq-student")
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="could not be read"):
        load_artefact(tmp_path)
    (tmp_path / "model.json").write_text('{"format": "nascomp-model", "version": 1}')
    with pytest.raises(CheckpointError, match="lacks"):
        load_artefact(tmp_path)


def _initializer_types(path) -> set[int]:
    return {i.data_type for i in onnx.load(str(path)).graph.initializer}


@pytest.mark.parametrize("name", ["w4a4", "w3a3", "w8a8", "binary", "abcnet", "groupnet", "float"])
def test_onnx_export_agrees_with_pytorch_in_onnxruntime(tmp_path, name):
    model = {"w4a4": lambda: calibrated_student(4), "w3a3": lambda: calibrated_student(3),
             "w8a8": lambda: calibrated_student(8), "binary": binary_net,
             "abcnet": lambda: binary_net("cifar_abcnet20_m3n3"), "groupnet": lambda: binary_net("cifar_groupnet20_k4"),
             "float": lambda: create_model("cifar_resnet20").eval()}[name]()
    frozen = freeze(model)
    path = export_onnx(frozen, tmp_path / "m.onnx")
    torch.manual_seed(1)
    images = torch.randn(24, 3, 32, 32)
    with torch.no_grad():
        logits = model(images)
    labels = logits.argmax(1)
    report = check_parity(frozen, path, [(images[:16], labels[:16]), (images[16:], labels[16:])])
    assert report.images == 24 and report.agreement == 100.0 and report.torch_top1 == 100.0
    assert set(report.optimisations) == {"off", "all"}
    if name in ("float", "binary"):
        assert report.max_abs_diff < 1e-4 * float(logits.abs().max())
    else:  # float sums differ in the last bits between onnxruntime's kernels (and its fusions) and PyTorch's, so a
        # quantizer rounds a near-tie, or one of ABC-Net's N shifted signs meets its threshold, the other way on some
        # images (which ones depends on the CPU's kernels); most images must come out the same up to float noise
        for mode, session in onnx_sessions(path).items():  # unoptimised and fully optimised
            out = torch.from_numpy(session.run(None, {"image": images.numpy()})[0])
            same = ((out - logits).abs().amax(1) < 1e-3 * float(logits.abs().max())).float().mean()
            assert same >= 0.5, mode
    nodes = {n.op_type for n in onnx.load(str(path)).graph.node}
    if name.startswith("w"):
        assert {"QuantizeLinear", "DequantizeLinear"} <= nodes and ("Clip" in nodes) == (name != "w8a8")
        packed = onnx.TensorProto.UINT8 if name == "w8a8" else onnx.TensorProto.UINT4
        assert packed in _initializer_types(path)  # integer weights in the file, not float ones
    if name in ("binary", "abcnet", "groupnet"):
        assert onnx.TensorProto.INT4 in _initializer_types(path)


def test_pt2_export_reloads_and_matches(tmp_path):
    frozen = freeze(calibrated_student(4))
    path = export_pt2(frozen, tmp_path / "m.pt2")
    program = torch.export.load(str(path))
    x = torch.randn(5, 3, 32, 32)  # another batch size than the traced one
    with torch.no_grad():
        assert torch.equal(program.module()(x), frozen(x))


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "dfq"
    cfg = resolve(DFQConfig, DFQ_PRESETS, "demo", dict(gen_steps=10, calib_size=128, epochs=1, batch_size=32))
    metrics = run_dfq(cfg, out=str(out), quiet=True)
    return out, metrics


def test_load_gives_back_the_run_students_accuracy(demo_run):
    from nascomp.dfq.evaluate import evaluate_checkpoint

    run, metrics = demo_run
    model = load_model(run)
    assert type(model.features[3]).__name__ == "FrozenConv2d"
    assert evaluate_checkpoint(None, str(run), "demo").top1 == pytest.approx(metrics["dfq_top1"])


def test_cli_export_checks_onnxruntime_and_prints_one_json_object(demo_run, tmp_path):
    run, _ = demo_run
    out = subprocess.run([*CLI, "export", str(run), "--output", str(tmp_path / "s.onnx"), "--check", "demo",
                          "--check-limit", "100", "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["agreement"] == 100.0 and result["images"] == 100 and result["ok"]
    assert {"torch_top1", "onnx_top1", "max_abs_diff", "path"} <= set(result)


def test_api_export_writes_into_the_run_folder_by_default(demo_run):
    run, _ = demo_run
    result = export_model(run, format="pt2")
    assert result["path"] == str(run / "model.pt2") and (run / "model.pt2").is_file()


def test_cli_cost_of_a_run_counts_its_bits(demo_run):
    run, _ = demo_run
    out = subprocess.run([*CLI, "cost", str(run), "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    record = json.loads(out.stdout)
    assert record["bops"] > 0 and record["compression"] > 4 and record["uncounted"] == []


@pytest.mark.parametrize("args,message", [
    (["export", "{run}", "--format", "pt2", "--check", "demo"], "needs --format onnx"),
    (["export", "{missing}"], "holds no saved model"),
    (["export"], "give a run folder"),
    (["export", "--model", "cifar_resnet20"], "needs --output"),
])
def test_cli_export_bad_input_is_one_line_and_exit_2(demo_run, tmp_path, args, message):
    run, _ = demo_run
    argv = [a.format(run=run, missing=tmp_path / "nothing") for a in args]
    out = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_layers_that_cost_counting_skips_are_named():
    from nascomp.deploy.api import uncounted_layers

    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.LayerNorm(8),
                                torch.nn.MultiheadAttention(8, 2))
    assert uncounted_layers(model) == ["2", "3"]  # LayerNorm and attention's own projection weights
    assert uncounted_layers(create_model("cifar_resnet20")) == []


@pytest.mark.parametrize("which", ["gdfq", "autorecon-cifar10-resnet20"])
def test_a_generator_is_an_artefact_of_its_own(tmp_path, which):
    from nascomp.recon import GDFQGenerator, generator_from_genotype

    cfg = create_model("cifar_resnet20").default_cfg
    torch.manual_seed(0)
    generator = (GDFQGenerator(10, cfg.input_size) if which == "gdfq"
                 else generator_from_genotype(which, 10, cfg.input_size))
    with torch.no_grad():  # BN statistics of its own
        generator.train()(*generator.sample_latent(16))
    save_artefact(generator.eval(), tmp_path, "generator", stem="generator", cfg=cfg)
    again = load_artefact(tmp_path, stem="generator")
    z, y = generator.sample_latent(4)
    with torch.no_grad():
        assert torch.equal(again(z, y), generator(z, y))
    assert json.loads((tmp_path / "generator.json").read_text())["kind"] == "generator"
