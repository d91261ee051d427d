"""PyTorch vs onnxruntime on the exported models: top-1, agreement, max |logit diff|, file sizes, latency.

For each DFQ run folder given (and the FP32 teacher), the model is exported with ``nascomp export`` (ONNX,
opset 21, QuantizeLinear/DequantizeLinear; weights as packed UINT4/UINT8 initializers) and checked on the whole
test set with onnxruntime's CPU provider, graph optimisations off and all on (the worse agreement is shown).
Latency: onnxruntime (all optimisations, the machine's threads) on batch 1 and batch 64, median of ``--repeats``
timed runs after 3 warm-up runs, FP32 teacher and quantized graphs side by side in one process.

    python benchmarks/export_onnx.py --runs runs/export/w4a4 runs/export/w8a8 \\
        --teacher-weights ../shared/weights/cifar10/resnet20-12fca82f.th \\
        --data ../shared/data/cifar10-jpeg/test.tar.gz --write
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import add_section_args, command, machine, shown, write_section

from nascomp.deploy import export_model, load_model
from nascomp.deploy.onnx import onnx_sessions
from nascomp.models import create_model

TITLE = "Export: PyTorch vs onnxruntime, file sizes and CPU latency"


def latency_ms(path: Path, shape: tuple[int, ...], repeats: int) -> float:
    """Median wall time of one onnxruntime run (all graph optimisations) on a batch of ``shape``."""
    session = onnx_sessions(path)["all"]
    feed = {session.get_inputs()[0].name: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    for _ in range(3):
        session.run(None, feed)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, feed)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def describe(run: Path) -> str:
    spec = json.loads((run / "model.json").read_text()) if (run / "model.json").is_file() else None
    quant = spec["quant"] if spec else json.loads((run / "quant_spec.json").read_text())
    metrics = json.loads((run / "metrics.json").read_text())
    method = metrics.get("method") or "kd"
    return f"W{quant['wbits']}A{quant['abits']} ({method}, run {metrics.get('dfq_top1'):.2f} %)"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", nargs="+", required=True, help="finished dfq run folders")
    p.add_argument("--teacher", default="cifar_resnet20")
    p.add_argument("--teacher-weights", required=True)
    p.add_argument("--data", required=True, help="labelled test set")
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--workers", type=int, default=None)
    add_section_args(p, TITLE)
    a = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        sources = [("FP32 teacher", create_model(a.teacher, a.teacher_weights).eval(), Path(tmp) / "teacher.onnx")]
        sources += [(describe(Path(r)), load_model(r), Path(tmp) / f"{i}.onnx") for i, r in enumerate(a.runs)]
        for name, model, path in sources:
            result = export_model(model, path, check=a.data, workers=a.workers)
            shape = tuple(model.default_cfg.input_size)
            lat = [latency_ms(path, (b, *shape), a.repeats) for b in (1, 64)]
            rows.append((name, result, lat))
            print(name, json.dumps({k: result[k] for k in ("torch_top1", "onnx_top1", "agreement", "max_abs_diff",
                                                            "mbytes")}), lat, flush=True)
    fp32_mb = rows[0][1]["mbytes"]
    table = ["| model | PyTorch top-1 | onnxruntime top-1 | agreement | max abs logit diff | ONNX file | vs FP32 | "
             "latency batch 1 | latency batch 64 |", "|---|---|---|---|---|---|---|---|---|"]
    for name, r, (l1, l64) in rows:
        table.append(f"| {name} | {r['torch_top1']:.2f} | {r['onnx_top1']:.2f} | {r['agreement']:.2f} % | "
                     f"{r['max_abs_diff']:.3g} | {1024 * r['mbytes']:.0f} KiB | {fp32_mb / r['mbytes']:.2f}x smaller"
                     f" | {l1:.2f} ms | {l64:.1f} ms |")
    body = (f"`{command()}`\n\nMachine: {machine()}. Test set {shown(a.data)} ({rows[0][1]['images']} images). "
            "Runs: " + ", ".join(f"`{shown(r)}`" for r in a.runs) + ". Quantization protocol as in each run "
            "(GDFQ: every conv and the linear layer at the given bits, weights per output channel, the image input "
            "float). onnxruntime's CPU provider; agreement = images on which onnxruntime and PyTorch pick the same "
            "class (the worse of graph optimisations off and all), max |logit diff| over all images. Latency: median "
            f"of {a.repeats} runs after 3 warm-ups, all graph optimisations; the quantized graphs are QDQ graphs "
            "(integers dequantized, float convolutions; BatchNorm between a conv and the next quantizer keeps "
            "onnxruntime from fusing them into integer kernels), so on this provider they run slower than FP32: "
            "the gain measured here is the file size (weights as UINT4/UINT8 initializers). Folding BatchNorm "
            "into the convs for an integer-kernel graph is not done yet.\n\n" + "\n".join(table))
    print(body)
    if a.write:
        write_section(a.title, body)


if __name__ == "__main__":
    main()
