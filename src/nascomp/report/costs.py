"""The cost columns of a report: a DFQ run's saved student beside its full-precision model (counted now), or the
network a NASB run delivers (its ``cost.json`` / ``cost.txt``)."""

from __future__ import annotations

import json
from typing import Any

from .runfolder import RunFolder


def run_costs(run: RunFolder) -> tuple[dict[str, dict[str, Any]], str] | None:
    """({column: totals}, per-layer table) or None when the run has nothing to count."""
    if run.job == "dfq":
        return _student_costs(run)
    file = run.path / "cost.json"
    if not file.is_file():
        return None
    table = run.path / "cost.txt"
    name = "derived network (fully binary)" if run.job == "nasb-search" else "trained network"
    return {name: json.loads(file.read_text())}, table.read_text().rstrip() if table.is_file() else ""


def _student_costs(run: RunFolder) -> tuple[dict[str, dict[str, Any]], str] | None:
    from ..deploy.student import load_student
    from ..errors import UserError
    from ..quant.cost import FULL_PRECISION_BITS, count_cost, format_cost_table

    try:
        student = load_student(run.path)
    except UserError:  # no saved student, or one this installation cannot rebuild
        return None
    quantized = count_cost(student, tuple(student.default_cfg.input_size))
    macs = sum(layer.macs for layer in quantized.layers)  # the FP model: the same layers, every MAC a FLOP
    fp = {"params": quantized.params, "size_mbytes": quantized.params * FULL_PRECISION_BITS / 8 / 2**20,
          "flops": macs, "bops": 0, "ops": macs}
    label = f"W{run.config.get('wbits')}A{run.config.get('abits')} student"
    return {"full precision": fp, label: quantized.to_dict()}, format_cost_table(quantized)
