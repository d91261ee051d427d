"""Loading weights into a model with errors a user can act on.

Accepted files: a raw state dict, a dict holding one under ``state_dict``/``model``/``model_state_dict``
(``torch.load(weights_only=True)``), or a ``.safetensors`` file. A ``module.`` prefix (DataParallel) is
stripped. A checkpoint that does not fit raises :class:`CheckpointError` naming the counts of missing and
unexpected keys, and, where another registered model of the same family fits, that model's name.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path

import torch
from torch import nn

from ..errors import CheckpointError

_NESTED_KEYS = ("state_dict", "model", "model_state_dict", "student")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (torch pickle or safetensors), prefix ``module.`` stripped."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a folder; pass --weights with the checkpoint file in it")
    if not path.is_file():
        what = "is not a regular file" if path.exists() else "not found"
        raise CheckpointError(f"checkpoint {path} {what}; pass --weights with the path of an existing file")
    if path.suffix == ".safetensors":
        obj: object = read_safetensors(path)
    else:
        try:
            with warnings.catch_warnings():  # torch warns about foreign pickle protocols: the error line says it
                warnings.simplefilter("ignore")
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any failure to parse an untrusted file (a text file: KeyError)
            raise _unreadable(path, e) from None
    if isinstance(obj, dict):
        for key in _NESTED_KEYS:
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(f"checkpoint {path} holds no state dict (a dict of tensors); save model.state_dict()")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a ``.safetensors`` file; a damaged, truncated or foreign file is one CheckpointError line."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as e:
        raise _unreadable(Path(path), e) from None


def _unreadable(path: Path, e: BaseException) -> CheckpointError:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if isinstance(e, KeyError | UnicodeDecodeError | pickle.UnpicklingError | zipfile.BadZipFile):
        first = f"{type(e).__name__}: {first}"
    return CheckpointError(
        f"checkpoint {path} could not be read ({first[:120]}); is it a PyTorch/safetensors file and complete?"
    )


def _mismatch(model: nn.Module, state: dict[str, torch.Tensor]) -> tuple[list[str], list[str], list[str]]:
    own = model.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own]
    shapes = [k for k in own if k in state and own[k].shape != state[k].shape]
    return missing, unexpected, shapes


def _fitting_sibling(model_name: str, state: dict[str, torch.Tensor]) -> str | None:
    """Name another registered model of the same family that this state dict fits exactly."""
    from .registry import list_models, model_entry

    family = model_entry(model_name).cfg.family if ":" not in model_name else ""
    if not family:
        return None
    for other in list_models():
        entry = model_entry(other)
        if other == model_name or entry.cfg.family != family:
            continue
        if not any(_mismatch(entry.builder(num_classes=entry.cfg.num_classes), state)):
            return other
    return None


def load_weights(model: nn.Module, path: str | Path, model_name: str = "the model") -> None:
    """Load the weights at ``path`` into ``model`` strictly, or raise a :class:`CheckpointError`."""
    state = read_state_dict(path)
    missing, unexpected, shapes = _mismatch(model, state)
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[0]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[0]})")
        if shapes:
            k = shapes[0]
            parts.append(
                f"{len(shapes)} shape mismatches (e.g. {k}: {tuple(state[k].shape)} vs {tuple(model.state_dict()[k].shape)})"
            )
        sibling = _fitting_sibling(model_name, state)
        fix = f"it fits {sibling}: use --model {sibling}" if sibling else "check --model and --weights"
        raise CheckpointError(f"checkpoint {path} does not fit {model_name}: {', '.join(parts)}; {fix}")
    own = model.state_dict()
    state = {**{k: v for k, v in own.items() if k.endswith("num_batches_tracked")}, **state}
    model.load_state_dict(state, strict=True)
