"""nascomp: compress pretrained CNNs with neural architecture search.

The Python API (the CLI is a thin layer over it)::

    import nascomp
    model = nascomp.load("runs/my-dfq-run")                  # any run folder -> nn.Module (deployable form)
    nascomp.export("runs/my-dfq-run", format="onnx", check="test.tar.gz")
    result = nascomp.quantize(my_model, mean=..., std=..., input_size=(3, 32, 32), wbits=4, abits=4,
                         data="test.tar.gz", out="runs/mine")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["export", "load", "quantize"]


def __getattr__(name: str) -> Any:  # imported on first use: `nascomp --version` needs no torch
    # (`nascomp.dfq` and `nascomp.nasb` are the pipelines' subpackages, so the DFQ entry point is `quantize`)
    if name == "load":
        from .deploy.api import load_model

        return load_model
    if name == "export":
        from .deploy.api import export_model

        return export_model
    if name == "quantize":
        from .api import quantize

        return quantize
    raise AttributeError(f"module 'nascomp' has no attribute {name!r}")
