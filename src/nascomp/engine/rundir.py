"""One folder per run: resolved ``config.yaml``, ``log.txt``, ``checkpoint.pt`` (atomic), ``metrics.json``.

A run folder is recognised by the marker file nascomp writes into it (``.nascomp-run``), never by a file
name a user may also have. A folder that already holds a run is never overwritten without ``force``, and
``force`` moves the old run aside, removing it only once the new run has written its first checkpoint (a new
run that fails before that gives the old one back);
``resume`` reopens one and refuses it when its config differs from the one asked for (other than the keys
that may change on resume). Checkpoints hold tensors and plain data only and are loaded with
``torch.load(weights_only=True)``, so resuming a folder someone sent you cannot run their code.

Under torchrun only rank 0 writes (``writer=False`` elsewhere: every write is skipped).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from tqdm.auto import tqdm

from ..errors import CheckpointError, RunDirError

RESUME_MAY_CHANGE = {"out", "resume", "force", "device", "json", "quiet"}
RUN_MARKER = ".nascomp-run"
# the command that continues a run of each job (the marker's "job")
JOB_COMMANDS = {"dfq": "nascomp dfq", "search-generator": "nascomp search-generator",
                "nasb-search": "nascomp nasb search", "nasb-train": "nascomp nasb train"}


def default_run_path(job: str) -> Path:
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{job}"


class RunDir:
    def __init__(self, path: Path, writer: bool = True):
        self.path = path
        self.writer = writer
        self.replaced: Path | None = None  # --force: the old run, moved aside until this one has a checkpoint
        self.log = logging.getLogger(f"nascomp.run.{path}")

    @classmethod
    def create(cls, out: str | Path | None, job: str, config: dict, force: bool = False) -> RunDir:
        path = Path(out) if out else default_run_path(job)
        if path.exists() and not path.is_dir():
            raise RunDirError(f"output {path} exists and is a file; choose another --out")
        if path.is_dir() and any(path.iterdir()):
            if not force:
                raise RunDirError(f"output {path} already holds files; use --resume {path} to continue it, "
                                  "--force to overwrite it, or another --out")
            if not (path / RUN_MARKER).is_file():
                raise RunDirError(f"output {path} is not a nascomp run folder; --force only overwrites run folders")
            replaced = path.with_name(f".{path.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            os.replace(path, replaced)
        else:
            replaced = None
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / ".write-test"
            probe.write_text("")
            probe.unlink()
        except OSError as e:
            raise RunDirError(f"cannot write to output {path} ({e.strerror}); choose a writable --out") from None
        run = cls(path)
        run.replaced = replaced
        run.write_json(RUN_MARKER, {"job": job})
        run.write_yaml("config.yaml", config)
        run._open_log()
        return run

    def discard(self) -> None:
        """Remove a run folder this process has just created (a run that failed before its first step); the
        run it was to replace (``--force``) comes back."""
        self.close()
        if self.writer and (self.path / RUN_MARKER).is_file():
            shutil.rmtree(self.path, ignore_errors=True)
            if self.replaced is not None:
                os.replace(self.replaced, self.path)
                self.replaced = None

    @classmethod
    def resume(cls, path: str | Path, config: dict, defaults: dict | None = None, job: str | None = None) -> RunDir:
        """Reopen the run folder ``path`` of a ``job`` run for ``config``; a key its config.yaml lacks (an option
        added since it was written) matches when ``config`` holds that option's value in ``defaults``."""
        path = Path(path)
        saved = {**(defaults or {}), **saved_config(path, job)}
        diff = sorted(k for k in set(saved) | set(config)
                      if k not in RESUME_MAY_CHANGE and saved.get(k) != config.get(k))
        if diff:
            k = diff[0]
            raise RunDirError(f"--resume {path}: that run used another config ({k}: {saved.get(k)!r} there, "
                              f"{config.get(k)!r} now); drop that option (--resume alone takes the run's own) or start a new --out")
        remove_orphans(path)
        run = cls(path)
        run._open_log()
        return run

    @classmethod
    def follower(cls, path: Path) -> RunDir:
        """The view of rank > 0 under torchrun: same folder, writes nothing."""
        return cls(path, writer=False)

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
        if not self.writer:
            return
        self.log.info(message)
        if echo:
            tqdm.write(message, file=sys.stderr)

    def close(self) -> None:
        for h in list(self.log.handlers):
            h.close()
            self.log.removeHandler(h)

    def write_yaml(self, name: str, data: dict) -> None:
        if self.writer:
            atomic_write_text(self.path / name, yaml.safe_dump(data, sort_keys=False))

    def write_json(self, name: str, data: Any) -> None:
        """Strict JSON (non-finite floats written as null, which every parser reads)."""
        if self.writer:
            atomic_write_text(self.path / name, json.dumps(_finite(data), indent=2, allow_nan=False) + "\n")

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def save_checkpoint(self, state: dict) -> None:
        """Write the checkpoint; the first one of a ``--force`` run removes the run it replaces."""
        if self.writer:
            atomic_torch_save(state, self.checkpoint_path)
            if self.replaced is not None:
                shutil.rmtree(self.replaced, ignore_errors=True)
                self.replaced = None

    def load_checkpoint(self) -> dict | None:
        """The checkpoint as saved (None when the run has none yet); only tensors and plain data are read."""
        if not self.checkpoint_path.is_file():
            return None
        try:
            with warnings.catch_warnings():  # torch warns about foreign pickle protocols: the error line says it
                warnings.simplefilter("ignore")
                ckpt = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle.UnpicklingError for foreign objects, RuntimeError/EOFError when damaged
            raise CheckpointError(f"--resume {self.path}: checkpoint.pt is damaged or holds more than tensors and "
                                  f"plain data ({type(e).__name__}); it was not loaded; start a new --out") from None
        if not isinstance(ckpt, dict):
            raise CheckpointError(f"--resume {self.path}: checkpoint.pt is not a nascomp checkpoint; start a new --out")
        return ckpt


