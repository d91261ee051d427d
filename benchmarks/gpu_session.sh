#!/usr/bin/env bash
# The benchmarks of docs/BENCHMARKS.md marked "GPU", as one time-boxed session on a lent GPU machine.
#
#   NASCOMP_SHARED=$PWD/shared OUT=/tmp/out bash benchmarks/gpu_session.sh [JOB_SECONDS] [GROUPS]
#
# GROUPS: "dfq nasb" (default), one of them or "ft" (dfq: AutoReCon, generator budgets, paper settings; nasb:
# NASB; ft: benchmarks/dfq_finetune.py on generators trained elsewhere, each a folder
# $NASCOMP_SHARED/ft-sources/NAME with the run's config.yaml (paths relative to the checkout) and a
# checkpoint.pt of which only the "generator" entry is read).
# Expects ../shared's files in $NASCOMP_SHARED (a copy of ../shared inside the checkout travels to the GPU
# machine) and a python3 with torch, torchvision, numpy, pyyaml, safetensors, tqdm, scikit-learn. The jobs run
# side by side on the one GPU (each is launch-bound: small CIFAR models), each under `timeout JOB_SECONDS`;
# a job cut off leaves its run folders' logs, and its section is then missing. Results: the sections
# written into docs/BENCHMARKS.md (copied to $OUT) and $OUT/runs.tgz (logs, configs and metrics of every run).
#
# The (GPU) sections of 2026-11-26 were made at commit 3edaed5, whose `quick` preset was 200 generator steps, KD
# on the fixed calibration set and the epoch chosen on 512 held-out images (each section's budget line says
# so); run today, the same jobs measure the current presets.
set -u
JOB_SECONDS=${1:-420}
GROUPS_=${2:-dfq nasb}
: "${OUT:?set OUT to the folder for the results}" "${NASCOMP_SHARED:?set NASCOMP_SHARED to the copy of ../shared}"
export PYTHONPATH=$PWD/src:$PWD/benchmarks PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 NASCOMP_CACHE=/tmp/nascomp-cache
mkdir -p "$OUT" runs/gpu
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee "$OUT/session.log"
python3 -c "import torch, torchvision; print('torch', torch.__version__, torchvision.__version__)" | tee -a "$OUT/session.log"

W=$NASCOMP_SHARED/weights/cifar10/resnet20-12fca82f.th
TEST=$NASCOMP_SHARED/data/cifar10-jpeg/test.tar.gz
# Decode the test set once into the cache (the jobs below read it side by side) and check the teacher: 81.03.
python3 -m nascomp.cli eval --model cifar_resnet20 --weights "$W" --data "$TEST" --json 2>&1 | tail -1 | tee -a "$OUT/session.log"

job() {  # job NAME COMMAND...: run under the time box, log to runs/gpu/NAME.log
  local name=$1; shift
  ( start=$(date +%s); timeout "$JOB_SECONDS" "$@" > "runs/gpu/$name.log" 2>&1; rc=$?
    echo "$name: exit $rc after $(( $(date +%s) - start )) s" >> "$OUT/session.log" ) &
}
AR="python3 benchmarks/autorecon_cifar10.py --threads 1"
DFQ="python3 benchmarks/dfq_cifar10.py --threads 1 --generators gdfq --seeds 0 1"
if [[ " $GROUPS_ " == *" dfq "* ]]; then
for seed in 0 1; do
  job ar-quick-s$seed $AR --seeds $seed --runs runs/gpu/ar-quick
  job ar-gen800-s$seed $AR --seeds $seed --runs runs/gpu/ar-gen800 --set gen_steps=800
done
job dfq-gen800-calib4096 $DFQ --runs runs/gpu/gen800-calib4096 --set gen_steps=800 calib_size=4096
job dfq-gen800-epochs6 $DFQ --runs runs/gpu/gen800-epochs6 --set gen_steps=800 epochs=6
job dfq-paper-16 python3 benchmarks/dfq_cifar10.py --threads 1 --generators gdfq --seeds 0 --preset paper \
  --runs runs/gpu/paper16 --set epochs=16 warmup_epochs=1 milestones=4,8,12 --write \
  --title "GDFQ loop at the paper preset's settings, 16 of its 400 epochs (GPU)"
