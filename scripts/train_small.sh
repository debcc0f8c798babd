#!/usr/bin/env bash
# Train PRG's small checkpoint from scratch (the one that ships in src/prg/weights/prg-small):
#   PRG-Synth -> document index (MiniLM + BM25) -> retrieval cache -> stage 1 -> stage 2 -> bf16 export.
#
#   scripts/train_small.sh [WORK=data/small] [N=2000]
#
# Environment:
#   PRG_RETRIEVAL_CACHE=FILE  use this retrieval cache instead of building the index and cache here (a GPU host
#                             without the MiniLM package: build it elsewhere with the same N and seed, then copy)
#   STAGE1_MINUTES / STAGE2_MINUTES  wall-time budget of each stage (default: none, the configs' steps); the
#                             cosine ends with the budget unless FIT_TO_BUDGET=false (stage 2)
#   RESUME=1                  continue existing runs (--resume) instead of skipping them; a budgeted host
#                             (10-minute commands) runs the recipe in several calls this way
#   SKIP_STAGE2=1 / SKIP_EXPORT=1  stop after stage 1 / after stage 2
#   PRG=...                   the prg command (default: prg on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-data/small}
N=${2:-2000}
PRG=${PRG:-prg}
PY=${PY:-python3}
DS=$WORK/prg_synth
mkdir -p "$WORK"
[ -f "$DS/dataset.json" ] || $PRG data synth --out "$DS" --n "$N" --seed 0
if [ -n "${PRG_RETRIEVAL_CACHE:-}" ]; then
  mkdir -p "$DS/retrieval" && cp "$PRG_RETRIEVAL_CACHE" "$DS/retrieval/default.jsonl"
elif [ ! -f "$DS/retrieval/default.jsonl" ]; then
  $PRG index build "$DS/documents" --out "$WORK/index"
  $PRG data retrieval-cache "$DS" --index "$WORK/index" -k 3
fi
# stage NAME ARGS...: train unless the run exists; with RESUME=1 an existing run continues (--resume)
stage() {
  local name=$1; shift
  if [ -f "$WORK/runs/$name/latest" ]; then
    if [ -z "${RESUME:-}" ]; then echo "$name: already trained (RESUME=1 continues it)"; return; fi
    $PRG train "$@" --resume "$WORK/runs/$name"
  else
    $PRG train "$@"
  fi
}
s1=(); s2=()
[ -n "${STAGE1_MINUTES:-}" ] && s1=(--set "max_minutes=$STAGE1_MINUTES")
[ -n "${STAGE2_MINUTES:-}" ] && s2=(--set "max_minutes=$STAGE2_MINUTES" --set "fit_to_budget=${FIT_TO_BUDGET:-true}")
stage prg-small-stage1 --config configs/train/small_stage1.yaml --set "output_dir=$WORK/runs" \
  --set "data.sources=[{path: $DS, kind: grasp_prompt}]" "${s1[@]}"
[ -n "${SKIP_STAGE2:-}" ] && exit 0
stage prg-small-stage2 --config configs/train/small_stage2.yaml --set "output_dir=$WORK/runs" \
  --set "data.index=$WORK/index" --set "model.init=$WORK/runs/prg-small-stage1" \
  --set "data.sources=[{path: $DS, kind: prg, rate: 6}, {path: $DS, kind: scene_qa, rate: 1}]" "${s2[@]}"
[ -n "${SKIP_EXPORT:-}" ] && exit 0
$PY -m prg.train.export "$WORK/runs/prg-small-stage2" "$WORK/prg-small" --note "dataset=PRG-Synth n=$N seed 0"
echo "exported $WORK/prg-small"
