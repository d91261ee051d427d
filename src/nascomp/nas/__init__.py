"""The NAS engine, free of any particular search space.

- :mod:`.ops`: per-space op registries (:class:`OpRegistry`) and the ``Zero`` / ``Identity`` helpers;
- :mod:`.mixed`: :class:`MixedOp`, :class:`ArchParams`, :func:`split_parameters` (DARTS relaxation),
  :func:`gumbel_hard` (GDAS sampling);
- :mod:`.space`: :class:`SearchSpace` / :class:`EdgeKind`, a space declared as plain data;
- :mod:`.genotype`: :class:`Genotype` (versioned JSON), :func:`derive`, :func:`validate`;
- :mod:`.search`: :class:`ArchSearcher`, first- and second-order DARTS steps;
- :mod:`.draw` (Graphviz) and :mod:`.plot` (alpha history, matplotlib optional).
"""

from .draw import render, to_dot
from .genotype import Genotype, derive, validate
from .mixed import ArchParams, MixedOp, gumbel_hard, split_parameters
from .ops import Identity, OpRegistry, Zero
from .plot import plot_alpha_history
from .search import ArchSearcher
from .space import EdgeKind, SearchSpace

__all__ = [
    "ArchParams",
    "ArchSearcher",
    "EdgeKind",
    "Genotype",
    "Identity",
    "MixedOp",
    "OpRegistry",
    "SearchSpace",
    "Zero",
    "derive",
    "gumbel_hard",
    "plot_alpha_history",
    "render",
    "split_parameters",
    "to_dot",
    "validate",
]
