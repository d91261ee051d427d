"""Plant each bug of issue 13's six categories, one at a time, in a copy of this tree, and check that the
tests meant to catch it fail (docs/MUTATION.md lists the plants and the tests that caught them).

    python scripts/plant_bugs.py            # all plants; python scripts/plant_bugs.py 0 5: those two

The chosen tests must pass without any plant first (else a failure would count as a catch).

A plant whose anchor text is gone (the code changed) is reported as such: update the anchor. The copy lives in
a temporary folder, so the working tree is never edited (other people may be running tests in it).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PLANTS = [
  # (category, file, old, new, tests)
  ("1 code execution on resume", "src/nascomp/engine/rundir.py",
   'ckpt = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True)',
   'ckpt = torch.load(self.checkpoint_path, map_location="cpu", weights_only=False)',
   "tests/engine/test_rundir.py::test_a_checkpoint_carrying_a_pickle_payload_is_refused_without_running_it"),
  ("2 --force deletes a folder that is no run", "src/nascomp/engine/rundir.py",
   'if not (path / RUN_MARKER).is_file():\n                raise RunDirError',
   'if False:\n                raise RunDirError',
   "tests/engine/test_rundir.py::test_force_never_deletes_a_folder_that_nascomp_did_not_make"),
  ("2 --force deletes the old run before the new one has a checkpoint", "src/nascomp/engine/rundir.py",
   '            os.replace(path, replaced)\n',
   '            shutil.rmtree(path)\n            replaced = None\n',
   "tests/engine/test_rundir.py::test_force_keeps_the_old_run_until_the_new_one_has_a_checkpoint"),
  ("3 numerical fault passes silently", "src/nascomp/engine/loop.py",
   '        if isinstance(value, float) and not math.isfinite(value):',
   '        if False:',
   "tests/engine/test_rundir.py::test_a_diverging_loss_stops_the_run_at_that_step_and_keeps_the_last_checkpoint "
   "tests/reliability/test_loop.py"),
  ("3 metrics.json holds NaN", "src/nascomp/engine/rundir.py",
   'json.dumps(_finite(data), indent=2, allow_nan=False)',
   'json.dumps(data, indent=2)',
   "tests/engine/test_rundir.py::test_metrics_json_is_strict_json"),
  ("4 damaged archive used in part (end of archive not verified)", "src/nascomp/data/archive.py",
   '    f = tar.fileobj\n    assert f is not None\n',
   '    return\n    f = tar.fileobj\n',
   "tests/reliability/test_damaged_data.py"),
  ("4 partial extraction cached (temp folder kept)", "src/nascomp/data/archive.py",
   '        if tmp is not None:\n            shutil.rmtree(tmp, ignore_errors=True)',
   '        if tmp is not None:\n            pass',
   "tests/reliability/test_damaged_data.py"),
  ("4 one class folder accepted", "src/nascomp/data/sources.py",
   '    if len(subdirs) == 1:\n        raise DataError',
   '    if len(subdirs) == -1:\n        raise DataError',
   "tests/reliability/test_damaged_data.py"),
  ("4 unreadable class folder silently empty", "src/nascomp/data/sources.py",
   'os.walk(folder, onerror=refuse)',
   'os.walk(folder)',
   "tests/reliability/test_damaged_data.py"),
  ("5 traceback for a damaged safetensors", "src/nascomp/models/checkpoint.py",
   '    except (SafetensorError, OSError, ValueError, RuntimeError, MemoryError) as e:',
   '    except (OSError, ValueError, RuntimeError, MemoryError) as e:',
   "tests/reliability/test_one_line_errors.py"),
  ("5 traceback for a deeply nested genotype", "src/nascomp/nas/genotype.py",
   '        except RecursionError:\n            raise ConfigError(\n                f"{source}: JSON nested too deeply',
   '        except ZeroDivisionError:\n            raise ConfigError(\n                f"{source}: JSON nested too deeply',
   "tests/reliability/test_one_line_errors.py"),
  ("5 huge size accepted at parse time", "src/nascomp/cli.py",
   'type=_input_size, help=', 'help=',
   "tests/reliability/test_one_line_errors.py"),
  ("6 disk full in a run folder is a traceback", "src/nascomp/engine/rundir.py",
   '    except OSError as e:\n        free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0',
   '    except ZeroDivisionError as e:\n        free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0',
   "tests/engine/test_rundir.py::test_a_full_disk_gives_one_line_and_leaves_the_last_checkpoint_loadable"),
  ("6 full cache reported as a broken archive", "src/nascomp/data/archive.py",
   '        if e.errno in WRITE_ERRNOS:', '        if False:',
   "tests/reliability/test_damaged_data.py"),
  ("4 evaluation class count not checked", "src/nascomp/dfq/sources.py",
   "    if len(imageset.classes) != num_classes:", "    if False:",
   "tests/test_cli.py::test_evaluation_data_with_another_number_of_classes_is_refused"),
  ("6 temporary file left behind by a failed write", "src/nascomp/engine/rundir.py",
   "        if tmp is not None and os.path.exists(tmp):\n            os.unlink(tmp)",
   "        if tmp is not None and os.path.exists(tmp):\n            pass",
   "tests/engine/test_rundir.py::test_a_full_disk_gives_one_line_and_leaves_the_last_checkpoint_loadable"),
  ("6 orphan temporary files not removed at resume", "src/nascomp/engine/rundir.py",
   "    for p in orphans:\n        p.unlink()", "    for p in orphans:\n        pass",
   "tests/engine/test_rundir.py::test_orphan_temporary_files_of_a_killed_write_are_removed_at_resume"),
]
only = sys.argv[1:]
ROOT = tempfile.mkdtemp(prefix="nascomp-plants-")
for name in ("src", "tests", "scripts", "docs", "benchmarks"):
    if (REPO / name).is_dir():
        shutil.copytree(REPO / name, Path(ROOT) / name, ignore=shutil.ignore_patterns("__pycache__"))
shutil.copy(REPO / "pyproject.toml", ROOT)
env = dict(os.environ, PYTHONPATH=f"{ROOT}/src")  # the copy is imported before the installed package
chosen = [(i, plant) for i, plant in enumerate(PLANTS) if not only or str(i) in only]


def pytest(tests: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *tests.split()],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


baseline = pytest(" ".join(sorted({t for _, plant in chosen for t in plant[4].split()})))
if baseline.returncode:  # a failure without any plant would count as a catch: refuse to measure
    print("the tests fail without any plant; fix them first:\n" + baseline.stdout[-2000:])
    sys.exit(2)
missed = 0
for i, (cat, path, old, new, tests) in chosen:
    full = os.path.join(ROOT, path)
    text = open(full).read()
    if text.count(old) != 1:
        print(f"[{i}] {cat}: anchor not found ({text.count(old)})", flush=True)
        continue
    open(full, "w").write(text.replace(old, new))
    try:
        t = time.time()
        r = pytest(tests)
        failed = [line for line in r.stdout.splitlines() if line.startswith("FAILED")]
        missed += r.returncode == 0
        print(f"[{i}] {cat}: rc={r.returncode} ({time.time()-t:.0f}s) {'CAUGHT' if r.returncode else 'MISSED'} "
              f"{failed[:1]}", flush=True)
    finally:
        open(full, "w").write(text)
shutil.rmtree(ROOT, ignore_errors=True)
sys.exit(1 if missed else 0)
