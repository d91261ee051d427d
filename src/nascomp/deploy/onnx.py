"""ONNX and ``torch.export`` programs of a frozen model (:mod:`.frozen`), and the onnxruntime parity check.

ONNX graph (opset 21, PyTorch's dynamo exporter with a translation table for nascomp's two custom ops):

* a b-bit activation becomes ``QuantizeLinear -> DequantizeLinear`` with a constant scale and a UINT8 zero
  point; for b < 8 a float ``Clip`` to the grid's end points comes first, so the integers are those of the
  b-bit grid (clipping to the end points, then saturating in the wider container, gives the same integers).
  Why not UINT4 for 4-bit activations: onnxruntime 1.32 runs UINT4 QuantizeLinear, but its ``ClipQuantFusion``
  graph optimisation fails on a ReLU/Clip followed by a UINT4 QuantizeLinear ("Unexpected data type for
  QuantizeLinear input y_zero_point of 21"), so such a file would only load with optimisations off;
* a b-bit weight is an integer initializer (UINT4 for 2-4 bits, two per byte in the file; UINT8 for 5-8;
  binary weights as INT4 {-1, +1} with zero point 0) read by ``DequantizeLinear`` with per-output-channel
  scales and zero points (axis 0); binary activations are ``sign`` (``Where(x >= 0, 1, -1)``).

The weights are cast to their ONNX type inside the graph by the exporter and folded into typed initializers
afterwards (:func:`finish_graph`), so the file holds the packed integers, not float weights.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ExportError
from .frozen import onnx_qdq

OPSET = 21


def _container(bits: int, signed: bool = False):
    from onnx_ir import DataType

    if signed:
        return DataType.INT4
    return DataType.UINT4 if bits <= 4 else DataType.UINT8


def _quantize_activation_onnx(x, scale: float, zero: int, bits: int):
    """QuantizeLinear/DequantizeLinear of one activation (module docstring)."""
    import numpy as np
    import onnx_ir as ir
    from onnxscript import opset21 as op

    qmax = 2**bits - 1
    if bits < 8:
        x = op.Clip(x, op.Constant(value_float=-zero * scale), op.Constant(value_float=(qmax - zero) * scale))
    s = op.Constant(value_float=scale)
    z = op.Constant(value=ir.Tensor(np.array(zero, dtype=np.uint8)))
    return op.DequantizeLinear(op.QuantizeLinear(x, s, z), s, z)


def _dequantize_weight_onnx(q, scale, zero, bits: int):
    """DequantizeLinear of an integer weight, per output channel (module docstring)."""
    from onnxscript import opset21 as op

    to = _container(bits, signed=bits == 1)
    return op.DequantizeLinear(op.Cast(q, to=to), scale, op.Cast(zero, to=to), axis=0)


TRANSLATIONS = {
    torch.ops.nascomp.quantize_activation.default: _quantize_activation_onnx,
    torch.ops.nascomp.dequantize_weight.default: _dequantize_weight_onnx,
}


def example_input(model: nn.Module, batch: int = 2) -> torch.Tensor:
    cfg = getattr(model, "default_cfg", None)
    if cfg is None:
        raise ExportError("the model has no input convention (default_cfg); build it with nascomp or pass input_size")
    device = next(iter(model.buffers()), torch.empty(0)).device
    return torch.zeros(batch, *cfg.input_size, device=device)


def _batch_dim() -> tuple[dict, ...]:
    return ({0: torch.export.Dim("batch", min=1, max=4096)},)


def export_pt2(frozen: nn.Module, path: str | Path) -> Path:
    """``torch.export`` program of ``frozen`` (dynamic batch), saved with ``torch.export.save``."""
    path = Path(path)
    program = torch.export.export(frozen.eval(), (example_input(frozen),), dynamic_shapes=_batch_dim())
    torch.export.save(program, str(path))
    return path


def finish_graph(model) -> None:
    """Replace ``Cast`` of an initializer by an initializer of the cast's type (packed INT4/UINT4 weights) and
    drop the exporter's per-node debugging metadata (Python stack traces: half the file of a small model)."""
    from onnx_ir.passes.common import RemoveUnusedNodesPass
    from onnxscript.optimizer import fold_constants

    fold_constants(model, input_size_limit=1 << 40, output_size_limit=1 << 40)
    RemoveUnusedNodesPass()(model)
    for node in model.graph.all_nodes():
        node.metadata_props.clear()


def export_onnx(frozen: nn.Module, path: str | Path) -> Path:
    """ONNX file of ``frozen`` (opset 21, dynamic batch, input ``image``, output ``logits``)."""
    import warnings

    path = Path(path)
    with onnx_qdq(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            frozen.eval(), (example_input(frozen),), input_names=["image"], output_names=["logits"],
            dynamic_shapes=_batch_dim(), dynamo=True, opset_version=OPSET,
            custom_translation_table=TRANSLATIONS, verbose=False, report=False)
    if program is None:
        raise ExportError("the ONNX exporter returned nothing")
    finish_graph(program.model)
    program.save(str(path))
    return path


@dataclass
class ParityReport:
    """PyTorch vs onnxruntime on the same images (``agreement``: % of images with the same top-1 class)."""

    path: str
    images: int
    torch_top1: float
    onnx_top1: float
    agreement: float
    max_abs_diff: float
    optimisations: dict  # per onnxruntime graph-optimisation level: its onnx_top1, agreement, max_abs_diff

    def to_dict(self) -> dict:
        return asdict(self)


def onnx_sessions(path: str | Path) -> dict:
    """onnxruntime CPU sessions of ``path`` with graph optimisations off and all on."""
    import onnxruntime as ort

    sessions = {}
    for name, level in (("off", ort.GraphOptimizationLevel.ORT_DISABLE_ALL),
                        ("all", ort.GraphOptimizationLevel.ORT_ENABLE_ALL)):
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        options.log_severity_level = 3
        sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return sessions


@torch.no_grad()
def check_parity(frozen: nn.Module, path: str | Path, batches) -> ParityReport:
    """Run ``frozen`` (PyTorch) and the ONNX file (onnxruntime, optimisations off, then on) on ``batches`` of
    ``(images, labels)`` and compare top-1, class agreement and the largest logit difference."""
    sessions = onnx_sessions(path)
    counts = {name: {"correct": 0, "agree": 0, "diff": 0.0} for name in sessions}
    correct, seen = 0, 0
    frozen = frozen.eval()
    for images, labels in batches:
        images = images.float().cpu()
        ref = frozen(images.to(example_input(frozen, 1).device)).float().cpu()
        correct += int((ref.argmax(1) == labels).sum())
        seen += len(labels)
        for name, session in sessions.items():
            out = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: images.numpy()})[0])
            counts[name]["correct"] += int((out.argmax(1) == labels).sum())
            counts[name]["agree"] += int((out.argmax(1) == ref.argmax(1)).sum())
            counts[name]["diff"] = max(counts[name]["diff"], float((out - ref).abs().max()))
    if seen == 0:
        raise ExportError("the check data held no images")
    levels = {name: {"onnx_top1": 100 * c["correct"] / seen, "agreement": 100 * c["agree"] / seen,
                     "max_abs_diff": c["diff"]} for name, c in counts.items()}
    worst = min(levels.values(), key=lambda v: (v["agreement"], -v["max_abs_diff"]))
    return ParityReport(str(path), seen, 100 * correct / seen, worst["onnx_top1"], worst["agreement"],
                        max(v["max_abs_diff"] for v in levels.values()), levels)


def file_mbytes(path: str | Path) -> float:
    return Path(path).stat().st_size / 2**20

