"""Direct input optimisation (ZeroQ / DeepInversion style): the images lower BNS, and one seed gives one set."""

import torch

from nascomp.recon import BNStatistics, freeze_teacher
from nascomp.recon.direct import (
    DirectOptimizer,
    DirectSettings,
    balanced_labels,
    jitter_flip,
    optimise_images,
)


def _optimise(teacher, settings: DirectSettings) -> tuple[dict, dict]:
    bns = BNStatistics(teacher)
    try:
        torch.manual_seed(0)
        opt = DirectOptimizer(teacher, bns, teacher.default_cfg.input_size, 10, settings)
        opt.start(32)
        start = opt.result()
        while not opt.done:
            opt.update()
        assert opt.step == settings.steps
        return start, opt.result()
    finally:
        bns.remove()


def test_optimising_the_pixels_lowers_bns_and_the_loss_over_the_steps(demo_teacher):
    teacher = freeze_teacher(demo_teacher)
    start, end = _optimise(teacher, DirectSettings(steps=100))
    assert end["bns"] < start["bns"] and end["L_r"] < 0.5 * start["L_r"]
    assert (end["logits"].argmax(1) == end["labels"]).float().mean() > 0.9  # the teacher sees the requested labels
    _, ce_only = _optimise(teacher, DirectSettings(steps=100, bns_weight=0.0))
    assert end["bns"] < 0.5 * ce_only["bns"]  # the statistics term is what keeps the images near the BN statistics


def test_the_same_seed_gives_the_same_images_and_another_seed_others(demo_teacher):
    teacher = freeze_teacher(demo_teacher)
    settings = DirectSettings(steps=5)

    def images(seed: int) -> torch.Tensor:
        torch.manual_seed(seed)
        return optimise_images(teacher, 20, settings, batch_size=8)["images"]

    a, b, c = images(0), images(0), images(1)
    assert a.shape == (20, *teacher.default_cfg.input_size)
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_jitter_shifts_and_flips_the_batch_and_is_the_identity_when_off():
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).view(2, 1, 5, 5)
    assert torch.equal(jitter_flip(x, 0, False), x)
    torch.manual_seed(0)
    seen = [jitter_flip(x, 2, True) for _ in range(40)]
    candidates = {(dy, dx, f) for dy in range(-2, 3) for dx in range(-2, 3) for f in (False, True)}
    kinds = set()
    for y in seen:
        match = [(dy, dx, f) for dy, dx, f in candidates
                 if torch.equal(y, torch.flip(torch.roll(x, (dy, dx), (2, 3)), (3,)) if f else torch.roll(x, (dy, dx), (2, 3)))]
        assert match, "not a circular shift (and flip) of the batch"
        kinds.add(match[0][2]), kinds.add("shifted" if match[0][:2] != (0, 0) else "still")
    assert {True, False, "shifted"} <= kinds


def test_labels_are_balanced_over_the_classes():
    assert balanced_labels(12, 10, start=5).tolist() == [5, 6, 7, 8, 9, 0, 1, 2, 3, 4, 5, 6]


def test_every_step_sees_the_jittered_batch(demo_teacher):
    """Without shifts and flips the same seed gives other images: the steps go through J(X)."""
    teacher = freeze_teacher(demo_teacher)
    still = DirectSettings(steps=3, jitter=0, flip=False)
    torch.manual_seed(0)
    a = optimise_images(teacher, 8, still, batch_size=8)["images"]
    torch.manual_seed(0)
    b = optimise_images(teacher, 8, DirectSettings(steps=3), batch_size=8)["images"]
    assert not torch.allclose(a, b)
