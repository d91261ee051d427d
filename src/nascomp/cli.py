"""The ``nascomp`` command: argparse only; each subcommand builds a config and calls one pipeline function."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .errors import ConfigError, Paused, UserError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=None, help="random seed (same seed -> same numbers on CPU)")
    p.add_argument("--device", default=None, help="auto | cpu | cuda[:N] (default auto)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object on the last line")
    p.add_argument("--quiet", action="store_true", help="no progress bars and no log lines on the terminal")
    p.add_argument("--progress", choices=("auto", "on", "off"), default="auto",
                   help="progress bars: auto (only when stderr is a terminal; default), on, off")


def _precision_arg(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--precision", help=f"{what} arithmetic: fp32 (default) | bf16 | auto (bf16 where the CPU or GPU "
                   "multiplies it natively); add +cl for channels-last, e.g. auto+cl")


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of seconds")
    return value


def _run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="run folder (default runs/<time>-<job>)")
    p.add_argument("--force", action="store_true", help="overwrite an existing run folder")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its checkpoint")
    p.add_argument("--stop-after", type=_seconds, metavar="SECONDS",
                   help="stop at the first checkpoint after this much wall time (exit 3); continue with --resume")
    p.add_argument("--keep-checkpoint", action="store_true",
                   help="keep checkpoint.pt once the run has finished (by default it is removed after the artefacts and "
                   "report.md are written: it only serves --resume)")


def _finish_run(metrics: dict, a: argparse.Namespace) -> None:
    """After a finished run, in the process that writes (rank 0): report.md, then the resume checkpoint removed
    unless --keep-checkpoint."""
    if os.environ.get("RANK", "0") == "0":
        from .report import finish_run

        finish_run(metrics["run_dir"], keep_checkpoint=a.keep_checkpoint)


def _config(cls: type, presets: dict, a: argparse.Namespace, keys: Sequence[str], preset: Callable[[], str],
            job: str) -> Any:
    """The resolved config of a command: the preset (``--preset`` or ``preset()``) with the options given on top;
    with ``--resume`` the run folder's own config (of a ``job`` run) takes the preset's place, so no option needs
    repeating."""
    from .config import resolve, resume_config

    given = {k: getattr(a, k) for k in keys}
    if a.resume:
        from .engine.rundir import saved_config

        return resume_config(cls, saved_config(a.resume, job), a.preset, given)
    return resolve(cls, presets, a.preset or preset(), given)


# DFQConfig fields that override the preset, one --option each (underscores become dashes)
DFQ_BUDGET_OPTIONS = (
    ("schedule", str, "calibset (train G, draw a set, calibrate, then kd/recon) | gdfq (GDFQ's joint loop)"),
    ("batch_size", int, "generated images per step (per process under torchrun)"),
    ("gen_steps", int, "calibset: generator updates before the calibration set is drawn"),
    ("calib_size", int, "calibset: generated images that calibrate (and fine-tune) the student"),
    ("holdout_size", int, "calibset: generated images held out to select the delivered KD epoch (0: last epoch)"),
    ("epochs", int, "KD epochs (calibset) or GDFQ epochs (gdfq)"),
    ("iters_per_epoch", int, "gdfq: iterations per epoch"),
    ("warmup_epochs", int, "gdfq: epochs in which only the generator trains and ranges are observed"),
    ("student_lr", float, "lr of the student's KD fine-tune"),
    ("student_optimizer", str, "sgd (Nesterov 0.9, GDFQ) | adam"),
    ("temperature", float, "KD temperature T"),
    ("ce_weight", float, "weight of the CE term on the generated labels (0: KD only)"),
    ("lr_schedule", str, "step (x0.1 at milestones, GDFQ) | cosine"),
    ("act_observer", str, "activation ranges: minmax | ema | mse"),
    ("weight_observer", str, "weight ranges: minmax | ema | mse"),
    ("eval_every", int, argparse.SUPPRESS),
    ("method", str, "after calibration: kd (GDFQ's fine-tune) | recon (BRECQ + AdaRound + LSQ + QDrop) | recon+kd"),
    ("recon_iters", int, "reconstruction steps per unit (stem, block, head)"),
    ("recon_batch", int, "calibration images per reconstruction step"),
    ("recon_round_lr", float, "Adam lr of AdaRound's rounding variables"),
    ("recon_step_lr", float, "Adam lr of the LSQ activation steps"),
    ("recon_drop", float, "QDrop: probability that an activation element stays full precision (0: plain BRECQ)"),
    ("first_last_bits", int, "bits (weights and activations) of the first and the last layer: 8 = the BRECQ/Genie "
     "protocol (default: GDFQ's, every layer at --wbits/--abits; the image stays float either way)"),
    ("recon_weight_quant", str, "weight quantizer learned in reconstruction: adaround (default) | lsq (learned "
     "per-channel steps) | uniform (calibrated grid kept)"),
    ("recon_act_quant", str, "activation quantizer learned in reconstruction: lsq (default) | uniform (calibrated range "
     "kept)"),
    ("direct_steps", int, "--generator direct | genie: Adam steps per batch of optimised images (default 200)"),
    ("direct_lr", float, "Adam lr, cosine to 0: of the pixels (--generator direct, default 0.25) or of the latents "
                         "(genie, default 0.03; its generator's lr is a tenth)"),
    ("direct_jitter", int, "--generator direct | genie: largest random shift per step in pixels (default 2; 0: none)"),
    ("refine_steps", int, "refine each generated calibration image with this many direct steps, from the "
                          "generator's image and label (default 0: none; the calibration set only, fresh KD images are not refined)"),
    ("refine_lr", float, "Adam lr of that refinement, cosine to 0 (default 0.05)"),
)


def _add_dfq(sub) -> None:
    p = sub.add_parser("dfq", help="data-free low-bit quantization (GDFQ generator; demo when run bare)")
    p.add_argument("--model", help="model name (see `nascomp list`), default demo_net")
    p.add_argument("--weights", help="checkpoint of the full-precision model")
    p.add_argument("--data", "--eval-data", dest="data", help="evaluation data: demo, ImageFolder dir, .tar(.gz), cifar10")
    p.add_argument("--generator", help="gdfq (default) | noise (Gaussian control) | direct (images optimised "
                   "directly for BNS + CE with jitter and flips, ZeroQ/DeepInversion style) | genie (the same objective "
                   "on Genie-D's latents + a small generator per batch) | autorecon-<name> (published "
                   "AutoReCon genotype, e.g. autorecon-cifar10-resnet20) | PATH/genotype.json | search (search "
                   "one first; its time is reported apart as search_seconds)")
    p.add_argument("--wbits", type=int, help="weight bits, 2..8 or 32 (default 4)")
    p.add_argument("--abits", type=int, help="activation bits, 2..8 or 32 (default 4)")
    p.add_argument("--preset", default=None, help="demo | quick (CPU minutes: generator, block reconstruction) | "
                   "quick-kd (the same with GDFQ's KD fine-tune in place of reconstruction) | paper (GDFQ's budget)")
    for name, typ, text in DFQ_BUDGET_OPTIONS:
        p.add_argument(f"--{name.replace('_', '-')}", type=typ, help=text)
    _precision_arg(p, "generator and teacher (the student stays fp32)")
    p.add_argument("--layer-bits", action="append", metavar="PATTERN=W/A",
                   help="bits of the layers whose module name matches PATTERN (fnmatch, e.g. 'layer3.*=8/8'); "
                   "repeatable, a later one wins; a pattern that matches no layer is an error")
    p.add_argument("--fresh-images", action=argparse.BooleanOptionalAction, default=None,
                   help="calibset: each KD epoch on newly generated images instead of the calibration set")
    _run_args(p)
    _common(p)
    p.set_defaults(func=_cmd_dfq)


def _cmd_dfq(a: argparse.Namespace) -> dict:
    from .config import DFQ_PRESETS, DFQConfig
    from .dfq import run_dfq
    from .dfq.pipeline import DFQRun

    keys = ("model", "weights", "data", "generator", "wbits", "abits", "layer_bits", "fresh_images", "precision", "seed",
            "device", *(name for name, _, _ in DFQ_BUDGET_OPTIONS))
    cfg = _config(DFQConfig, DFQ_PRESETS, a, keys, lambda: "demo" if a.model in (None, "demo_net") else "quick",
                  DFQRun.job)
    metrics = run_dfq(cfg, out=a.out, force=a.force, resume=a.resume, quiet=a.quiet, stop_after=a.stop_after)
    _finish_run(metrics, a)
    if not a.json:
        _print_table(f"W{cfg.wbits}A{cfg.abits} {cfg.model} ({cfg.generator} generator, {cfg.schedule})", [
            ("FP teacher", metrics["fp_top1"]), ("PTQ (generated calibration)", metrics["ptq_top1"]),
            *([("block reconstruction", metrics["recon_top1"])] if metrics["recon_top1"] is not None else []),
            (_delivered_label(metrics), metrics["dfq_top1"]), ("DFQ last epoch", metrics["dfq_last_epoch_top1"]),
            (f"DFQ best epoch ({metrics['dfq_best_epoch']}, chosen on eval data)", metrics["dfq_best_top1"]),
        ], f"{metrics['seconds']:.1f} s; run folder {metrics['run_dir']}")
    keep = ("fp_top1", "ptq_top1", "recon_top1", "dfq_top1", "dfq_best_top1", "wbits", "abits", "method", "seconds",
            "search_seconds", "run_dir")
    return {k: metrics[k] for k in keep}


def _add_search_generator(sub) -> None:
    p = sub.add_parser("search-generator", help="search the AutoReCon generator architecture for a pretrained model")
    p.add_argument("--model", help="model name (see `nascomp list`), default demo_net")
    p.add_argument("--weights", help="checkpoint of the full-precision model (demo_net: the demo teacher)")
    p.add_argument("--preset", default=None, help="demo | quick (CPU minutes, width-16 proxy) | paper")
    p.add_argument("--order", type=int, help="1: first-order DARTS (default); 2: unrolled alpha gradient")
    for name in ("batch-size", "epochs", "steps-per-epoch", "channels"):
        p.add_argument(f"--{name}", type=int, help="overrides the preset")
    _precision_arg(p, "supernet and teacher")
    _run_args(p)
    _common(p)
    p.set_defaults(func=_cmd_search_generator)


def _cmd_search_generator(a: argparse.Namespace) -> dict:
    from .config import GENERATOR_SEARCH_PRESETS, GeneratorSearchConfig
    from .dfq.generator_choice import run_generator_search
    from .recon.search import GeneratorSearch

    keys = ("model", "weights", "order", "batch_size", "epochs", "steps_per_epoch", "channels", "precision", "seed",
            "device")
    cfg = _config(GeneratorSearchConfig, GENERATOR_SEARCH_PRESETS, a, keys,
                  lambda: "demo" if a.model in (None, "demo_net") else "quick", GeneratorSearch.job)
    m = run_generator_search(cfg, out=a.out, force=a.force, resume=a.resume, quiet=a.quiet, stop_after=a.stop_after)
    _finish_run(m, a)
    if not a.json:
        print(f"generator search for {cfg.model} ({cfg.preset} preset, order {cfg.order}): {m['steps']} steps")
        print(f"  L_r {m['lr_first']:.4g} (epoch 1) -> {m['lr_last']:.4g} (epoch {m['epochs']}), BNS {m['bns_last']:.4g}")
        print(f"  {m['seconds_per_step']:.3g} s/step, peak RSS {m['peak_rss_mb']:.0f} MiB, {m['seconds']:.1f} s")
        print(f"  genotype {m['genotype']}; use it with `nascomp dfq --generator {m['genotype']}`")
    keep = ("genotype", "lr_first", "lr_last", "bns_last", "steps", "seconds", "seconds_per_step",
            "cpu_seconds_per_step", "peak_rss_mb", "run_dir")
    return {k: m[k] for k in keep}


def _delivered_label(metrics: dict) -> str:
    epoch = metrics["selected_epoch"]
    if epoch is None:
        return "DFQ (saved student = last epoch)"
    return f"DFQ (saved student: epoch {epoch}, chosen on held-out generated images)"


def _add_eval(sub) -> None:
    p = sub.add_parser("eval", help="top-1/top-5 of a model checkpoint or a saved quantized student")
    p.add_argument("--model", help="model name; omit when --weights is a dfq run folder")
    p.add_argument("--weights", required=True, help="checkpoint file, or a dfq run folder (quantized student)")
    p.add_argument("--data", required=True, help="labelled data: demo, ImageFolder dir, .tar(.gz), cifar10")
    p.add_argument("--batch-size", type=_ranged("eval_batch_size"), default=500,
                   help="images per evaluation batch (default 500)")
    p.add_argument("--workers", type=_ranged("workers"), help="processes decoding image files (default: every core; 0 = none)")
    p.add_argument("--interpolation", choices=("bicubic", "bilinear"), help="resize of image files (default: the model's)")
    _common(p)
    p.set_defaults(func=_cmd_eval)


def _cmd_eval(a: argparse.Namespace) -> dict:
    from .dfq.evaluate import evaluate_checkpoint

    acc = evaluate_checkpoint(a.model, a.weights, a.data, a.batch_size, a.device or "auto", a.workers,
                              a.quiet, a.interpolation)
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
        print("timm:<name>              any timm model (pip install 'nascomp[timm]'; weights from --weights; "
              "`nascomp list 'timm:*resnet*'` lists them)")
    return {"models": names}


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="(re)write RUN/report.md: results, loss curves, generated images, architecture "
                       "weights, cost table (PNGs in RUN/report/)")
    p.add_argument("run", metavar="RUN", help="a finished run folder (the --out of dfq, search-generator, nasb search "
                   "or nasb train)")
    p.add_argument("--json", action="store_true", help="print {report, figures} as one JSON object")
    p.set_defaults(func=_cmd_report)


def _cmd_report(a: argparse.Namespace) -> dict:
    from .report import write_report

    report = write_report(a.run)
    if not a.json:
        print(f"{report.path} ({len(report.figures)} figures)")
    return {"report": str(report.path), "figures": [str(p) for p in report.figures]}


def _add_cost(sub) -> None:
    p = sub.add_parser("cost", help="params, size, FLOPs, BOPs and OPs = FLOPs + BOPs/64, with a per-layer table")
    p.add_argument("run", nargs="?", metavar="RUN", help="a finished run folder: the cost of its saved model at its bits")
    p.add_argument("--model", help="registered model name (see `nascomp list`), e.g. birealnet18")
    p.add_argument("--genotype", help="a NASB genotype.json (or search run folder): its fully binary network")
    p.add_argument("--channels", type=_ranged("channels"), default=16, help="width C of a genotype network (default 16)")
    p.add_argument("--layers", type=_ranged("layers"), default=8, help="cells of a genotype network (default 8)")
    p.add_argument("--bases", help="binary bases of a genotype network: single | groupnet:K | abcnet:MxN "
                   "(default: the genotype's own)")
    p.add_argument("--input", type=_input_size, help="input size CxHxW (default: the model's own; 3x32x32 for a genotype)")
    p.add_argument("--include-other", action="store_true", help="also count BatchNorm and pooling as FLOPs")
    p.add_argument("--json", action="store_true", help="print the totals and layer rows as one JSON object")
    p.set_defaults(func=_cmd_cost)


def _cmd_cost(a: argparse.Namespace) -> dict:
    from .nasb.report import cost_of, cost_summary

    if a.run is not None:
        return _run_cost(a)
    report = cost_of(a.model, a.genotype, a.input, a.include_other, a.channels, a.layers, bases=a.bases)
    record, table = cost_summary(report)
    if not a.json:
        print(table)
    return record


def _run_cost(a: argparse.Namespace) -> dict:
    from .deploy import load_model
    from .deploy.api import uncounted_layers
    from .nasb.report import cost_summary
    from .quant.cost import count_cost

    if a.model or a.genotype:
        raise ConfigError("give a run folder or --model/--genotype, not both")
    model = load_model(a.run, trainable=True)
    report = count_cost(model, model.default_cfg.input_size, include_other=a.include_other)
    record, table = cost_summary(report)
    record["fp32_mbytes"] = report.params * 4 / 2**20
    record["compression"] = record["fp32_mbytes"] / max(report.size_mbytes, 1e-12)
    record["uncounted"] = uncounted_layers(model)
    if not a.json:
        print(table)
        print(f"model size {report.size_mbytes:.4g} MiB at its bits vs {record['fp32_mbytes']:.4g} MiB in FP32: "
              f"{record['compression']:.2f}x smaller")
    if record["uncounted"]:
        print(f"nascomp cost: warning: {len(record['uncounted'])} layers are not counted in FLOPs/BOPs "
              f"({', '.join(record['uncounted'][:5])})", file=sys.stderr)
    return record


def _add_export(sub) -> None:
    p = sub.add_parser("export", help="export a run's model (DFQ student, NASB network) or a float model as ONNX or "
                       "a torch.export program, optionally checked against onnxruntime")
    p.add_argument("run", nargs="?", metavar="RUN", help="a finished run folder (omit with --model)")
    p.add_argument("--model", help="a registered float model instead of a run (with --weights)")
    p.add_argument("--weights", help="checkpoint of --model")
    p.add_argument("--format", choices=("onnx", "pt2"), default="onnx", help="onnx (opset 21, QDQ; default) or pt2")
    p.add_argument("--output", help="file to write (default RUN/model.onnx or RUN/model.pt2)")
    p.add_argument("--check", metavar="DATA", help="labelled data: compare onnxruntime (optimisations off, then on) "
                   "with PyTorch on it; exit 1 below 99.9 %% top-1 agreement")
    p.add_argument("--check-limit", type=_positive_int, help="check on the first N images only (default all)")
    p.add_argument("--batch-size", type=_positive_int, default=200, help="images per check batch (default 200)")
    p.add_argument("--workers", type=int, help="processes decoding image files (default: every core; 0 = none)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=_cmd_export)


def _cmd_export(a: argparse.Namespace) -> dict:
    from .deploy import export_model
    from .models import create_model

    if (a.run is None) == (a.model is None):
        raise ConfigError("give a run folder, or --model NAME --weights W --output FILE for a float model")
    if a.model is not None and a.output is None:
        raise ConfigError("--model needs --output FILE (where to write the exported model)")
    source = a.run if a.run is not None else create_model(a.model, a.weights).eval()
    result = export_model(source, a.output, a.format, a.check, a.batch_size, a.workers, a.check_limit)
    if a.run is not None and (Path(a.run) / "report.md").is_file():
        from .report import write_report

        write_report(a.run)  # its files table now lists the exported file beside the artefact
    if not a.json:
        print(f"wrote {result['path']} ({result['mbytes']:.3g} MiB, {a.format})")
        if a.check is not None:
            print(f"check on {result['images']} images: PyTorch top-1 {result['torch_top1']:.2f} %, onnxruntime "
                  f"{result['onnx_top1']:.2f} %, agreement {result['agreement']:.2f} %, max |logit diff| "
                  f"{result['max_abs_diff']:.3g} (onnxruntime optimisations off and all; the worse is shown)")
    if a.check is not None and not result["ok"]:
        print(f"nascomp export: error: onnxruntime agrees with PyTorch on only {result['agreement']:.2f} % of the "
              f"images (needs 99.9 %); the file is written but do not deploy it", file=sys.stderr)
        a.exit_code = 1
    return result


_NASB_INT_HELP = {
    "channels": "width C of the stem and first cells (per preset; train: genotype networks only, default 16)",
    "layers": "cells; reductions at 1/3 and 2/3 of them (per preset)",
    "subset": "training images drawn with the seed (0 = all)",
    "eval-subset": "test images drawn with the seed (0 = all)",
    "epochs": "search epochs, or training epochs per stage",
    "batch-size": "images per batch",
}


_BASES_HELP = ("binary bases of every binary conv: single | groupnet:K (Group-Net, K branches) | abcnet:MxN "
               "(ABC-Net, M weight x N activation bases)")


def _add_nasb(sub) -> None:
    p = sub.add_parser("nasb", help="binary NAS: search binary cells, train binary networks in stages")
    nsub = p.add_subparsers(dest="nasb_command", required=True)
    s = nsub.add_parser("search", help="bi-level search of binary cells; writes genotype.json, drawings, cost")
    s.add_argument("--data", help="labelled training images: demo (default), ImageFolder dir, .tar(.gz), cifar10")
    s.add_argument("--preset", help="demo | quick (CPU minutes, GDAS sampling) | paper (DARTS budget)")
    s.add_argument("--order", type=int, help="1: first-order DARTS (default); 2: unrolled alpha gradient")
    s.add_argument("--relaxation", help="softmax (DARTS mixture) | gumbel (one sampled op per edge, GDAS)")
    s.add_argument("--max-parameter-free", type=int, help="keep at most N pool/skip edges per cell (P-DARTS cap)")
    s.add_argument("--no-plot", dest="plot", action="store_false", default=None, help="skip the alpha history plot")
    s.add_argument("--bases", help=_BASES_HELP)
    for name in ("channels", "layers", "subset", "epochs", "batch-size"):
        s.add_argument(f"--{name}", type=int, help=_NASB_INT_HELP[name])
    _precision_arg(s, "supernet forward")
    _run_args(s)
    _common(s)
    s.set_defaults(func=_cmd_nasb_search)
    t = nsub.add_parser("train", help="staged training (real -> binary acts -> binary) of a genotype or a model")
    t.add_argument("--genotype", help="genotype.json or search run folder (the searched network) ...")
    t.add_argument("--model", help="... or a registered binary model, e.g. cifar_birealnet20")
    t.add_argument("--data", help="labelled training images: demo (default), ImageFolder dir, .tar(.gz), cifar10")
    t.add_argument("--eval-data", help="labelled test images (default with demo: its test split)")
    t.add_argument("--stages", type=int, help="3 (default): real -> binary acts -> binary; 2: last two; 1: binary")
    t.add_argument("--teacher", help="real-valued teacher for KD, e.g. cifar_resnet56 (demo_net: built-in)")
    t.add_argument("--teacher-weights", help="checkpoint of the teacher")
    t.add_argument("--preset", help="demo | quick (CPU minutes, subsets) | paper | full (50,000 images, 3 x 128 "
                   "epochs, for a GPU; continue across leases with --resume)")
    t.add_argument("--lr", type=float, help="Adam learning rate of every stage (default 1e-3)")
    t.add_argument("--lr-schedule", help="linear (default) | cosine, to 0 within each stage")
    t.add_argument("--stage1-act", help="clip (default, Bi-Real) | identity: stage-1 activation")
    t.add_argument("--bases", help=_BASES_HELP + " (default: the genotype's own)")
    for name in ("channels", "layers", "epochs", "batch-size", "subset", "eval-subset"):
        t.add_argument(f"--{name}", type=int, help=_NASB_INT_HELP[name])
    _precision_arg(t, "training forward (student and teacher; evaluation stays fp32)")
    _run_args(t)
    _common(t)
    t.set_defaults(func=_cmd_nasb_train)


def _nasb_preset(a: argparse.Namespace) -> str:
    return "demo" if a.data in (None, "demo") else "quick"


def _cmd_nasb_search(a: argparse.Namespace) -> dict:
    from .config import NASB_SEARCH_PRESETS, NASBSearchConfig
    from .nasb import run_search
    from .nasb.search import NASBSearch

    keys = ("data", "order", "relaxation", "max_parameter_free", "channels", "layers", "subset", "epochs", "batch_size", "plot", "seed",
            "device", "bases", "precision")
    cfg = _config(NASBSearchConfig, NASB_SEARCH_PRESETS, a, keys, lambda: _nasb_preset(a), NASBSearch.job)
    m = run_search(cfg, out=a.out, force=a.force, resume=a.resume, quiet=a.quiet, stop_after=a.stop_after)
    _finish_run(m, a)
    if not a.json:
        print(f"NASB search on {cfg.data} ({cfg.preset} preset, {cfg.relaxation}, order {cfg.order}): {m['steps']} steps")
        print(f"  parameter-free edges kept: {m['parameter_free']}; derived network OPs {m['cost']['ops']:.3g}")
        print(f"  {m['seconds_per_step']:.3g} s/step, {m['seconds']:.1f} s")
        print(f"  genotype {m['genotype']}; train it with `nascomp nasb train --genotype {m['genotype']}`")
    keep = ("genotype", "parameter_free", "cost", "steps", "seconds", "seconds_per_step", "run_dir")
    return {k: m[k] for k in keep}


def _cmd_nasb_train(a: argparse.Namespace) -> dict:
    from .config import NASB_TRAIN_PRESETS, NASBTrainConfig
    from .nasb import run_train
    from .nasb.train import NASBTrain

    keys = ("genotype", "model", "data", "eval_data", "stages", "teacher", "teacher_weights", "lr", "lr_schedule",
            "stage1_act", "channels", "layers", "epochs", "batch_size", "subset", "eval_subset", "seed", "device", "bases",
            "precision")
    cfg = _config(NASBTrainConfig, NASB_TRAIN_PRESETS, a, keys, lambda: _nasb_preset(a), NASBTrain.job)
    m = run_train(cfg, out=a.out, force=a.force, resume=a.resume, quiet=a.quiet, stop_after=a.stop_after)
    _finish_run(m, a)
    if not a.json:
        names = {1: "stage 1 (real)", 2: "stage 2 (binary activations)", 3: "stage 3 (binary)"}
        _print_table(f"{m['student']}: top-1 at the last epoch of each stage", [
            (names[s["stage"]], s["top1"]) for s in m["stages"]],
            f"FLOPs {m['cost']['flops']:.3g}, BOPs {m['cost']['bops']:.3g}, OPs {m['cost']['ops']:.3g}; "
            f"{m['seconds']:.1f} s; run folder {m['run_dir']}")
    keep = ("student", "stages", "top1", "top5", "cost", "seconds", "run_dir")
    return {k: m[k] for k in keep}


def _print_table(title: str, rows: list[tuple[str, float | None]], footer: str) -> None:
    width = max(len(r[0]) for r in rows)
    print(title)
    for name, value in rows:
        print(f"  {name:<{width}}  {'-' if value is None else f'{value:6.2f} %'}")
    print(footer)


class _Parser(argparse.ArgumentParser):
    """An argparse parser whose errors are one line (not the whole usage), exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("nascomp")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive whole number")
    return value


