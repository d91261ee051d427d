"""``--precision`` reaches every pipeline through the engine: the training/search forwards of NASB training, NASB
search and the generator search run under bf16 autocast when asked, and in fp32 otherwise."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch
from torch import nn

from nascomp.config import (
    GENERATOR_SEARCH_PRESETS,
    NASB_SEARCH_PRESETS,
    NASB_TRAIN_PRESETS,
    GeneratorSearchConfig,
    NASBSearchConfig,
    NASBTrainConfig,
    resolve,
)
from nascomp.errors import ConfigError
from nascomp.nasb import run_search, run_train
from nascomp.recon import search_generator

NASB_TINY = dict(channels=4, layers=3, subset=96, batch_size=32, epochs=1)


@contextlib.contextmanager
def conv_output_dtypes() -> Iterator[set[torch.dtype]]:
    """The dtypes of every Conv2d output while the block runs (a global forward hook)."""
    seen: set[torch.dtype] = set()

    def hook(module: nn.Module, _inputs, output) -> None:
        if isinstance(module, nn.Conv2d) and torch.is_grad_enabled():  # training/search steps, not evaluation
            seen.add(output.dtype)

    handle = nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def _nasb_train(tmp_path, precision: str) -> None:
    cfg = resolve(NASBTrainConfig, NASB_TRAIN_PRESETS, "demo",
                  {**NASB_TINY, "channels": None, "model": "cifar_birealnet20", "eval_subset": 32, "stages": 1,
                   "precision": precision})
    run_train(cfg, out=str(tmp_path / f"train-{precision}"), quiet=True)


def _nasb_search(tmp_path, precision: str) -> None:
    cfg = resolve(NASBSearchConfig, NASB_SEARCH_PRESETS, "demo", {**NASB_TINY, "plot": False, "precision": precision})
    run_search(cfg, out=str(tmp_path / f"search-{precision}"), quiet=True)


def _generator_search(tmp_path, precision: str, teacher: nn.Module) -> None:
    cfg = resolve(GeneratorSearchConfig, GENERATOR_SEARCH_PRESETS, "demo",
                  {"device": "cpu", "epochs": 1, "steps_per_epoch": 2, "precision": precision})
    search_generator(cfg, teacher, out=str(tmp_path / f"gen-{precision}"), quiet=True)


@pytest.mark.parametrize("pipeline", ["nasb-train", "nasb-search", "search-generator"])
def test_each_pipeline_runs_its_steps_in_the_precision_asked_for(tmp_path, demo_teacher, monkeypatch, pipeline):
    monkeypatch.setattr("nascomp.recon.search.plot_alpha_history", lambda *args: None)
    run = {"nasb-train": lambda p: _nasb_train(tmp_path, p), "nasb-search": lambda p: _nasb_search(tmp_path, p),
           "search-generator": lambda p: _generator_search(tmp_path, p, demo_teacher)}[pipeline]
    with conv_output_dtypes() as fp32_dtypes:
        run("fp32")
    with conv_output_dtypes() as bf16_dtypes:
        run("bf16")
    assert fp32_dtypes == {torch.float32}
    assert torch.bfloat16 in bf16_dtypes


def test_an_unknown_precision_is_one_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown precision 'fp16'"):
        _nasb_search(tmp_path, "fp16")
