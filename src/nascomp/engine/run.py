"""The run engine: a run = folder + config + seed + device + stateful parts + a list of named stages.

A pipeline subclasses :class:`Run`: ``build()`` makes its parts (modules, optimizers, data), ``stages()``
lists its :class:`Stage` s, ``finish()`` writes its artefacts and returns its metrics. The engine does
the rest, the same way for every pipeline:

- opens the run folder (``--out``, ``--force``; ``--resume`` checks the config) before ``build()``, and
  removes a folder it has just created when ``build()`` refuses the input;
- runs each stage's units (epochs or steps) in order; after every ``checkpoint_every`` units and at the
  end of a stage it writes one atomic checkpoint: the engine's progress, the pipeline's ``Results``, the
  state of every part named in ``parts`` (``state_dict()`` of objects that have one, plain data otherwise),
  the parts of the stage in progress, and every rank's RNG state and ``rank_parts`` (what differs by rank);
- ``--resume`` restores all of it and continues at the first unfinished unit: a resumed run ends with the
  same numbers as an uninterrupted one;
- evaluates a stage every ``eval_every`` units and at its last, logs each unit's row, times the parts a
  pipeline wraps in :meth:`Run.timed`, shows a progress bar per stage, and stops at the first non-finite
  value of a row (:class:`~nascomp.errors.NumericalError`) with the last good checkpoint kept;
- with ``stop_after`` (``--stop-after SECONDS``), stops at the first checkpoint after that much wall time
  (:class:`Paused`), so a long run can be continued with ``--resume`` in the next short GPU lease;
- under torchrun (:mod:`.distributed`) seeds rank r > 0 from ``(seed, r)`` after ``build()``, writes only
  from rank 0, and refuses to resume with another number of processes;
- records every unit's float values per stage (``Progress.curves``), writes them to ``curves.json`` when the run
  ends (the report's loss curves), and refuses ``--resume`` of a finished run whose checkpoint was removed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from ..config import check_ranges, to_dict
from ..errors import Paused, RunDirError, UserError
from .device import resolve_device
from .distributed import (
    Dist,
    broadcast_from_main,
    gather_to_main,
    init_distributed,
    mean_over_ranks,
    rank_seed,
)
from .loop import check_finite
from .memory import keep_freed_memory
from .precision import parse as parse_precision
from .progress import fmt_losses, progress
from .rundir import RunDir
from .seed import rng_state, seed_everything, set_rng_state

CURVES_FILE = "curves.json"  # every stage's per-unit values (the report's loss curves), written when a run ends


def _nothing() -> None:
    return None


@dataclass
class Stage:
    """A named part of a run: ``units`` epochs (or steps), unit ``i`` done by ``run(i)`` -> its row."""

    name: str
    units: int
    run: Callable[[int], dict[str, Any]]
    begin: Callable[[], None] = _nothing  # before unit 0, and again when a run resumes inside the stage
    end: Callable[[], None] = _nothing  # after the last unit, before the stage's checkpoint
    evaluate: Callable[[], dict[str, float]] | None = None  # added to the row every eval_every units and at the last
    eval_every: int = 0
    checkpoint_every: int = 1
    parts: tuple[str, ...] = ()  # attributes saved only while this stage is in progress (e.g. its optimizer)
    record: bool = True  # rows go to the history and the log (False for stages of many small steps)
    unit: str = "epoch"


@dataclass
class Progress:
    """Where the run stands, and what it measured on the way (saved in every checkpoint)."""

    stage: int = 0  # index of the stage in progress
    unit: int = 0  # units of it done
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # wall time inside stages (units and evaluations), without checkpoint writes
    timing: dict[str, list[float]] = field(default_factory=dict)  # part -> [seconds, count]
    world_size: int = 1
    curves: dict[str, list[dict[str, float]]] = field(default_factory=dict)  # stage -> float values of each unit
    stage_seconds: dict[str, float] = field(default_factory=dict)  # stage -> wall time (begin, units, end, evaluations)


@dataclass
class NoResults:
    pass


class Run:
    """One run of a pipeline; ``run()`` returns the metrics also written to ``metrics.json``."""

    job: ClassVar[str] = "run"
    Results: ClassVar[type] = NoResults
    parts: ClassVar[tuple[str, ...]] = ()  # the same on every rank: saved once (rank 0's)
    rank_parts: ClassVar[tuple[str, ...]] = ()  # differ between ranks (e.g. generated images): saved per rank

    def __init__(self, cfg: Any, out: str | None = None, force: bool = False, resume: str | None = None,
                 quiet: bool = False, stop_after: float | None = None) -> None:
        self.cfg = self.check(check_ranges(cfg))
        keep_freed_memory()  # large tensors reuse freed memory instead of fresh pages from the kernel
        self.stop_after, self._started = stop_after, time.monotonic()
        self.device = resolve_device(cfg.device)
        self.dist: Dist = init_distributed(self.device.type)
        if self.dist.active and self.device.type == "cuda":
            self.device = torch.device("cuda", self.dist.local_rank)
            torch.cuda.set_device(self.device)
        self.quiet = quiet or not self.dist.is_main
        self.precision = parse_precision(getattr(cfg, "precision", "fp32"), self.device)  # autocast, channels-last
        seed_everything(cfg.seed)
        self.rundir = self._open_rundir(out, force, resume)
        self.progress = Progress(world_size=self.dist.world_size)
        self.results = self.Results()
        self._stage_state: dict[str, Any] = {}
        try:
            self.build()
        except UserError:
            if not resume:
                self.rundir.discard()
            raise
        if self.dist.rank > 0:
            seed_everything(rank_seed(cfg.seed, self.dist.rank))
        if resume:
            self._restore()

    # --- what a pipeline provides ------------------------------------------------------------------------
    def check(self, cfg: Any) -> Any:
        """Reject settings that cannot run (a ConfigError naming the fix); returns ``cfg``."""
        return cfg

    def build(self) -> None:
        """Make the parts (modules, optimizers, data) as attributes of the run."""

    def stages(self) -> list[Stage]:
        raise NotImplementedError

    def finish(self) -> dict[str, Any]:
        """Write the artefacts; return the metrics (the engine writes them to metrics.json)."""
        raise NotImplementedError

    # --- services for pipelines --------------------------------------------------------------------------
    def log(self, message: str) -> None:
        self.rundir.note(message, echo=not self.quiet)

    def timed(self, part: str, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, its wall time added to ``part`` (reported as seconds per call)."""
        t0 = time.perf_counter()
        out = fn(*args)
        seconds, count = self.progress.timing.get(part, [0.0, 0])
        self.progress.timing[part] = [seconds + time.perf_counter() - t0, count + 1]
        return out

    def seconds_per_call(self) -> dict[str, float]:
        return {part: round(sec / max(n, 1), 4) for part, (sec, n) in self.progress.timing.items()}

    @property
    def seconds(self) -> float:
        return round(self.progress.seconds, 2)

    # --- the engine --------------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        stages = self.stages()
        try:
            while self.progress.stage < len(stages):
                self._run_stage(stages[self.progress.stage])
            metrics = {**self.finish(), "stage_seconds": {k: round(v, 2) for k, v in self.progress.stage_seconds.items()}}
            self.rundir.write_json("metrics.json", metrics)
            self.rundir.write_json(CURVES_FILE, {"stages": [
                {"name": s.name, "unit": s.unit, "rows": self.progress.curves.get(s.name, [])} for s in stages]})
            return metrics
        finally:
            self.rundir.close()

    def _run_stage(self, stage: Stage) -> None:
        pg = self.progress
        clock = time.perf_counter()
        stage.begin()
        for name in stage.parts:
            if name in self._stage_state:
                self._load_part(name, self._stage_state.pop(name))
        bar = progress(range(pg.unit, stage.units), stage.name, stage.units, self.quiet, initial=pg.unit)
        for unit in bar:
            t0 = time.perf_counter()
            row = self.run_unit(stage, unit)
            last = unit + 1 == stage.units
            if stage.evaluate is not None and (last or (stage.eval_every and (unit + 1) % stage.eval_every == 0)):
                row.update(stage.evaluate())
            pg.seconds += time.perf_counter() - t0
            row = mean_over_ranks(row)
            check_finite(row, f"stage {stage.name}, {stage.unit} {unit + 1}")
            pg.curves.setdefault(stage.name, []).append({k: v for k, v in row.items() if isinstance(v, float)})
            bar.set_postfix(fmt_losses({k: v for k, v in row.items() if isinstance(v, float)}))
            if stage.record:
                pg.history.append(row)
                self.log(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
            pg.unit = unit + 1
            if not last and (unit + 1) % stage.checkpoint_every == 0:
                clock = self._clock_stage(stage, clock)
                self.checkpoint(stage.parts)
                self._pause_if_due()
        stage.end()
        self._clock_stage(stage, clock)
        pg.stage, pg.unit = pg.stage + 1, 0
        self.checkpoint()
        self._pause_if_due()

    def _clock_stage(self, stage: Stage, since: float) -> float:
        """Add the wall time since ``since`` to the stage's seconds (saved with the next checkpoint); returns now."""
        now = time.perf_counter()
        self.progress.stage_seconds[stage.name] = self.progress.stage_seconds.get(stage.name, 0.0) + now - since
        return now

    def _pause_if_due(self) -> None:
        """After a checkpoint: stop the run (:class:`Paused`) once it has run ``stop_after`` seconds."""
        if self.stop_after is None:
            return
        if broadcast_from_main(time.monotonic() - self._started >= self.stop_after):
            self.rundir.close()
            raise Paused(f"paused after {time.monotonic() - self._started:.0f} s (--stop-after {self.stop_after:g}) "
                         f"at stage {self.progress.stage + 1}, {self.progress.unit} unit(s) done; continue with "
                         f"--resume {self.rundir.path}")

    def run_unit(self, stage: Stage, unit: int) -> dict[str, Any]:
        """Unit ``unit`` of ``stage`` (the seam where a test interrupts a run)."""
        return stage.run(unit)

    def checkpoint(self, stage_parts: tuple[str, ...] = ()) -> None:
        """One atomic checkpoint of the progress, results, parts, and every rank's RNG state and rank parts."""
        ranks = gather_to_main({"rng": rng_state(), "parts": {name: self._part_state(name) for name in self.rank_parts}})
        if not self.dist.is_main:
            return
        self.rundir.save_checkpoint({
            "progress": asdict(self.progress), "results": to_dict(self.results), "ranks": ranks,
            "parts": {name: self._part_state(name) for name in self.parts},
            "stage_parts": {name: self._part_state(name) for name in stage_parts},
        })

    def _part_state(self, name: str) -> Any:
        part = getattr(self, name)
        return part.state_dict() if hasattr(part, "state_dict") else part

    def _load_part(self, name: str, state: Any) -> None:
        part = getattr(self, name, None)
        if hasattr(part, "load_state_dict"):
            if state is not None:
                part.load_state_dict(state)
        else:
            setattr(self, name, state)

    def _restore(self) -> None:
        ckpt = broadcast_from_main(self.rundir.load_checkpoint() if self.dist.is_main else None)
        if ckpt is None:
            self.log("no checkpoint yet: starting from the beginning")
            return
        saved = Progress(**ckpt["progress"])
        if saved.world_size != self.dist.world_size:
            raise RunDirError(f"--resume {self.rundir.path}: that run ran {saved.world_size} process(es), this one "
                              f"{self.dist.world_size}; resume it with torchrun --nproc-per-node {saved.world_size}")
        self.progress = saved
        self.results = self.Results(**ckpt["results"])
        for name, state in ckpt["parts"].items():
            self._load_part(name, state)
        self._stage_state = dict(ckpt["stage_parts"])
        mine = ckpt["ranks"][self.dist.rank]
        for name, state in mine["parts"].items():
            self._load_part(name, state)
        set_rng_state(mine["rng"])
        self.log(f"resumed at stage {self.progress.stage + 1}, {self.progress.unit} unit(s) done")

    def _open_rundir(self, out: str | None, force: bool, resume: str | None) -> RunDir:
        """Rank 0 creates or reopens the folder; every rank learns its path, or the same one-line error."""
        outcome: tuple[str, str]
        if self.dist.is_main:
            try:
                config = to_dict(self.cfg)
                defaults = to_dict(type(self.cfg)())  # options added after a run folder was written
                rundir = (RunDir.resume(resume, config, defaults, self.job) if resume
                          else RunDir.create(out, self.job, config, force))
                if resume and (rundir.path / "metrics.json").is_file() and not rundir.checkpoint_path.is_file():
                    rundir.close()
                    raise RunDirError(f"--resume {resume}: that run has finished (metrics.json, report.md) and its "
                                      "resume checkpoint was removed (--keep-checkpoint keeps it); start a new --out")
                outcome = ("ok", str(rundir.path))
            except UserError as e:
                outcome = ("error", str(e))
        else:
            outcome = ("", "")
        outcome = broadcast_from_main(outcome)
        if outcome[0] == "error":
            raise RunDirError(outcome[1])
        return rundir if self.dist.is_main else RunDir.follower(Path(outcome[1]))
