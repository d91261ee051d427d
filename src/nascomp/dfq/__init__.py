"""The data-free quantization pipeline = recon + quant + engine."""

from .kd import kd_loss
from .pipeline import DFQRun, run_dfq

__all__ = ["DFQRun", "kd_loss", "run_dfq"]