fi
if [[ " $GROUPS_ " == *" nasb "* ]]; then
job nasb-cap2 python3 benchmarks/nasb_cifar10.py --threads 1 --max-parameter-free 2 --out runs/gpu/nasb-cap2 \
  --write --title "NASB vs Bi-Real (CIFAR-10), parameter-free cap 2 (GPU)"
job nasb-nocap python3 benchmarks/nasb_cifar10.py --threads 1 --out runs/gpu/nasb-nocap \
  --write --title "NASB vs Bi-Real (CIFAR-10), no cap (GPU)"
fi
# ft: the fine-tune settings, chosen on CIFAR-10 train images (the test set stays for benchmarks/dfq_cifar10.py)
TRAIN=$NASCOMP_SHARED/data/cifar10-jpeg/train.tar.gz
FT="python3 benchmarks/dfq_finetune.py --threads 1 --runs runs/gpu/ft-val --set data=$TRAIN"
FT_VARIANTS=("preset" "lr3e-5 student_lr=3e-5" "lr3e-4-1ep student_lr=3e-4 epochs=1" "t4 temperature=4"
             "noce ce_weight=0" "calib4096-1ep calib_size=4096 epochs=1" "fixed fresh_images=false"
             "adam1e-4 student_optimizer=adam student_lr=1e-4" "adam1e-5 student_optimizer=adam student_lr=1e-5"
             "adam1e-6 student_optimizer=adam student_lr=1e-6")
if [[ " $GROUPS_ " == *" ft "* ]]; then
python3 -m nascomp.cli eval --model cifar_resnet20 --weights "$W" --data "$TRAIN" --json 2>&1 | tail -1 | tee -a "$OUT/session.log"
for src in "$NASCOMP_SHARED"/ft-sources/*; do  # one job per source and variant, side by side
  for v in "${FT_VARIANTS[@]}"; do
    job "ft-${v%% *}-$(basename "$src")" $FT --sources "$src" --variant $v
  done
done
fi
wait

# Sections from the finished runs (a section whose runs were cut off fails here and is left out).
if [[ " $GROUPS_ " == *" ft "* ]]; then
$FT --sources "$NASCOMP_SHARED"/ft-sources/* $(printf -- '--variant %s ' "${FT_VARIANTS[@]}") --write \
  --title "KD fine-tune settings on the same trained generators, CIFAR-10 train images (GPU)" >> "$OUT/session.log" 2>&1
fi
if [[ " $GROUPS_ " == *" dfq "* ]]; then
$AR --title "AutoReCon vs GDFQ generator (CIFAR-10, ResNet-20, W4A4), quick (GPU)" --seeds 0 1 --runs runs/gpu/ar-quick --report-only --write \
  >> "$OUT/session.log" 2>&1
$AR --title "AutoReCon vs GDFQ generator (CIFAR-10, ResNet-20, W4A4), generator 800 steps (GPU)" --seeds 0 1 --runs runs/gpu/ar-gen800 \
  --set gen_steps=800 --report-only --write >> "$OUT/session.log" 2>&1
for v in "gen800-calib4096 gen_steps=800 calib_size=4096" "gen800-epochs6 gen_steps=800 epochs=6"; do
  set -- $v
  $DFQ --runs runs/gpu/$1 --set $2 $3 --report-only --write --title "GDFQ data-free quantization (CIFAR-10, ResNet-20, W4A4), $1 (GPU)" \
    >> "$OUT/session.log" 2>&1
done
fi
cp docs/BENCHMARKS.md "$OUT/"
tar czf "$OUT/runs.tgz" --exclude='*.pt' --exclude='*.safetensors' runs/gpu
echo "done" >> "$OUT/session.log"
