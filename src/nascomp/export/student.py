"""Saving and loading a quantized student: ``student.safetensors`` (weights and quantizer state) beside
``quant_spec.json`` (model name, bit widths, estimators and per-layer ranges), enough to rebuild it."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file, save_file
from torch import nn

from ..engine.rundir import atomic_write_text
from ..errors import CheckpointError
from ..models import create_model
from ..quant import mark_frozen, quant_spec, quantize_model
from ..quant.modules import SPEC_FORMAT

STUDENT_FILE, SPEC_FILE = "student.safetensors", "quant_spec.json"


def save_student(student: nn.Module, folder: Path) -> None:
    state = {k: v.detach().contiguous().cpu() for k, v in student.state_dict().items()}
    tmp = folder / f".{STUDENT_FILE}.tmp"
    save_file(state, str(tmp))
    tmp.replace(folder / STUDENT_FILE)
    atomic_write_text(folder / SPEC_FILE, json.dumps(quant_spec(student), indent=2) + "\n")


def is_student_folder(path: str | Path) -> bool:
    return (Path(path) / SPEC_FILE).is_file()


def load_student(folder: str | Path) -> nn.Module:
    """Rebuild the quantized student saved in ``folder`` (a DFQ run folder), ranges frozen, in eval mode."""
    folder = Path(folder)
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
