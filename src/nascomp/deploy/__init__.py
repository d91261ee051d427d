"""Deployable output: the saved artefact of a run, its frozen form, ONNX / torch.export programs."""

from .api import export_model, load_model
from .artefact import load_artefact, save_artefact
from .frozen import freeze

__all__ = ["export_model", "freeze", "load_artefact", "load_model", "save_artefact"]
