"""Reading a finished run folder: its job, resolved config, metrics, per-stage curves and (while it exists)
its resume checkpoint. Every problem a user can cause is one :class:`RunDirError` line."""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml

from ..engine.run import CURVES_FILE
from ..engine.rundir import RUN_MARKER
from ..errors import RunDirError


@dataclass
class StageCurve:
    """One stage's rows (one per unit: epoch, step, block), float values only."""

    name: str
    unit: str
    rows: list[dict[str, float]]


@dataclass
class RunFolder:
    path: Path
    job: str
    config: dict[str, Any]
    metrics: dict[str, Any]
    _checkpoint: Any = field(default=False, repr=False)  # False: not read yet

    @classmethod
    def open(cls, path: str | Path) -> RunFolder:
        """The run in ``path``; refuses a folder that is not a run, or a run that has not finished."""
        path = Path(path)
        if not (path / RUN_MARKER).is_file():
            raise RunDirError(f"{path} is not a nascomp run folder (no {RUN_MARKER} marker); pass the --out folder "
                              "of a dfq, search-generator or nasb run")
        if not (path / "metrics.json").is_file():
            raise RunDirError(f"{path}: the run has not finished (no metrics.json); finish it with --resume {path}, "
                              "then report it")
        marker = _read_json(path / RUN_MARKER)
        config = _read_yaml(path / "config.yaml")
        return cls(path, str(marker.get("job", "run")), config, _read_json(path / "metrics.json"))

    def curves(self) -> list[StageCurve]:
        """Every stage's rows from ``curves.json``; for runs made before it existed, the recorded history."""
        if (self.path / CURVES_FILE).is_file():
            stages = _read_json(self.path / CURVES_FILE).get("stages", [])
            return [StageCurve(s["name"], s.get("unit", "unit"), s.get("rows", [])) for s in stages]
        rows = [{k: v for k, v in r.items() if isinstance(v, float)} for r in self.metrics.get("history", [])]
        return [StageCurve("history", "epoch", rows)] if rows else []

    @property
    def checkpoint(self) -> dict | None:
        """The resume checkpoint (tensors and plain data only), or None once it has been removed."""
        if self._checkpoint is False:
            self._checkpoint = None
            file = self.path / "checkpoint.pt"
            if file.is_file():
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        self._checkpoint = torch.load(file, map_location="cpu", weights_only=True)
                except Exception:  # damaged or foreign: the report simply goes without it
                    self._checkpoint = None
        return self._checkpoint


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise RunDirError(f"{path} cannot be read ({type(e).__name__}); is the run folder complete?") from None
    return data if isinstance(data, dict) else {}


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text()) if path.is_file() else {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise RunDirError(f"{path} cannot be read ({type(e).__name__}); is the run folder complete?") from None
    return data if isinstance(data, dict) else {}
