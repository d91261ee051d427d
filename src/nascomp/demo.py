"""The built-in demo teacher: ``demo_net`` trained for seconds on scikit-learn's digits, cached.

The held-out split (``demo_digits("test")``) is kept for evaluation; the teacher trains on the rest.
The trained weights are cached in ``$NASCOMP_CACHE/demo/`` so the next run skips training.
"""

from __future__ import annotations

import torch
from torch import nn

from .cache import cache_dir
from .data import ImageBatches, demo_digits
from .engine import atomic_torch_save, rng_state, seed_everything, set_rng_state, train_classifier
from .models import create_model

DEMO_SEED, DEMO_EPOCHS = 0, 12


def demo_teacher() -> nn.Module:
    """The trained demo teacher (trained once, then loaded from the cache)."""
    path = cache_dir("demo") / f"demo_net-seed{DEMO_SEED}-e{DEMO_EPOCHS}-v2.pt"
    state = rng_state()
    seed_everything(DEMO_SEED)  # before the model is built: its initial weights must not depend on the caller
    model = create_model("demo_net")
    if path.is_file():
        set_rng_state(state)
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model.eval()
    batches = ImageBatches(demo_digits("train"), model.default_cfg, batch_size=64, shuffle=True, seed=DEMO_SEED)
    train_classifier(model, batches, DEMO_EPOCHS, lr=0.05)
    set_rng_state(state)
    atomic_torch_save(model.state_dict(), path)
    return model.eval()
