"""Loading any run back as a module, and exporting a model as ONNX or a ``torch.export`` program.

:func:`load_model` reads every kind of saved run (a DFQ student, a NASB network, a float model) and the
student folders written before the artefact format. :func:`export_model` freezes a model (:mod:`.frozen`),
writes the program and, given labelled data, checks onnxruntime against PyTorch on it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError, ConfigError, ExportError
from .artefact import is_artefact, load_artefact
from .frozen import freeze
from .onnx import check_parity, export_onnx, export_pt2, file_mbytes
from .student import is_student_folder, load_student

FORMATS = ("onnx", "pt2")
MIN_AGREEMENT = 99.9  # % of images on which onnxruntime and PyTorch must pick the same class


def load_model(run: str | Path, trainable: bool = False, model: nn.Module | None = None) -> nn.Module:
    """The model saved in run folder ``run``, in eval mode: the deployable (frozen) form, or with
    ``trainable`` the fake-quantized/binary student. ``model``: the float architecture of a model of your own."""
    run = Path(run)
    if is_artefact(run):
        return load_artefact(run, trainable=trainable, model=model)
    if is_student_folder(run):
        student = load_student(run)
        return student if trainable else freeze(student)
    if run.is_dir() and (run / "model.pt").is_file():
        raise CheckpointError(f"{run} was written before runs saved model.safetensors + model.json; rerun it "
                              "(or --resume it with --force) to write the artefact")
    raise CheckpointError(f"{run} holds no saved model (model.json + model.safetensors); pass a finished run folder")


def _check_batches(model: nn.Module, data: str, batch_size: int, workers: int | None, limit: int | None):
    from ..data import ImageBatches
    from ..dfq.sources import labelled_images

    cfg = model.default_cfg
    imageset = labelled_images(data, cfg, getattr(model, "model_name", None) or "the model")
    batches = ImageBatches(imageset, cfg, batch_size=batch_size, workers=workers)
    seen = 0
    for images, labels in batches:
        if limit is not None and seen >= limit:
            break
        keep = len(labels) if limit is None else min(len(labels), limit - seen)
        seen += keep
        yield images[:keep], labels[:keep]


def export_model(source: nn.Module | str | Path, path: str | Path | None = None, format: str = "onnx",
                 check: str | None = None, batch_size: int = 200, workers: int | None = None,
                 limit: int | None = None) -> dict:
    """Export ``source`` (a run folder or a module) as ``format`` to ``path`` (default: ``RUN/model.<format>``).

    With ``check`` (labelled data: ImageFolder, archive, ``demo``), runs onnxruntime (optimisations off and
    on) and PyTorch on the first ``limit`` images (all by default) and reports ``torch_top1``, ``onnx_top1``,
    ``agreement`` (%), ``max_abs_diff``; ``ok`` is False below 99.9 % agreement.
    """
    if format not in FORMATS:
        raise ConfigError(f"unknown export format {format!r}; choose one of {', '.join(FORMATS)}")
    if check is not None and format != "onnx":
        raise ConfigError("--check compares onnxruntime with PyTorch; it needs --format onnx")
    if isinstance(source, nn.Module):
        model = source
        if path is None:
            raise ConfigError("give the path to write the exported model to")
    else:
        model = load_model(source)
        path = Path(source) / f"model.{format}" if path is None else path
    frozen = freeze(model).cpu()
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path} is a folder; give a file name such as {path / ('model.' + format)}")
    try:
        (export_onnx if format == "onnx" else export_pt2)(frozen, path)
    except ExportError:
        raise
    except Exception as e:  # the exporters raise many types; the first line says what did not trace
        raise ExportError(f"{format} export failed: {type(e).__name__}: {str(e).splitlines()[0][:160]}") from None
    result: dict = {"path": str(path), "format": format, "mbytes": round(file_mbytes(path), 4)}
    if check is not None:
        with torch.no_grad():
            report = check_parity(frozen, path, _check_batches(frozen, check, batch_size, workers, limit))
        result.update(report.to_dict(), ok=report.agreement >= MIN_AGREEMENT, path=str(path))
    return result


COUNTED = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)


def uncounted_layers(model: nn.Module) -> list[str]:
    """Modules holding parameters of their own that cost counting (:mod:`nascomp.quant.cost`) does not count,
    e.g. attention's projection weights or LayerNorm."""
    return [name for name, m in model.named_modules()
            if not isinstance(m, COUNTED) and any(True for _ in m.parameters(recurse=False))]
