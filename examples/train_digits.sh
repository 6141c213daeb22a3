#!/usr/bin/env bash
# Trains the project's default model, examples/spikeclip-digits.pt, with spikeclip-train,
# offline, on CPU, then writes examples/spikeclip-digits.json (accuracies, firing rates, time).
# The committed file was made by this recipe before the hardware-aware stage snapped the
# threshold and the twin took per-value host exponents (issue 26); a run today gives a slightly
# different model (figures in examples/README.md, "On the hardware path").
#
#   bash examples/train_digits.sh            # from the repository root; ~5-10 min on 2 cores
#   WORK=/tmp/digits OUT=/tmp/d.pt bash examples/train_digits.sh
#
# Teacher (CLIP-style, made offline): MiniLM text features of the digit prompts + a small CNN
# image tower trained (CE, logit scale 50) against MiniLM's class matrix. Student: the `digits`
# config (spikeclip/training/presets.py). Stages: align-text -> align-image -> task fine-tuning
# of the teacher tower on the spiking text tower's class matrix -> dual-loss fine-tuning ->
# hardware-aware fine-tuning through the Loihi fake-quant twin, ending with the weights on the
# Loihi grid (hardware.quantize.grid_snap), so the saved float model is the one the hardware runs.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # one thread: on a shared 2-core machine two
# OpenMP threads wait on each other (measured 20x slower per step under load)
BIN="${BIN:-.venv/bin}"
WORK="${WORK:-build/digits}"
OUT="${OUT:-examples/spikeclip-digits.pt}"
REPORT="${REPORT:-examples/spikeclip-digits.json}"
rm -rf "$WORK"
mkdir -p "$WORK"
START=$(date +%s)
C=(--dataset digits --split-seed 0 --seed 42 --cache-dir "$WORK/cache" --no-progress
   --deterministic --threads "$OMP_NUM_THREADS")
T="$BIN/spikeclip-train"

# 0. the teacher: CNN image tower aligned to MiniLM's text features (zero-shot CLIP-style)
"$T" finetune-teacher "${C[@]}" --teacher minilm+conv --teacher-text --config digits \
    --out "$WORK/teacher-clip.pt" --epochs 12 --batch-size 64 --lr 2e-3 --eta-min 1e-5 \
    --logit-scale 50
# 1. text alignment (token embeddings initialized from MiniLM's table by PCA)
"$T" align-text "${C[@]}" --teacher minilm --config digits --init-embeddings \
    --out "$WORK/text.pt" --epochs 200 --batch-size 32 --lr 5e-3 --eta-min 5e-4 --state-every-epochs 50
# 2. image alignment to the teacher's image features
"$T" align-image "${C[@]}" --teacher minilm+conv --teacher-weights "$WORK/teacher-clip.pt" \
    --init "$WORK/text.pt" --out "$WORK/aligned.pt" --epochs 20 --batch-size 64 --lr 5e-3 \
    --eta-min 5e-4 --select top1
# 3. task fine-tuning of the teacher tower on the spiking text tower's class matrix
"$T" finetune-teacher "${C[@]}" --teacher minilm+conv --teacher-weights "$WORK/teacher-clip.pt" \
    --init "$WORK/aligned.pt" --out "$WORK/teacher-task.pt" --epochs 4 --batch-size 64 \
    --lr 5e-4 --eta-min 1e-5 --logit-scale 50
# 4. dual-loss fine-tuning (CE + KL to the task teacher, sum-reduced, weight 1, temperature 1)
"$T" finetune "${C[@]}" --teacher minilm+conv --teacher-weights "$WORK/teacher-task.pt" \
    --init "$WORK/aligned.pt" --out "$WORK/finetune.pt" --workdir "$WORK/finetune.work" --epochs 12 \
    --batch-size 64 --lr 5e-4 --eta-min 1e-5 --logit-scale 50
# 5. hardware-aware fine-tuning; 3 epochs: of 0-3, the one whose simulated top-1 on the
#    validation split was best among those with >= 99 % float-vs-simulation agreement there
"$T" finetune --hardware-aware "${C[@]}" --teacher minilm+conv \
    --teacher-weights "$WORK/teacher-task.pt" --init "$WORK/finetune.pt" --out "$OUT" --epochs 3 \
    --batch-size 64 --lr 1e-4 --logit-scale 50
END=$(date +%s)
"$BIN/python" examples/model_report.py --dataset digits --work "$WORK" --model "$OUT" \
    --out "$REPORT" --fidelity-splits val test --train-seconds $((END - START))
