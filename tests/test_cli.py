import json
import subprocess
import sys

import pytest
import torch

from nascomp.cli import main
from run_metrics import reproducible
from shared_data import shared_weights

TINY = ["--gen-steps", "5", "--calib-size", "64", "--epochs", "1", "--batch-size", "32", "--quiet"]


def _error_line(capsys, argv) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_dfq_json_last_line_has_the_documented_keys(tmp_path, capsys):
    assert main(["dfq", "--out", str(tmp_path / "r"), "--json", *TINY]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result) >= {"fp_top1", "ptq_top1", "dfq_top1", "wbits", "abits", "seconds", "run_dir"}
    assert main(["eval", "--weights", result["run_dir"], "--data", "demo", "--json"]) == 0
    ev = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert ev["n"] == 497 and ev["top1"] == pytest.approx(result["dfq_top1"])


def test_loss_and_optimizer_options_reach_the_run_config(tmp_path, capsys):
    argv = ["dfq", "--out", str(tmp_path / "r"), "--ce-weight", "0", "--temperature", "4", "--student-optimizer", "adam"]
    assert main([*argv, *TINY]) == 0
    saved = (tmp_path / "r" / "config.yaml").read_text()
    assert "ce_weight: 0.0" in saved and "temperature: 4.0" in saved and "student_optimizer: adam" in saved


def test_bare_dfq_prints_a_table(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["dfq", *TINY]) == 0
    out = capsys.readouterr().out
    assert "FP teacher" in out and "PTQ" in out and "DFQ last epoch" in out
    assert len(list((tmp_path / "runs").iterdir())) == 1


