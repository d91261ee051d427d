"""Model registry: ``create_model(name, weights=None)``; one module per family registers its constructors."""

from . import birealnet, cifar_resnet, demo_net, efficientnet_lite, multibase  # noqa: F401  (importing a family registers its models)
from .checkpoint import load_weights
from .registry import ModelCfg, create_model, list_models, model_entry, register_model

__all__ = ["ModelCfg", "create_model", "list_models", "load_weights", "model_entry", "register_model"]
