"""NASB: architecture search for binary CNNs, staged training, and their cost (Zhu et al., IJCNN 2020).

- :mod:`.ops` / :mod:`.space` / :mod:`.macro`: the binary op registry, the cell search space declared through
  :mod:`nascomp.nas`, the supernet and the shared stem/cell/head layout;
- :mod:`.network`: the derived network of a genotype;
- :mod:`.search`: ``nascomp nasb search`` (bi-level DARTS, GDAS sampling as an option);
- :mod:`.train`: ``nascomp nasb train`` (real -> binary activations -> binary weights, optional KD);
- :mod:`.report`: ``nascomp cost`` and width matching by OPs.

Our choices where the paper is silent are in docs/NASB.md.
"""

from .network import NASBNetwork, load_genotype, published_genotypes, with_bases
from .report import cost_of, network_cost, width_for_ops
from .search import NASBSearch, run_search
from .space import NASB_SPACE, Supernet
from .train import NASBTrain, run_train

__all__ = [
    "NASBNetwork",
    "NASBSearch",
    "NASBTrain",
    "NASB_SPACE",
    "Supernet",
    "cost_of",
    "load_genotype",
    "network_cost",
    "published_genotypes",
    "run_search",
    "run_train",
    "width_for_ops",
    "with_bases",
]
