"""The networks a NASB training run needs, built for the data: the binary student and an optional teacher.

The student is either the network a genotype describes (:class:`~.network.NASBNetwork`, width ``channels``
and depth ``layers``) or a registered binary model (``--model``, e.g. ``cifar_birealnet20``) whose first conv
is rebuilt for the data's channels when they differ (1-channel demo digits). Either way the model carries
the data's input convention as ``default_cfg`` (:func:`~.data.input_cfg`).
"""

from __future__ import annotations

from torch import nn

from ..config import NASBTrainConfig
from ..errors import ConfigError
from ..models import ModelCfg, create_model
from ..quant.binary import BinaryConv2d
from .network import NASBNetwork, load_genotype

DEFAULT_CHANNELS = 16


def adapt_input_channels(model: nn.Module, in_channels: int) -> nn.Module:
    """Rebuild the first (full-precision) conv of ``model`` for ``in_channels`` inputs, freshly initialised."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            if module.in_channels == in_channels:
                return model
            if isinstance(module, BinaryConv2d) or module.groups != 1:
                break
            parent = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
            conv = nn.Conv2d(
                in_channels,
                module.out_channels,
                module.kernel_size,  # type: ignore[arg-type]
                module.stride,  # type: ignore[arg-type]
                module.padding,  # type: ignore[arg-type]
                module.dilation,  # type: ignore[arg-type]
                bias=module.bias is not None,
            )
            setattr(parent, name.rpartition(".")[2], conv)
            return model
    raise ConfigError(f"cannot adapt {type(model).__name__} to {in_channels}-channel images: no plain first conv")


def build_student(cfg: NASBTrainConfig, icfg: ModelCfg) -> tuple[nn.Module, str]:
    """The student for ``cfg`` on data of convention ``icfg``, and a one-line description of it."""
    if (cfg.genotype is None) == (cfg.model is None):
        raise ConfigError("give exactly one of --genotype G (a searched cell) or --model M (e.g. cifar_birealnet20)")
    c = icfg.input_size[0]
    if cfg.genotype is not None:
        genotype = load_genotype(cfg.genotype)
        width = cfg.channels or DEFAULT_CHANNELS
        net = NASBNetwork(genotype, c, icfg.num_classes, width, cfg.layers, bases=cfg.bases)
        net.architecture = {"builder": "nasb", "genotype": net.genotype.to_dict(), "channels": width,
                            "layers": cfg.layers}  # how the saved artefact rebuilds it (nascomp.deploy)
        model: nn.Module = net
        bases = "" if net.bases == "single" else f", bases {net.bases}"
        about = f"NASB genotype {cfg.genotype} (C={width}, {cfg.layers} cells{bases})"
    else:
        assert cfg.model is not None
        if cfg.channels is not None:
            raise ConfigError(f"--channels sets the width of a genotype network; --model {cfg.model} has its own")
        if cfg.bases is not None:
            raise ConfigError(f"--bases sets the binary bases of a genotype network; --model {cfg.model} has its own "
                              "(multi-base models: cifar_groupnet20_k4, cifar_groupnet20_k5, cifar_abcnet20_m3n3)")
        model = adapt_input_channels(create_model(cfg.model, num_classes=icfg.num_classes), c)
        model.architecture = {"builder": "registry", "name": cfg.model}
        about = cfg.model
    if not any(isinstance(m, BinaryConv2d) for m in model.modules()):
        raise ConfigError(f"{about} has no binary convs; staged training needs a binary model (e.g. cifar_birealnet20)")
    model.default_cfg = icfg
    model.model_name = about
    return model, about


def load_teacher(cfg: NASBTrainConfig, icfg: ModelCfg) -> nn.Module | None:
    """The frozen real-valued teacher for KD, or None; it must read the student's input convention."""
    if cfg.teacher is None:
        if cfg.teacher_weights is not None:
            raise ConfigError("--teacher-weights needs --teacher M (the teacher's model name)")
        return None
    if cfg.teacher == "demo_net" and cfg.teacher_weights is None:
        from ..demo import demo_teacher

        teacher = demo_teacher()
    elif cfg.teacher_weights is None:
        raise ConfigError(f"--teacher {cfg.teacher} needs --teacher-weights PATH; KD from random weights means nothing")
    else:
        teacher = create_model(cfg.teacher, cfg.teacher_weights)
    tcfg = teacher.default_cfg
    seen = (tcfg.num_classes, tuple(tcfg.input_size), tuple(tcfg.mean), tuple(tcfg.std))
    want = (icfg.num_classes, tuple(icfg.input_size), tuple(icfg.mean), tuple(icfg.std))
    if seen != want:
        raise ConfigError(
            f"teacher {cfg.teacher} expects {seen[0]} classes of {seen[1]} with mean {seen[2]}, the data gives "
            f"{want[0]} of {want[1]} with mean {want[2]}; use a teacher trained on this data"
        )
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()
