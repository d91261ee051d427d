"""The quantizer family by name: what ``--recon-weight-quant`` / ``--recon-act-quant`` (and library users) choose.

| name | weights | activations | what is learned | paper |
|---|---|---|---|---|
| ``uniform`` | :class:`~.quantizers.WeightQuantizer` | :class:`~.quantizers.ActQuantizer` | nothing: the range comes from an initialiser (``minmax``, ``ema``, ``mse``), then stays fixed | Jacob et al. CVPR 2018; GDFQ |
| ``lsq`` | :class:`~.learned.LSQQuantizer` (a step per output channel) | :class:`~.learned.LSQQuantizer` (one step) | the step size | Esser et al. ICLR 2020 |
| ``adaround`` | :class:`~.learned.AdaRoundQuantizer` | - | each weight's rounding (up or down) | Nagel et al. ICML 2020 |

Every class's docstring gives its forward formula and gradient. A learned quantizer starts from the calibrated
uniform one (``for_weight`` / ``for_act``) and folds back into it when learning ends (``fold_weight`` /
``fold_act``), so a frozen (saved, exported) model holds only uniform quantizers.
"""

from __future__ import annotations

from torch import nn

from ..errors import ConfigError
from .learned import AdaRoundQuantizer, LSQQuantizer
from .quantizers import ActQuantizer, WeightQuantizer

WEIGHT_QUANTIZERS: dict[str, type[nn.Module]] = {
    "uniform": WeightQuantizer, "lsq": LSQQuantizer, "adaround": AdaRoundQuantizer}
ACT_QUANTIZERS: dict[str, type[nn.Module]] = {"uniform": ActQuantizer, "lsq": LSQQuantizer}
ROLES = {"weight": WEIGHT_QUANTIZERS, "activation": ACT_QUANTIZERS}


def quantizer_class(role: str, name: str) -> type[nn.Module]:
    """The class registered as ``name`` for ``role`` (``weight`` or ``activation``); a ConfigError naming the
    choices when there is none."""
    table = ROLES[role]
    if name not in table:
        raise ConfigError(f"unknown {role} quantizer {name!r}; choose one of {', '.join(sorted(table))}")
    return table[name]


def learns(cls: type[nn.Module]) -> bool:
    """Whether ``cls`` has parameters to learn (the uniform quantizers have none)."""
    return cls not in (WeightQuantizer, ActQuantizer)
