"""Saving and loading a DFQ run's student: the artefact of :mod:`.artefact` (``model.safetensors`` with packed
integer weights + ``model.json``, kind ``dfq-student``). Run folders written before that format
(``student.safetensors`` with the latent FP32 weights + ``quant_spec.json``) still load."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file
from torch import nn

from ..errors import CheckpointError
from ..models import ModelCfg, create_model
from ..quant import mark_frozen, quant_spec, quantize_model
from ..quant.modules import SPEC_FORMAT
from .artefact import is_artefact, load_artefact, save_artefact

STUDENT_FILE, SPEC_FILE = "student.safetensors", "quant_spec.json"


def save_student(student: nn.Module, folder: Path) -> None:
    """Write the calibrated student as the run's artefact (kind ``dfq-student``, settings under ``quant``)."""
    spec = quant_spec(student)
    settings = {k: v for k, v in spec.items() if k not in ("format", "version", "model", "num_classes", "layers")}
    save_artefact(student, folder, "dfq-student", {"quant": settings})


def save_generator(generator: nn.Module, folder: Path, images: ModelCfg) -> None:
    """Write a trained generator beside the student (``generator.safetensors`` + ``generator.json``, kind
    ``generator``; ``images``: the convention of the images it makes, the teacher's)."""
    save_artefact(generator, folder, "generator", stem="generator", cfg=images)


def is_student_folder(path: str | Path) -> bool:
    """A folder holding a saved model of any kind (or a student in the format before the artefact)."""
    return is_artefact(path) or (Path(path) / SPEC_FILE).is_file()


def load_student(folder: str | Path) -> nn.Module:
    """The model saved in ``folder`` as its trainable (fake-quantized) form, ranges frozen, in eval mode."""
    folder = Path(folder)
    if is_artefact(folder):
        return load_artefact(folder, trainable=True)
    spec_path, weights = folder / SPEC_FILE, folder / STUDENT_FILE
    if not spec_path.is_file() or not weights.is_file():
        raise CheckpointError(f"{folder} holds no saved student ({SPEC_FILE} + {STUDENT_FILE}); pass a finished dfq run folder")
    try:
        spec = json.loads(spec_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{spec_path} is not valid JSON ({e.msg}, line {e.lineno})") from None
    if spec.get("format") != SPEC_FORMAT or spec.get("version") != 1:
        raise CheckpointError(f"{spec_path} is not a nascomp quantization spec (format {SPEC_FORMAT}, version 1)")
    model = create_model(spec["model"], num_classes=spec.get("num_classes"))
    student = quantize_model(model, spec["wbits"], spec["abits"], spec["weight_observer"], spec["act_observer"],
                             spec.get("quantize_image", False))
    try:
        student.load_state_dict(load_file(str(weights)))
    except (RuntimeError, OSError) as e:
        raise CheckpointError(f"{weights} does not fit its spec ({str(e).splitlines()[0][:100]})") from None
    mark_frozen(student)
    return student.eval()
