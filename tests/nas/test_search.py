"""ArchSearcher: first- and second-order DARTS steps on the toy space of conftest.py."""

from __future__ import annotations

import copy
import io
import json

import pytest
import torch
from torch import nn

from nascomp.nas import ArchParams, ArchSearcher, derive, split_parameters


def mse(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """The toy loss: reconstruct the input (``skip`` on both edges is exact)."""
    return nn.functional.mse_loss(model(batch), batch)


def searcher(model: nn.Module, order: int, w_lr: float = 0.05, a_lr: float = 0.1, **kwargs) -> ArchSearcher:
    weights, alphas = split_parameters(model)
    w_opt = torch.optim.SGD(weights, lr=w_lr, momentum=0.9)
    a_opt = torch.optim.Adam(alphas, lr=a_lr, betas=(0.5, 0.999))
    return ArchSearcher(model, model.arch, w_opt, a_opt, mse, order=order, **kwargs)


@pytest.mark.parametrize("order", [1, 2])
def test_search_drives_alpha_to_the_better_op_and_lowers_the_loss(order: int, toy) -> None:
    model = toy.model()
    s = searcher(model, order)
    train, val = toy.batches(30, seed=1), toy.batches(30, seed=2)
    held_out = toy.batches(1, seed=3)[0]
    with torch.no_grad():
        before = float(mse(model, held_out))
    for x_train, x_val in zip(train, val, strict=True):
        stats = s.step(x_train, x_val)
    assert set(stats) == {"train_loss", "val_loss", "grad_norm", "arch_grad_norm"}
    with torch.no_grad():
        after = float(mse(model, held_out))
    assert after < 0.1 * before
    snap = s.alpha_snapshot()["e"]
    skip = toy.space.kinds["e"].ops.index("skip")
    assert all(row[skip] > 0.5 for row in snap)
    assert derive(toy.space, model.arch).ops("e") == ["skip", "skip"]
    assert s.steps == 30


def test_alpha_snapshot_is_json_softmax_rows(toy) -> None:
    s = searcher(toy.model(), 1)
    snap = s.alpha_snapshot()
    json.dumps(snap)
    assert list(snap) == ["e"] and all(abs(sum(row) - 1) < 1e-6 for row in snap["e"])


def exact_unrolled_grad(model: nn.Module, x_train, x_val, xi: float) -> list[torch.Tensor]:
    """d/d alpha of L_val(w - xi * grad_w L_train(w, alpha), alpha), by autograd through the virtual step."""
    weights, alphas = split_parameters(model)
    names = {id(p): n for n, p in model.named_parameters()}
    grads = torch.autograd.grad(mse(model, x_train), weights, create_graph=True, allow_unused=True)
    virtual = {names[id(w)]: w if g is None else w - xi * g for w, g in zip(weights, grads, strict=True)}
    out = torch.func.functional_call(model, virtual, (x_val,))
    return list(torch.autograd.grad(nn.functional.mse_loss(out, x_val), alphas))


def test_second_order_gradient_matches_the_exact_unrolled_gradient(toy) -> None:
    model = toy.model(dtype=torch.float64)
    x_train, x_val = (
        toy.batches(1, seed=1, dtype=torch.float64)[0],
        toy.batches(1, seed=2, dtype=torch.float64)[0],
    )
    xi = 0.5
    exact = exact_unrolled_grad(model, x_train, x_val, xi)
    first = torch.autograd.grad(mse(model, x_val), list(model.arch.alphas()))
    s = searcher(model, 2, w_lr=0.0, a_lr=0.0, xi=xi)
    s.step(x_train, x_val)
    got = [p.grad for p in model.arch.alphas()]
    assert torch.allclose(got[0], exact[0], rtol=1e-5, atol=1e-9)
    assert not torch.allclose(got[0], first[0], rtol=1e-3)  # the Hessian term matters


def test_second_order_step_restores_weights_and_buffers_exactly(toy) -> None:
    model = toy.model()
    model.norm = nn.BatchNorm1d(4)

    def loss(m: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        return nn.functional.mse_loss(m(m.norm(batch)), batch)

    weights, alphas = split_parameters(model)
    w_opt = torch.optim.SGD(weights, lr=0.0)  # the weight step itself changes nothing
    a_opt = torch.optim.SGD(alphas, lr=0.1)
    s = ArchSearcher(model, model.arch, w_opt, a_opt, loss, order=2, xi=0.3)
    before = copy.deepcopy(model.state_dict())
    x_train, x_val = toy.batches(2, seed=4)
    reference = copy.deepcopy(model.norm)
    reference(x_train)  # the BN statistics after the weight step's forward pass alone
    s.step(x_train, x_val)
    after = model.state_dict()
    for name, value in before.items():
        if name.startswith("arch."):
            assert not torch.equal(value, after[name])
        elif name.startswith("norm.") and name != "norm.weight" and name != "norm.bias":
            assert torch.equal(after[name], reference.state_dict()[name.removeprefix("norm.")]), name
        else:
            assert torch.equal(value, after[name]), name
    assert all(torch.isfinite(p.grad).all() for p in model.arch.alphas())


def test_weight_step_clips_the_gradient_norm(toy) -> None:
    model = toy.model()
    weights, alphas = split_parameters(model)
    w_opt = torch.optim.SGD(weights, lr=1.0)
    s = ArchSearcher(model, model.arch, w_opt, torch.optim.SGD(alphas, lr=0.0), mse, grad_clip=1e-3)
    before = [w.detach().clone() for w in weights]
    stats = s.step(*toy.batches(2))
    moved = torch.linalg.vector_norm(
        torch.stack([(w - b).norm() for w, b in zip(weights, before, strict=True)])
    )
    assert stats["grad_norm"] > 1e-3 and moved <= 1e-3 * (1 + 1e-4)


def test_state_dict_round_trip_resumes_identically(toy) -> None:
    batches = list(zip(toy.batches(6, seed=1), toy.batches(6, seed=2), strict=True))
    model = toy.model(seed=0)
    s = searcher(model, 2)
    for x_train, x_val in batches[:3]:
        s.step(x_train, x_val)
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "search": s.state_dict()}, buffer)
    for x_train, x_val in batches[3:]:
        expected = s.step(x_train, x_val)

    buffer.seek(0)
    checkpoint = torch.load(buffer)
    resumed_model = toy.model(seed=7)
    resumed = searcher(resumed_model, 2)
    resumed_model.load_state_dict(checkpoint["model"])
    resumed.load_state_dict(checkpoint["search"])
    assert resumed.steps == 3
    for x_train, x_val in batches[3:]:
        got = resumed.step(x_train, x_val)
    assert got == expected
    for (name, a), b in zip(model.state_dict().items(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_optimizers_that_mix_weights_and_alphas_are_refused(toy) -> None:
    model = toy.model()
    weights, alphas = split_parameters(model)
    with pytest.raises(ValueError, match="w_optimizer holds architecture parameters"):
        ArchSearcher(
            model, model.arch, torch.optim.SGD(list(model.parameters()), lr=0.1), torch.optim.SGD(alphas), mse
        )
    with pytest.raises(ValueError, match="a_optimizer holds parameters that are not alphas"):
        ArchSearcher(model, model.arch, torch.optim.SGD(weights, lr=0.1), torch.optim.SGD(weights), mse)
    with pytest.raises(ValueError, match="order"):
        ArchSearcher(
            model,
            ArchParams({"e": (2, 4)}),
            torch.optim.SGD(weights, lr=0.1),
            torch.optim.SGD(alphas),
            mse,
            order=3,
        )


def test_distributed_gradient_averaging_matches_a_single_process(toy, tmp_path) -> None:
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    batches = list(zip(toy.batches(2, seed=1), toy.batches(2, seed=2), strict=True))
    plain_model = toy.model()
    plain = searcher(plain_model, 2)
    expected = [plain.step(*b) for b in batches]
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        model = toy.model()
        synced = searcher(model, 2)
        assert synced.distributed
        got = [synced.step(*b) for b in batches]
    finally:
        dist.destroy_process_group()
    assert got == expected
    for a, b in zip(plain_model.parameters(), model.parameters(), strict=True):
        assert torch.equal(a, b)
