"""nascomp: compress pretrained CNNs with neural architecture search.

The Python API (the CLI is a thin layer over it)::

    import nascomp
    model = nascomp.load("runs/my-dfq-run")                  # any run folder -> nn.Module (deployable form)
    nascomp.export("runs/my-dfq-run", format="onnx", check="test.tar.gz")
    result = nascomp.dfq(my_model, mean=..., std=..., input_size=(3, 32, 32), wbits=4, abits=4,
                         data="test.tar.gz", out="runs/mine")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["dfq", "export", "load"]


def __getattr__(name: str) -> Any:  # imported on first use: `nascomp --version` needs no torch
    if name == "load":
        from .export.api import load_model

        return load_model
    if name == "export":
        from .export.api import export_model

        return export_model
    if name == "dfq":
        from .api import dfq

        return dfq
    raise AttributeError(f"module 'nascomp' has no attribute {name!r}")
