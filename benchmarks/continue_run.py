"""Continue a long nascomp run across short GPU leases: start it, or resume it where it stopped, for at most
``--seconds`` of this lease, then stop at a checkpoint (``--stop-after``).

    python benchmarks/continue_run.py --out runs/paper-dfq --seconds 780 [--nproc 8] -- \\
        dfq --preset paper --model cifar_resnet20 --weights ../shared/weights/cifar10/resnet20-12fca82f.th \\
        --data ../shared/data/cifar10-jpeg/test.tar.gz

Call the same line in every lease: the first call starts the run in ``--out``, later ones add ``--resume``,
and a finished run (``metrics.json`` present) prints its metrics and does nothing else. ``--nproc N`` runs it
under ``torchrun --nproc-per-node N`` (one process per GPU); a run must be continued with the N it began with.
Exit status: 0 finished, 3 paused (call again in the next lease), anything else: nascomp's error.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

MARKER = ".nascomp-run"  # nascomp.engine.rundir.RUN_MARKER (not imported: this script needs no torch)


def command(out: Path, seconds: float, nproc: int, args: list[str]) -> list[str] | None:
    """The nascomp command line of this lease; None when the run has finished."""
    if (out / "metrics.json").is_file():
        return None
    where = ["--resume", str(out)] if (out / MARKER).is_file() else ["--out", str(out)]
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
                if nproc > 1 else [sys.executable])
    return [*launcher, "-m", "nascomp", *args, *where, "--stop-after", str(seconds)]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="the run folder (the same in every lease)")
    p.add_argument("--seconds", type=float, required=True, help="wall time this lease may spend on the run")
    p.add_argument("--nproc", type=int, default=1, help="processes (GPUs) under torchrun; 1: a plain process")
    p.add_argument("args", nargs=argparse.REMAINDER, help="-- then the nascomp subcommand and its options")
    a = p.parse_args(argv)
    args = a.args[1:] if a.args[:1] == ["--"] else a.args
    if not args or any(flag in args for flag in ("--out", "--resume", "--stop-after", "--force")):
        p.error("give the nascomp subcommand and its options after --, without --out/--resume/--stop-after/--force")
    cmd = command(a.out, a.seconds, a.nproc, args)
    if cmd is None:
        print(f"{a.out}: finished; {a.out / 'metrics.json'} holds its metrics")
        return 0
    print(" ".join(cmd), flush=True)
    return subprocess.run(cmd).returncode


if __name__ == "__main__":
    sys.exit(main())
