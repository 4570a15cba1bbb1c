#!/usr/bin/env bash
# One-shot GPU run: continue training for most of one call, then the GPU benchmarks, then a table.
#
#   scripts/gpu_run.sh RESULTS_DIR            (on the GPU machine: RESULTS_DIR=$OUT)
#
# Sent with the repository: .gpu/train.pack (`dinstyle pack-data ../shared/data/train`).
# Settings (environment, with defaults for one NVIDIA H200 and a 10-minute call):
#   BUDGET=560      seconds for the whole script (train, then bench, then the table)
#   BENCH=70        seconds kept for the benchmarks at the end
#   DEVICE=cuda     PACK=.gpu/train.pack   RESUME=weights/run (a run folder to continue)
#   BATCH=96 CROP=256 LR=3e-4 WARMUP=150   (lr scaled for the larger batch, warmed up from the resume step)
#   CKPT_MINUTES=2  a checkpoint into RESULTS_DIR/run this often
#   TEACHER=.gpu/teacher  a distillation teacher's folder (../shared/teacher copied there, carried
#                   along; never committed): when it exists, DISTILL_PAIRS fresh (content, style)
#                   pairs of the pack are rendered by it on the GPU first (scripts/teacher_targets.py)
#                   and training adds `--targets` with DISTILL_ARGS
#   DISTILL_PAIRS=20000  DISTILL_ARGS="--distill-weight 100 --distill-prob 0.5"
#   TRAIN_ARGS=""   more `dinstyle train` options, after the script's own (e.g. "--compile auto";
#                   training runs with --compile off: the compile trial of `auto` took ~170 s of a
#                   360-s call on the H200 and was slower there)
#   BENCH_SIZES=512x512,1080p,4K BENCH_BATCHES=1,8,32 BENCH_DTYPES=fp16,bf16
#   BENCH_FLAGS="--compile --cuda-graphs --video-stage"
# Results: RESULTS_DIR/run/{checkpoint.pt,log.jsonl,train_config.json}, train.txt, bench.json,
# bench.md, summary.md, targets.txt with a teacher (at most 9 files). Every step is guarded: a failure is logged and the
# script goes on to what is left.
set -u
OUT_DIR=${1:-${OUT:?give the results folder}}
BUDGET=${BUDGET:-560}; BENCH=${BENCH:-70}; DEVICE=${DEVICE:-cuda}
PACK=${PACK:-.gpu/train.pack}; RESUME=${RESUME:-weights/run}
BATCH=${BATCH:-96}; CROP=${CROP:-256}; LR=${LR:-3e-4}; WARMUP=${WARMUP:-150}
BENCH_SIZES=${BENCH_SIZES:-512x512,1080p,4K}; BENCH_BATCHES=${BENCH_BATCHES:-1,8,32}
BENCH_DTYPES=${BENCH_DTYPES:-fp16,bf16}; BENCH_FLAGS=${BENCH_FLAGS:---compile --cuda-graphs --video-stage}
START=$(date +%s)
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
PY=${PYTHON:-python3}
mkdir -p "$OUT_DIR/run"
WORK=$(mktemp -d)
left() { echo $(( BUDGET - ($(date +%s) - START) )); }

if [ ! -f "$OUT_DIR/run/checkpoint.pt" ]; then
  cp "$RESUME/checkpoint.pt" "$RESUME/train_config.json" "$OUT_DIR/run/" 2>/dev/null || echo "gpu_run: no run to resume in $RESUME" >&2
  cp "$RESUME/log.jsonl" "$OUT_DIR/run/" 2>/dev/null || true
fi
TEACHER=${TEACHER:-.gpu/teacher}; DISTILL_PAIRS=${DISTILL_PAIRS:-20000}
DISTILL_ARGS=${DISTILL_ARGS:---distill-weight 100 --distill-prob 0.5}; TARGETS_ARGS=""
if [ -f "$TEACHER/render.py" ] && [ "$DISTILL_PAIRS" -gt 0 ]; then
  if $PY scripts/teacher_targets.py --teacher "$TEACHER" --pack "$PACK" --out "$WORK/distill" --pairs "$DISTILL_PAIRS" \
      --device "$DEVICE" > "$OUT_DIR/targets.txt" 2>&1; then
    TARGETS_ARGS="--targets $WORK/distill $DISTILL_ARGS"
  else
    echo "gpu_run: rendering the teacher's targets failed (see targets.txt); training without them" >&2
  fi
  tail -n 1 "$OUT_DIR/targets.txt" >&2
fi
TRAIN_SECONDS=$(( $(left) - BENCH ))
echo "gpu_run: training for ${TRAIN_SECONDS}s on $DEVICE (batch $BATCH, crop $CROP, lr $LR)" >&2
$PY -m dinstyle train --resume "$OUT_DIR/run" --data-pack "$PACK" --device "$DEVICE" --batch-size "$BATCH" \
  --crop "$CROP" --lr "$LR" --warmup "$WARMUP" --time-budget "$TRAIN_SECONDS" --checkpoint-minutes "${CKPT_MINUTES:-2}" \
  --preview-every 0 --log-every 25 --checkpoint-every 1000000 --workers 8 --style-cache-dir "$WORK/cache" \
  --compile off $TARGETS_ARGS ${TRAIN_ARGS:-} \
  > "$OUT_DIR/train.txt" 2>&1 || echo "gpu_run: training ended with an error (see train.txt)" >&2
tail -n 3 "$OUT_DIR/train.txt" >&2

# bench the weights just trained (the cost depends only on the architecture)
$PY -m dinstyle export-weights "$OUT_DIR/run" --out "$WORK/weights" > /dev/null 2>&1 || echo "gpu_run: export failed" >&2
BENCH_LIMIT=$(( $(left) - 5 )); [ "$BENCH_LIMIT" -lt 1 ] && BENCH_LIMIT=1  # the first rows always run
$PY -m dinstyle bench -w "$WORK/weights" --device "$DEVICE" --sizes "$BENCH_SIZES" --batch-size "$BENCH_BATCHES" \
  --dtype "$BENCH_DTYPES" $BENCH_FLAGS --repeats 5 --time-limit "$BENCH_LIMIT" --out "$OUT_DIR/bench.json" \
  > "$OUT_DIR/bench.md" 2>&1 || echo "gpu_run: bench ended with an error (see bench.md)" >&2
$PY scripts/gpu_summary.py "$OUT_DIR" "$START" | tee "$OUT_DIR/summary.md"
rm -rf "$WORK"
echo "gpu_run: done in $(( $(date +%s) - START ))s" >&2