@pytest.mark.parametrize("argv,message", [
    (["dfq", "--wbits", "9"], "wbits=9 is not supported"),
    (["dfq", "--abits", "1"], "abits=1 is not supported"),
    (["dfq", "--model", "resnet99", "--weights", "x.pt"], "unknown model"),
    (["dfq", "--model", "cifar_resnet20", "--weights", "missing.th"], "not found"),
    (["dfq", "--data", "no/such/folder"], "not found"),
    (["dfq", "--preset", "fast"], "unknown preset"),
    (["dfq", "--student-optimizer", "lion"], "unknown student_optimizer 'lion'; choose sgd or adam"),
    (["eval", "--model", "demo_net", "--weights", "missing.pt", "--data", "demo"], "not found"),
])
def test_user_errors_are_one_line_and_exit_2(capsys, argv, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert message in _error_line(capsys, argv)


def test_corrupt_and_mismatched_checkpoints(tmp_path, capsys):
    bad = tmp_path / "bad.th"
    bad.write_bytes(b"garbage")
    assert "could not be read" in _error_line(capsys, ["eval", "--model", "cifar_resnet20", "--weights", str(bad), "--data", "demo"])
    assert bad.read_bytes() == b"garbage"
    line = _error_line(capsys, ["eval", "--model", "cifar_resnet56", "--weights", str(shared_weights(20)), "--data", "demo"])
    assert "does not fit cifar_resnet56" in line and "cifar_resnet20" in line


def test_wrong_data_folder_and_broken_archive(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "no class folders" in _error_line(capsys, ["dfq", "--data", str(tmp_path / "empty"), *TINY])
    broken = tmp_path / "b.tar.gz"
    broken.write_bytes(b"nope")
    assert "broken" in _error_line(capsys, ["dfq", "--data", str(broken), *TINY])


def test_existing_run_folder_is_never_overwritten_without_force(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert "already holds files" in _error_line(capsys, ["dfq", "--out", str(out), *TINY])
    assert "not a nascomp run folder" in _error_line(capsys, ["dfq", "--out", str(out), "--force", *TINY])
    assert (out / "notes.txt").read_text() == "mine"


def test_unwritable_output_is_a_user_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert "cannot write" in _error_line(capsys, ["dfq", "--out", str(blocker / "sub"), *TINY])


def test_resume_with_another_config_is_refused(tmp_path, capsys):
    out = str(tmp_path / "r")
    assert main(["dfq", "--out", out, *TINY]) == 0
    line = _error_line(capsys, ["dfq", "--resume", out, "--wbits", "3", *TINY])
    assert "another config" in line and "wbits" in line
    assert "no run folder" in _error_line(capsys, ["dfq", "--resume", str(tmp_path / "nothing"), *TINY])


def test_console_script_exits_2_with_one_line():
    proc = subprocess.run([sys.executable, "-m", "nascomp.cli", "dfq", "--wbits", "1"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0 and "wbits=1" in proc.stderr
    assert torch.__version__.startswith("2.14.1")


def test_stop_after_pauses_at_a_checkpoint_and_resume_finishes_with_the_same_numbers(tmp_path, capsys):
    """--stop-after: the way a long run is spread over short GPU leases (exit 3, then --resume)."""
    argv = ["--gen-steps", "5", "--calib-size", "64", "--epochs", "2", "--batch-size", "32", "--quiet", "--json"]
    assert main(["dfq", "--out", str(tmp_path / "full"), *argv]) == 0
    full = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["dfq", "--out", str(tmp_path / "cut"), "--stop-after", "1e-9", *argv]) == 3
    err = capsys.readouterr().err.strip()
    assert "paused" in err and f"--resume {tmp_path / 'cut'}" in err and "\n" not in err
    assert not (tmp_path / "cut" / "metrics.json").exists()
    assert main(["dfq", "--resume", str(tmp_path / "cut"), *argv]) == 0
    resumed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert reproducible(resumed) == reproducible(full)


@pytest.mark.parametrize("argv", [
    ["dfq", "--preset", "quick-kd", "--gen-steps", "5", "--calib-size", "64", "--epochs", "2", "--batch-size", "32"],
    ["nasb", "train", "--model", "cifar_birealnet20", "--stages", "2", "--epochs", "1", "--subset", "64",
     "--eval-subset", "32", "--batch-size", "32"],
])
def test_resume_takes_the_runs_own_config_so_no_option_is_repeated(tmp_path, capsys, argv):
    """`--resume DIR` alone continues the run as it was started (its preset and options read from its
    config.yaml) and ends with the numbers of an uninterrupted run; an option given again must still match."""
    assert main([*argv, "--out", str(tmp_path / "full"), "--quiet", "--json"]) == 0
    full = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main([*argv, "--out", str(tmp_path / "cut"), "--stop-after", "1e-9", "--quiet"]) == 3
    capsys.readouterr()
    command = argv[:2] if argv[0] == "nasb" else argv[:1]
    line = _error_line(capsys, [*command, "--resume", str(tmp_path / "cut"), "--batch-size", "16", "--quiet"])
    assert "another config (batch_size: 32 there, 16 now)" in line
    assert main([*command, "--resume", str(tmp_path / "cut"), "--quiet", "--json"]) == 0
    resumed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert reproducible(resumed) == reproducible(full)


def test_resume_of_another_commands_run_names_the_command_that_continues_it(tmp_path, capsys):
    assert main(["dfq", "--out", str(tmp_path / "cut"), "--stop-after", "1e-9", *TINY]) == 3
    capsys.readouterr()
    for command in (["nasb", "train"], ["nasb", "search"], ["search-generator"]):
        line = _error_line(capsys, [*command, "--resume", str(tmp_path / "cut"), "--quiet"])
        assert f"holds a dfq run, not a {'-'.join(command)} run; continue it with nascomp dfq --resume" in line


def test_resume_leaves_the_device_to_this_machine_and_keeps_every_other_setting():
    """A run started with --device cuda continues on whatever machine resumes it (the class default unless
    --device is given again); every other saved setting is kept."""
    from nascomp.config import DFQConfig, resume_config

    saved = {"device": "cuda", "wbits": 3, "quiet": True}
    assert resume_config(DFQConfig, saved, None, {"device": None}).device == DFQConfig().device
    assert resume_config(DFQConfig, saved, None, {"device": "cpu"}).device == "cpu"
    assert resume_config(DFQConfig, saved, None, {}).wbits == 3 != DFQConfig().wbits


def test_precision_reaches_the_generator_and_a_bad_one_is_one_line(tmp_path, capsys):
    assert "precision" in _error_line(capsys, ["dfq", "--out", str(tmp_path / "x"), "--precision", "fp8", *TINY])
    assert not (tmp_path / "x").exists()
    runs = {}
    for name in ("fp32", "bf16+cl"):
        assert main(["dfq", "--out", str(tmp_path / name), "--precision", name, "--json", *TINY]) == 0
        runs[name] = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert "precision: bf16+cl" in (tmp_path / "bf16+cl" / "config.yaml").read_text()
    calib_lr = {name: json.loads((tmp_path / name / "metrics.json").read_text())["calib_lr"] for name in runs}
    assert runs["bf16+cl"]["dfq_top1"] > 50 and calib_lr["bf16+cl"] != calib_lr["fp32"]  # other arithmetic


@pytest.mark.parametrize("argv,needle", [
    (["dfq", "--epochs", "-1"], "--epochs -1"), (["dfq", "--gen-steps", "-1"], "--gen-steps -1"),
    (["dfq", "--holdout-size", "-5"], "--holdout-size -5"), (["dfq", "--temperature", "-1"], "--temperature"),
    (["dfq", "--calib-size", "100000000"], "--calib-size"), (["dfq", "--student-lr", "inf"], "--student-lr"),
    (["nasb", "search", "--max-parameter-free", "-1"], "--max-parameter-free -1"),
    (["nasb", "train", "--subset", "-1"], "--subset -1"),
])
def test_out_of_range_numbers_are_refused_at_parse_time_without_a_run_folder(tmp_path, capsys, argv, needle):
    assert needle in _error_line(capsys, [*argv, "--out", str(tmp_path / "r")])
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("argv", [["dfq", "--wbits", "x"], ["eval", "--weights", "w", "--data", "demo", "--batch-size", "0"]])
def test_a_malformed_option_is_one_line_not_the_usage(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and "\n" not in err and "usage" not in err and "--help" in err


def _nascomp(*args: str, cwd) -> subprocess.CompletedProcess:
    """The command as a user runs it, output to pipes (not a terminal); bytes, so carriage returns stay."""
    return subprocess.run([sys.executable, "-m", "nascomp", *args], cwd=cwd, capture_output=True, timeout=300)


def test_in_a_log_file_there_are_no_progress_frames_and_stdout_is_one_json_object(tmp_path, demo_teacher):
    done = _nascomp("dfq", "--out", "r", "--json", *TINY[:-1], cwd=tmp_path)
    assert done.returncode == 0 and b"\r" not in done.stderr and b"PTQ W4A4" in done.stderr  # logs on stderr
    assert json.loads(done.stdout)["run_dir"] == "r"  # stdout holds the result only
    forced = _nascomp("dfq", "--out", "r2", "--progress", "on", *TINY[:-1], cwd=tmp_path)
    assert forced.returncode == 0 and b"\r" in forced.stderr and b"\r" not in forced.stdout


def test_a_model_other_than_the_demo_needs_data_and_no_run_folder_is_left(tmp_path, capsys, monkeypatch):
    from nascomp.models import create_model

    monkeypatch.chdir(tmp_path)
    torch.save(create_model("cifar_resnet20").state_dict(), tmp_path / "w.th")
    line = _error_line(capsys, ["dfq", "--model", "cifar_resnet20", "--weights", "w.th", "--out", "r"])
    assert "needs --data" in line and not (tmp_path / "r").exists()


def test_a_model_without_batchnorm_is_refused_up_front(tmp_path, capsys):
    import torchvision

    weights = tmp_path / "squeezenet.pt"
    torch.save(torchvision.models.squeezenet1_0().state_dict(), weights)
    argv = ["dfq", "--model", "torchvision:squeezenet1_0", "--weights", str(weights), "--data", str(tmp_path / "none"),
            "--out", str(tmp_path / "r")]
    assert "no BatchNorm" in _error_line(capsys, argv) and not (tmp_path / "r").exists()


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith("nascomp ")


def test_evaluation_data_with_another_number_of_classes_is_refused(tmp_path, capsys):
    from PIL import Image

    for k in range(11):  # CIFAR-10's ten classes and one folder too many: every label after it would shift
        (tmp_path / "set" / f"c{k:02d}").mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "set" / f"c{k:02d}" / "0.png")
    from nascomp.models import create_model

    torch.save(create_model("cifar_resnet20").state_dict(), tmp_path / "w.th")
    line = _error_line(capsys, ["eval", "--model", "cifar_resnet20", "--weights", str(tmp_path / "w.th"),
                                "--data", str(tmp_path / "set")])
    assert "11 class folders" in line and "predicts 10" in line
