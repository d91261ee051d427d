"""Speed-up of N data-parallel processes (torchrun) over one, for a DFQ generator step on the real ResNet-20.

    python benchmarks/ddp_speed.py --procs 1 2 --threads 2 --steps 20 [--batch-size 64] [--device cpu] [--write]

For each N the same budget runs under ``torchrun --standalone --nproc-per-node N -m nascomp dfq``, every process
with ``--threads / N`` torch threads on a CPU (all cores shared out) or one GPU each. A generator step is
measured by the run itself (``seconds_per_step.generator_step``: generator forward, teacher forward with BNS,
backward, the DDP all-reduce, Adam). ``--batch-size`` is per process, so N processes make N times the images of
one per step: the figure that matters is images per second, and the speed-up is its ratio to one process.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from common import SHARED, add_section_args, command, machine, write_section

TITLE = "Data-parallel processes (torchrun): DFQ generator step, CIFAR-10 ResNet-20"


def generator_step_seconds(procs: int, threads: int, steps: int, batch: int, device: str, folder: Path) -> float:
    """Seconds per generator step of an N-process run (the run's own timing)."""
    out = folder / f"n{procs}"
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    args = ["dfq", "--model", "cifar_resnet20", "--weights", str(SHARED / "weights/cifar10/resnet20-12fca82f.th"),
            "--data", str(SHARED / "data/cifar10-jpeg/test.tar.gz"), "--preset", "quick", "--gen-steps", str(steps),
            "--batch-size", str(batch), "--calib-size", str(batch), "--epochs", "1", "--eval-every", "0",
            "--device", device, "--out", str(out), "--quiet", "--json"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(procs),
           "-m", "nascomp", *args]
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "metrics.json").read_text())["seconds_per_step"]["generator_step"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads shared out among the processes")
    p.add_argument("--steps", type=int, default=20, help="generator steps per run")
    p.add_argument("--batch-size", type=int, default=64, help="per process")
    p.add_argument("--device", default="cpu", help="cpu, or cuda (one GPU per process)")
    add_section_args(p, TITLE)
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in a.procs:
            threads = max(a.threads // n, 1)
            sec = generator_step_seconds(n, threads, a.steps, a.batch_size, a.device, Path(tmp))
            rows.append((n, threads, sec, n * a.batch_size / sec))
            print(f"{n} process(es) x {threads} thread(s): {sec:.3f} s/step, {rows[-1][3]:.1f} images/s", flush=True)
    base = rows[0][3]
    table = ["| processes | threads each | s / generator step | images / s | speed-up |", "|---|---|---|---|---|"]
    table += [f"| {n} | {t} | {s:.3f} | {ips:.1f} | {ips / base:.2f}x |" for n, t, s, ips in rows]
    body = (f"`{command()}`\n\nMachine: {machine()}. Device {a.device}; {a.steps} generator steps per run at batch "
            f"{a.batch_size} per process (W4A4 student built but not stepped), the run's own timing of the step "
            "(generator and teacher forward with BNS, backward, DDP all-reduce, Adam). On a CPU the processes share "
            "the machine's cores (threads each = threads / processes), so little or no gain is expected there; on a "
            "GPU machine each process has a GPU of its own.\n\n" + "\n".join(table))
    print(body)
    if a.write:
        write_section(a.title, body)


if __name__ == "__main__":
    main()
