#!/usr/bin/env bash
# Train PRG's small checkpoint from scratch (the one that ships in src/prg/weights/prg-small):
#   PRG-Synth -> document index (MiniLM + BM25) -> retrieval cache -> stage 1 -> stage 2 -> bf16 export.
#
#   scripts/train_small.sh [WORK=data/small] [N=2000] [N_EXTRA=6000]
#
# Two PRG-Synth datasets: WORK/prg_synth (seed 0, N records: the one evaluated) and WORK/prg_synth_s1 (seed 1,
# N_EXTRA records, its own corpus and index; 0 = none). Both train splits feed both stages, weighted by size.
#
# Environment:
#   PRG_RETRIEVAL_CACHE=FILE  use this retrieval cache instead of building the index and cache here (a GPU host
#                             without the MiniLM package: build it elsewhere with the same N and seed, then copy)
#   PRG_RETRIEVAL_CACHE_EXTRA=FILE  the same for the seed-1 dataset
#   STAGE1_MINUTES / STAGE2_MINUTES  wall-time budget of each stage (default: none, the configs' steps); the
#                             cosine ends with the budget unless FIT_TO_BUDGET=false (stage 2)
#   RESUME=1                  continue existing runs (--resume) instead of skipping them; a budgeted host
#                             (10-minute commands) runs the recipe in several calls this way
#   SKIP_STAGE1=1             leave stage 1 as it is (with RESUME=1: continue stage 2 only)
#   SKIP_STAGE2=1 / SKIP_EXPORT=1  stop after stage 1 / after stage 2
#   STAGE1_SET / STAGE2_SET   extra "key=value" overrides, space-separated (e.g. STAGE1_SET="steps=4000")
#   PRG=...                   the prg command (default: prg on PATH)
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-data/small}
N=${2:-2000}
N_EXTRA=${3:-6000}
PRG=${PRG:-prg}
PY=${PY:-python3}
DS=$WORK/prg_synth
EX=$WORK/prg_synth_s1
mkdir -p "$WORK"
# prepare FOLDER SEED N: the dataset; cache FOLDER INDEX CACHE: its retrieval cache (copied, or built through the
# index; stage 2 only, so stage 1 runs on a host without the MiniLM package)
prepare() { [ -f "$1/dataset.json" ] || $PRG data synth --out "$1" --n "$3" --seed "$2"; }
cache() {
  if [ -n "$3" ]; then
    mkdir -p "$1/retrieval" && cp "$3" "$1/retrieval/default.jsonl"
  elif [ ! -f "$1/retrieval/default.jsonl" ]; then
    [ -f "$2/CURRENT" ] || $PRG index build "$1/documents" --out "$2"
    $PRG data retrieval-cache "$1" --index "$2" -k 3
  fi
}
prepare "$DS" 0 "$N"
# sources written as YAML flow lists; the seed-1 data joins at three times the rate (three times the records)
p1="{path: $DS, kind: grasp_prompt, rate: 1}"
p2="{path: $DS, kind: prg, rate: 6}, {path: $DS, kind: scene_qa, rate: 1}"
if [ "$N_EXTRA" -gt 0 ]; then
  prepare "$EX" 1 "$N_EXTRA"
  r=$(( N_EXTRA / N ))
  p1="$p1, {path: $EX, kind: grasp_prompt, rate: $r}"
  p2="$p2, {path: $EX, kind: prg, rate: $(( 6 * r ))}, {path: $EX, kind: scene_qa, rate: $r}"
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
for kv in ${STAGE1_SET:-}; do s1+=(--set "$kv"); done
for kv in ${STAGE2_SET:-}; do s2+=(--set "$kv"); done
if [ -z "${SKIP_STAGE1:-}" ]; then
  stage prg-small-stage1 --config configs/train/small_stage1.yaml --set "output_dir=$WORK/runs" \
    --set "data.sources=[$p1]" "${s1[@]}"
fi
[ -n "${SKIP_STAGE2:-}" ] && exit 0
cache "$DS" "$WORK/index" "${PRG_RETRIEVAL_CACHE:-}"
[ "$N_EXTRA" -gt 0 ] && cache "$EX" "$WORK/index_s1" "${PRG_RETRIEVAL_CACHE_EXTRA:-}"
stage prg-small-stage2 --config configs/train/small_stage2.yaml --set "output_dir=$WORK/runs" \
  --set "data.index=$WORK/index" --set "model.init=$WORK/runs/prg-small-stage1" \
  --set "data.sources=[$p2]" "${s2[@]}"
[ -n "${SKIP_EXPORT:-}" ] && exit 0
$PY -m prg.train.export "$WORK/runs/prg-small-stage2" "$WORK/prg-small" --note "datasets=PRG-Synth n=$N seed 0 + n=$N_EXTRA seed 1"
echo "exported $WORK/prg-small"
