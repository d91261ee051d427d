"""Genie-D's parameterisation (latents + a small generator per batch) of the optimised image source."""

import pytest
import torch

from nascomp.recon import BNStatistics, freeze_teacher
from nascomp.recon.direct import DirectOptimizer, DirectSettings, optimise_images
from nascomp.recon.genie import GENERATOR_LR_RATIO, GenieGenerator, LatentBatch

LATENT = DirectSettings(steps=60, lr=0.05, parameterisation="latent")


@pytest.mark.parametrize("shape", [(3, 32, 32), (3, 30, 26), (1, 8, 8)])
def test_the_generator_gives_batches_of_the_image_shape_at_zero_mean_and_unit_variance(shape):
    torch.manual_seed(0)
    images = GenieGenerator(shape).train()(torch.randn(16, 256))
    assert images.shape == (16, *shape)
    mean, var = images.mean((0, 2, 3)), images.var((0, 2, 3), unbiased=False)
    assert torch.allclose(mean, torch.zeros(shape[0]), atol=1e-5) and torch.allclose(var, torch.ones(shape[0]), atol=1e-3)


def test_adam_gets_the_latents_at_lr_and_the_generator_at_a_tenth():
    groups = LatentBatch(4, (3, 8, 8)).param_groups(0.1)
    assert [g["lr"] for g in groups] == [0.1, pytest.approx(0.1 * GENERATOR_LR_RATIO)] and GENERATOR_LR_RATIO == 0.1
    assert groups[0]["params"][0].shape == (4, 256) and len(groups[1]["params"]) == 10  # linear, 2 convs, 2 affine BNs


def test_optimising_latents_and_generator_lowers_bns_and_moves_both(demo_teacher):
    teacher = freeze_teacher(demo_teacher)
    bns = BNStatistics(teacher)
    try:
        torch.manual_seed(0)
        opt = DirectOptimizer(teacher, bns, teacher.default_cfg.input_size, 10, LATENT)
        opt.start(32)
        z0 = opt.batch.z.detach().clone()
        w0 = opt.batch.generator.conv1.weight.detach().clone()
        start = opt.result()
        while not opt.done:
            opt.update()
        end = opt.result()
    finally:
        bns.remove()
    assert end["bns"] < 0.6 * start["bns"] and end["L_r"] < 0.2 * start["L_r"]
    assert (end["logits"].argmax(1) == end["labels"]).float().mean() > 0.75  # the teacher sees the requested labels
    assert not torch.allclose(opt.batch.z, z0) and not torch.allclose(opt.batch.generator.conv1.weight, w0)


def test_a_batch_saved_mid_way_resumes_to_the_same_images(demo_teacher):
    teacher = freeze_teacher(demo_teacher)
    settings = DirectSettings(steps=6, lr=0.1, parameterisation="latent")
    bns = BNStatistics(teacher)
    try:
        def run(cut: int | None) -> torch.Tensor:
            torch.manual_seed(0)
            opt = DirectOptimizer(teacher, bns, teacher.default_cfg.input_size, 10, settings)
            opt.start(8)
            while not opt.done:
                opt.update()
                if opt.step == cut:
                    state = opt.state_dict()
                    opt = DirectOptimizer(teacher, bns, teacher.default_cfg.input_size, 10, settings)
                    opt.load_state_dict(state)
            return opt.result()["images"]

        assert torch.equal(run(None), run(3))
    finally:
        bns.remove()


def test_latent_images_are_not_pixel_images_and_one_seed_gives_one_set(demo_teacher):
    teacher = freeze_teacher(demo_teacher)

    def images(settings: DirectSettings, seed: int = 0) -> torch.Tensor:
        torch.manual_seed(seed)
        return optimise_images(teacher, 12, settings, batch_size=6)["images"]

    short = DirectSettings(steps=3, lr=0.1, parameterisation="latent")
    a = images(short)
    assert torch.equal(a, images(short)) and not torch.allclose(a, images(short, seed=1))
    assert not torch.allclose(a, images(DirectSettings(steps=3)))
    with pytest.raises(ValueError, match="unknown parameterisation"):
        DirectSettings(parameterisation="vae")
    assert DirectSettings().lr == 0.25 and DirectSettings(parameterisation="latent").lr == 0.03


def test_the_bns_benchmark_reports_each_source_at_its_lrs_and_marks_the_defaults(tmp_path, monkeypatch):
    from benchmark_script import load_benchmark

    bench = load_benchmark("image_sources_bns")
    written = {}
    monkeypatch.setattr(bench, "write_section", lambda title, body: written.update({title: body}))
    body = bench.main(["--smoke", "--seeds", "0", "--write"])
    rows = [line for line in body.splitlines() if line.startswith("| pixels") or line.startswith("| Genie-D")]
    assert len(rows) == 4 and "| 0.25, default |" in rows[0] and "| 0.03 (generator 0.003), default |" in rows[2]
    assert "| 0.1 (generator 0.01) |" in rows[1] and list(written) == [bench.TITLE]
