"""One folder per run: resolved ``config.yaml``, ``log.txt``, ``checkpoint.pt`` (atomic), ``metrics.json``.

A folder that already holds a run is never overwritten without ``force``; ``resume`` reopens one and
refuses it when its config differs from the one asked for (other than the keys that may change on resume).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import torch
import yaml
from tqdm.auto import tqdm

from ..errors import RunDirError
from .seed import rng_state, set_rng_state

P = TypeVar("P")

RESUME_MAY_CHANGE = {"out", "resume", "force", "device", "json", "quiet"}
RUN_MARKER = "config.yaml"


class RunDir:
    def __init__(self, path: Path):
        self.path = path
        self.log = logging.getLogger(f"nascomp.run.{path}")

    @classmethod
    def create(cls, out: str | None, job: str, config: dict, force: bool = False) -> RunDir:
        path = Path(out) if out else Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{job}"
        if path.exists() and not path.is_dir():
            raise RunDirError(f"output {path} exists and is a file; choose another --out")
        if path.is_dir() and any(path.iterdir()):
            if not force:
                raise RunDirError(f"output {path} already holds files; use --resume {path} to continue it, "
                                  "--force to overwrite it, or another --out")
            if not (path / RUN_MARKER).is_file():
                raise RunDirError(f"output {path} is not a nascomp run folder; --force only overwrites run folders")
            shutil.rmtree(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise RunDirError(f"cannot write to output {path} ({e.strerror}); choose a writable --out") from None
        run = cls(path)
        run.write_yaml("config.yaml", config)
        run._open_log()
        return run

    @classmethod
    def resume(cls, path: str | Path, config: dict) -> RunDir:
        path = Path(path)
        if not (path / RUN_MARKER).is_file():
            raise RunDirError(f"--resume {path}: no run folder there (no {RUN_MARKER}); pass a folder a run created")
        saved = yaml.safe_load((path / RUN_MARKER).read_text()) or {}
        diff = sorted(k for k in set(saved) | set(config)
                      if k not in RESUME_MAY_CHANGE and saved.get(k) != config.get(k))
        if diff:
            k = diff[0]
            raise RunDirError(f"--resume {path}: that run used another config ({k}: {saved.get(k)!r} there, "
                              f"{config.get(k)!r} now); resume with the same options or start a new --out")
        run = cls(path)
        run._open_log()
        return run

    def _open_log(self) -> None:
        self.log.setLevel(logging.INFO)
        self.log.propagate = False
        for h in list(self.log.handlers):
            self.log.removeHandler(h)
        handler = logging.FileHandler(self.path / "log.txt")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        self.log.addHandler(handler)

    def note(self, message: str, echo: bool = True) -> None:
        """Write ``message`` to the run's log, and to the terminal (above any progress bar) when ``echo``."""
        self.log.info(message)
        if echo:
            tqdm.write(message)

    def close(self) -> None:
        for h in list(self.log.handlers):
            h.close()
            self.log.removeHandler(h)

    def write_yaml(self, name: str, data: dict) -> None:
        atomic_write_text(self.path / name, yaml.safe_dump(data, sort_keys=False))

    def write_json(self, name: str, data: Any) -> None:
        atomic_write_text(self.path / name, json.dumps(data, indent=2) + "\n")

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def save_checkpoint(self, state: dict) -> None:
        atomic_torch_save(state, self.checkpoint_path)

    def load_checkpoint(self) -> dict | None:
        if not self.checkpoint_path.is_file():
            return None
        return torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)

    def save_state(self, progress: Any, **parts: Any) -> None:
        """Checkpoint a pipeline: its ``progress`` dataclass, each part's ``state_dict()`` (plain data and None
        as they are) and the RNG state, so a resumed run draws the same numbers as an uninterrupted one."""
        states = {name: part.state_dict() if hasattr(part, "state_dict") else part for name, part in parts.items()}
        self.save_checkpoint({"progress": asdict(progress), "rng": rng_state(), **states})

    def load_state(self, progress_type: type[P], **parts: Any) -> tuple[P, dict] | None:
        """Load the checkpoint into ``parts`` (objects with ``load_state_dict``; None skipped), restore the RNG
        state and return (progress, the whole checkpoint for plain data); None when there is no checkpoint yet."""
        ckpt = self.load_checkpoint()
        if ckpt is None:
            self.log.info("no checkpoint yet: starting from the beginning")
            return None
        for name, part in parts.items():
            if part is not None and ckpt.get(name) is not None:
                part.load_state_dict(ckpt[name])
        set_rng_state(ckpt["rng"])
        return progress_type(**ckpt["progress"]), ckpt


def atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def atomic_torch_save(obj: Any, path: Path) -> None:
    """Write to a temporary file in the same folder, then ``os.replace``: a crash never leaves half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
