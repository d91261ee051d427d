"""The ``nascomp`` command: argparse only; each subcommand builds a config and calls one pipeline function."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from .errors import UserError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed -> same numbers on CPU)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="run folder (default runs/<time>-<job>)")
    p.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")


def _add_dfq(sub) -> None:
    p = sub.add_parser("dfq", help="data-free low-bit quantization (GDFQ generator; demo when run bare)")
    p.add_argument("--model", help="model name (see `nascomp list`), default demo_net")
    p.add_argument("--weights", help="checkpoint of the full-precision model")
    p.add_argument("--data", "--eval-data", dest="data", help="evaluation data: demo, ImageFolder dir, .tar(.gz), cifar10")
    p.add_argument("--generator", help="gdfq (default) or noise (Gaussian control)")
    p.add_argument("--wbits", type=int, help="weight bits, 2..8 or 32 (default 4)")
    p.add_argument("--abits", type=int, help="activation bits, 2..8 or 32 (default 4)")
    p.add_argument("--preset", default=None, help="demo | quick (CPU minutes) | paper (GDFQ's budget)")
    for name, typ in (("schedule", str), ("batch-size", int), ("gen-steps", int), ("calib-size", int),
                      ("epochs", int), ("iters-per-epoch", int), ("warmup-epochs", int), ("student-lr", float),
                      ("act-observer", str), ("weight-observer", str), ("eval-every", int)):
        p.add_argument(f"--{name}", type=typ, help=argparse.SUPPRESS if name in ("eval-every",) else None)
    _run_args(p)
    _common(p)
    p.set_defaults(func=_cmd_dfq)


def _cmd_dfq(a: argparse.Namespace) -> dict:
    from .config import DFQ_PRESETS, DFQConfig, resolve
    from .dfq import run_dfq

    preset = a.preset or ("demo" if a.model in (None, "demo_net") else "quick")
    keys = ("model", "weights", "data", "generator", "wbits", "abits", "schedule", "batch_size", "gen_steps",
            "calib_size", "epochs", "iters_per_epoch", "warmup_epochs", "student_lr", "act_observer",
            "weight_observer", "eval_every", "seed", "device")
    cfg = resolve(DFQConfig, DFQ_PRESETS, preset, {k: getattr(a, k) for k in keys})
    metrics = run_dfq(cfg, out=a.out, force=a.force, resume=a.resume, quiet=a.quiet)
    if not a.json:
        _print_table(f"W{cfg.wbits}A{cfg.abits} {cfg.model} ({cfg.generator} generator, {cfg.schedule})", [
            ("FP teacher", metrics["fp_top1"]), ("PTQ (generated calibration)", metrics["ptq_top1"]),
            ("DFQ (last epoch)", metrics["dfq_top1"]),
            (f"DFQ best epoch ({metrics['dfq_best_epoch']}, chosen on eval data)", metrics["dfq_best_top1"]),
        ], f"{metrics['seconds']:.1f} s; run folder {metrics['run_dir']}")
    keep = ("fp_top1", "ptq_top1", "dfq_top1", "dfq_best_top1", "wbits", "abits", "seconds", "run_dir")
    return {k: metrics[k] for k in keep}


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="top-1/top-5 of a model checkpoint or a saved quantized student")
    p.add_argument("--model", help="model name; omit when --weights is a dfq run folder")
    p.add_argument("--weights", required=True, help="checkpoint file, or a dfq run folder (quantized student)")
    p.add_argument("--data", required=True, help="labelled data: demo, ImageFolder dir, .tar(.gz), cifar10")
    p.add_argument("--batch-size", type=int, default=500)
    _common(p)
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(a: argparse.Namespace) -> dict:
    from .dfq.evaluate import evaluate_checkpoint

    acc = evaluate_checkpoint(a.model, a.weights, a.data, a.batch_size, a.device or "auto")
    if not a.json:
        print(f"top1 {acc.top1:.2f} %  top5 {acc.top5:.2f} %  on {acc.n} images")
    return {"top1": acc.top1, "top5": acc.top5, "n": acc.n}


def _add_list(sub) -> None:
    p = sub.add_parser("list", help="list the registered models")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_list)


def _cmd_list(a: argparse.Namespace) -> dict:
    from .models import list_models, model_entry

    names = list_models(a.pattern)
    if not a.json:
        for n in names:
            c = model_entry(n).cfg
            print(f"{n:24s} input {'x'.join(map(str, c.input_size)):10s} classes {c.num_classes}")
        print("torchvision:<name>       any torchvision classifier (weights from --weights)")
    return {"models": names}


def _print_table(title: str, rows: list[tuple[str, float | None]], footer: str) -> None:
    width = max(len(r[0]) for r in rows)
    print(title)
    for name, value in rows:
        print(f"  {name:<{width}}  {'-' if value is None else f'{value:6.2f} %'}")
    print(footer)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nascomp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_dfq, _add_eval, _add_list):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], dict] = args.func
    try:
        result = func(args)
    except UserError as e:
        print(f"nascomp {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"nascomp {args.command}: interrupted; continue with --resume RUN_DIR", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
