"""The one training loop (engine/loop.py): lr schedules, the optimizer step, the fault guard, epoch means.

Written against planted bugs and mutants (docs/MUTATION.md): each assertion pins a value a mutant changes.
"""

from __future__ import annotations

import math

import pytest
import torch

from nascomp.engine.loop import check_finite, lr_factor, optimizer_step, run_epoch, set_lr
from nascomp.errors import ConfigError, NumericalError


def test_constant_and_step_schedules():
    assert lr_factor(5, 10, "constant") == 1.0
    assert lr_factor(0, 10, "step", [2, 4]) == 1.0
    assert lr_factor(1, 10, "step", [2, 4]) == 1.0
    assert lr_factor(2, 10, "step", [2, 4]) == pytest.approx(0.1)  # a milestone counts from its own epoch on
    assert lr_factor(3, 10, "step", [2, 4]) == pytest.approx(0.1)
    assert lr_factor(9, 10, "step", [2, 4]) == pytest.approx(0.01)
    assert lr_factor(9, 10, "step") == 1.0


def test_linear_schedule_decays_to_zero_and_stays_there():
    assert lr_factor(0, 4, "linear") == 1.0
    assert lr_factor(1, 4, "linear") == pytest.approx(0.75)
    assert lr_factor(4, 4, "linear") == 0.0
    assert lr_factor(9, 4, "linear") == 0.0
    assert lr_factor(0, 0, "linear") == 1.0  # no steps at all: no division by zero
    assert lr_factor(1, 0, "linear") == 0.0


def test_cosine_schedule_is_half_a_cosine_then_zero():
    assert lr_factor(0, 8, "cosine") == 1.0
    assert lr_factor(2, 8, "cosine") == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert lr_factor(4, 8, "cosine") == pytest.approx(0.5)
    assert lr_factor(8, 8, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(12, 8, "cosine") == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0, 0, "cosine") == 1.0


def test_an_unknown_schedule_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="'warm'.*constant, linear, cosine, step"):
        lr_factor(0, 1, "warm")


def test_set_lr_sets_every_group_and_accepts_no_optimizer():
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 5.0}], lr=1.0)
    set_lr(opt, 0.25)
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.25]
    set_lr(None, 0.5)


def _quadratic(grad_clip=None, lr=0.1):
    w = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = torch.optim.SGD([w], lr=lr)
    loss = (w * w).sum() / 2  # gradient = w
    return w, opt, optimizer_step(loss, opt, grad_clip)


def test_optimizer_step_applies_the_gradient_and_returns_the_loss():
    w, _, value = _quadratic()
    assert value == pytest.approx(12.5)
    assert w.detach().tolist() == pytest.approx([2.7, 3.6])


def test_optimizer_step_clips_the_gradient_norm():
    w, _, _ = _quadratic(grad_clip=1.0, lr=1.0)  # |grad| = 5 -> clipped to 1: step (0.6, 0.8)
    assert w.detach().tolist() == pytest.approx([2.4, 3.2], abs=1e-5)


def test_optimizer_step_zeroes_the_previous_gradient():
    w = torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([w], lr=1.0)
    w.grad = torch.tensor([100.0])  # a stale gradient must not be added to the new one
    optimizer_step((w * 2).sum(), opt)
    assert w.item() == pytest.approx(-1.0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_check_finite_stops_with_one_line_naming_the_value_and_where(bad):
    with pytest.raises(NumericalError) as info:
        check_finite({"ok": 1.0, "loss": bad}, "fine-tune, step 3")
    message = str(info.value)
    assert message.startswith("fine-tune, step 3: loss is ") and str(bad) in message and "\n" not in message
    check_finite({"loss": 1e30, "count": 3, "note": "text"}, "anywhere")  # finite and non-float values pass


def test_run_epoch_returns_means_and_sets_the_lr_before_each_step():
    seen = []

    def step(batch):
        return {"loss": float(batch), "twice": 2.0 * batch}

    means = run_epoch([1, 2, 6], step, "epoch", quiet=True, before_step=seen.append)
    assert means == {"loss": 3.0, "twice": 6.0} and seen == [0, 1, 2]
    assert run_epoch([], step, "epoch", quiet=True) == {}


def test_run_epoch_stops_at_the_first_non_finite_step():
    done = []

    def step(batch):
        done.append(batch)
        return {"loss": batch}

    with pytest.raises(NumericalError, match=r"^train, step 2: loss is nan"):
        run_epoch([1.0, float("nan"), 3.0], step, "train", quiet=True)
    assert len(done) == 2  # the third batch never ran


def test_cosine_over_a_single_step_ends_at_zero():
    assert lr_factor(1, 1, "cosine") == pytest.approx(0.0, abs=1e-12)


def test_a_parameter_without_a_gradient_this_step_is_not_moved():
    """zero_grad(set_to_none=True): a parameter the loss no longer reaches keeps no stale zero gradient, so
    weight decay or momentum do not move it."""
    a, b = torch.nn.Parameter(torch.tensor([1.0])), torch.nn.Parameter(torch.tensor([1.0]))
    opt = torch.optim.SGD([a, b], lr=0.5, weight_decay=0.1)
    b.grad = torch.tensor([3.0])
    optimizer_step((a * 2).sum(), opt)
    assert b.grad is None and b.item() == 1.0
    assert a.item() == pytest.approx(1.0 - 0.5 * (2.0 + 0.1))


def test_the_fault_line_says_the_checkpoint_is_kept_and_what_to_do():
    with pytest.raises(NumericalError) as info:
        check_finite({"loss": float("nan")}, "stage")
    assert str(info.value) == ("stage: loss is nan; the run stopped there and its last checkpoint is kept; lower "
                               "the learning rate or check the inputs, then --resume or start anew")


def test_a_single_step_epoch_returns_that_steps_values():
    assert run_epoch([4.0], lambda b: {"loss": b}, "epoch", quiet=True) == {"loss": 4.0}


def test_the_progress_bar_shows_name_count_and_latest_values_unless_quiet(capsys):
    from nascomp.engine.progress import set_progress_mode

    set_progress_mode("on")
    try:
        run_epoch((b for b in [1.0, 2.0, 3.0]), lambda b: {"loss": b}, "kd-epoch", total=3)
        err = capsys.readouterr().err
        assert "kd-epoch" in err and "/3 " in err and "loss=3" in err  # the total given, the last values
        run_epoch((b for b in [1.0]), lambda b: {"loss": b}, "kd-epoch", total=1, quiet=True)
        assert capsys.readouterr().err == ""
    finally:
        set_progress_mode("auto")