def saved_config(path: str | Path, job: str | None = None) -> dict:
    """The resolved config a run folder was started with (its ``config.yaml``); one line when ``path`` holds no
    run of nascomp, a run of another job than ``job`` (when given), or a config that cannot be read."""
    path = Path(path)
    if not (path / RUN_MARKER).is_file() or not (path / "config.yaml").is_file():
        raise RunDirError(f"--resume {path}: no run folder of nascomp there (no {RUN_MARKER} marker); pass a "
                          "folder a run of this version created")
    if job is not None:
        try:
            found = json.loads((path / RUN_MARKER).read_text()).get("job")
        except (json.JSONDecodeError, UnicodeDecodeError, OSError, AttributeError):
            found = None
        if found != job:
            hint = (f"continue it with {JOB_COMMANDS[found]} --resume {path}" if found in JOB_COMMANDS
                    else "start a new --out")
            raise RunDirError(f"--resume {path}: that folder holds a {found or 'unknown'} run, not a {job} run; "
                              f"{hint}")
    try:
        saved = yaml.safe_load((path / "config.yaml").read_text()) or {}
    except (yaml.YAMLError, UnicodeDecodeError, OSError) as e:
        raise RunDirError(f"--resume {path}: its config.yaml cannot be read ({type(e).__name__}); "
                          "start a new --out") from None
    if not isinstance(saved, dict):
        raise RunDirError(f"--resume {path}: its config.yaml is not a mapping; start a new --out")
    return saved


def _finite(data: Any) -> Any:
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {k: _finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [_finite(v) for v in data]
    return data


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text.encode()))


def atomic_torch_save(obj: Any, path: Path) -> None:
    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write(path: Path, write: Any) -> None:
    """``write(file)`` into a temporary file beside ``path``, fsync, then ``os.replace``: a crash or a full
    disk never leaves half a file under ``path`` (the previous version stays), and the temporary file is
    removed whatever happens. An OS error (disk full, no permission) becomes one line naming the path."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a run's files follow the user's umask
        os.replace(tmp, path)
    except OSError as e:
        free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0
        raise RunDirError(f"cannot write {path} ({e.strerror or e}; {free / 2**20:.0f} MiB free there); free some "
                          "space or fix the permissions, then --resume (the last complete checkpoint is kept)") from None
    except RuntimeError as e:  # torch.save reports a failed write of its zip file as a RuntimeError
        if "write" not in str(e) and "unexpected pos" not in str(e):
            raise
        free = shutil.disk_usage(path.parent).free
        raise RunDirError(f"cannot write {path} ({free / 2**20:.0f} MiB free there); free some space, then "
                          "--resume (the last complete checkpoint is kept)") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def remove_orphans(folder: Path) -> list[Path]:
    """Remove temporary files of writes that a killed process left behind (``.<name>.<random>``)."""
    names = {"checkpoint.pt", "metrics.json", "config.yaml", RUN_MARKER, "alpha_history.json"}
    orphans = [p for p in folder.glob(".*.*") if p.is_file() and any(p.name.startswith(f".{n}.") for n in names)]
    for p in orphans:
        p.unlink()
    return orphans