def _ranged(field: str) -> Callable[[str], int]:
    """An argparse type: a whole number within ``config.RANGES[field]`` (checked at parse time)."""
    from .config import RANGES

    low, high = RANGES[field]

    def parse(text: str) -> int:
        value = int(text)
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not a whole number from {low:g} to {high:g}")
        return value

    return parse


def _input_size(text: str) -> str:
    """``--input CxHxW`` with each side within ``config.RANGES["input_side"]`` (a huge one would only fail
    after allocating it); the format itself is checked where it is read."""
    from .config import RANGES

    low, high = RANGES["input_side"]
    parts = text.lower().split("x")
    if all(p.isdigit() for p in parts) and any(not low <= int(p) <= high for p in parts):
        raise argparse.ArgumentTypeError(f"{text}: each of C, H and W must be from {low:g} to {high:g}")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nascomp", description="Compress pretrained CNNs with neural architecture search: data-free "
        "quantization (GDFQ / AutoReCon generators) and binary networks (NASB). Errors exit with status 2.")
    parser.add_argument("--version", action="version", version=f"nascomp {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_dfq, _add_search_generator, _add_eval, _add_list, _add_cost, _add_export, _add_nasb, _add_report):
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one subcommand. Under torchrun every process runs it and only rank 0 prints results."""
    args = build_parser().parse_args(argv)
    func: Callable[[argparse.Namespace], dict] = args.func
    from .engine.memory import keep_freed_memory

    keep_freed_memory()  # every subcommand: eval and export as well as the runs
    if hasattr(args, "progress"):
        from .engine.progress import set_progress_mode

        set_progress_mode(args.progress)
    main_rank = os.environ.get("RANK", "0") == "0"
    try:
        with contextlib.redirect_stdout(sys.stdout if main_rank else open(os.devnull, "w")):  # noqa: SIM115
            result = func(args)
            if getattr(args, "json", False):
                print(json.dumps(result))
        if getattr(args, "exit_code", 0):
            return args.exit_code
    except UserError as e:
        print(f"nascomp {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Paused as e:
        print(f"nascomp {args.command}: {e}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print(f"nascomp {args.command}: interrupted; continue with --resume RUN_DIR", file=sys.stderr)
        return 130
    finally:
        _leave_process_group()
    return 0


def _leave_process_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    sys.exit(main())
