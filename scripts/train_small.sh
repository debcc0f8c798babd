#!/usr/bin/env bash
# Train PRG's small checkpoint from scratch (the one that ships in src/prg/weights/prg-small):
#   PRG-Synth -> document index (MiniLM + BM25) -> retrieval cache -> stage 1 -> stage 2 -> bf16 export.
#
#   scripts/train_small.sh [WORK=data/small] [N=2000]
#
# Environment:
#   PRG_RETRIEVAL_CACHE=FILE  use this retrieval cache instead of building the index and cache here (a GPU host
#                             without the MiniLM package: build it elsewhere with the same N and seed, then copy)
#   STAGE1_MINUTES / STAGE2_MINUTES  wall-time budget of each stage (default: none, the configs' steps)
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
common=(--set "output_dir=$WORK/runs" --set "data.index=$WORK/index"
        --set "data.sources=[{path: $DS, kind: prg, rate: 4}, {path: $DS, kind: scene_qa, rate: 1}]")
s1=(); s2=()
[ -n "${STAGE1_MINUTES:-}" ] && s1=(--set "max_minutes=$STAGE1_MINUTES")
[ -n "${STAGE2_MINUTES:-}" ] && s2=(--set "max_minutes=$STAGE2_MINUTES")
$PRG train --config configs/train/small_stage1.yaml "${common[@]}" "${s1[@]}"
$PRG train --config configs/train/small_stage2.yaml "${common[@]}" "${s2[@]}" \
  --set "model.init=$WORK/runs/prg-small-stage1" \
  --set "data.sources=[{path: $DS, kind: prg, rate: 6}, {path: $DS, kind: scene_qa, rate: 1}]"
$PY -m prg.train.export "$WORK/runs/prg-small-stage2" "$WORK/prg-small" --note "dataset=PRG-Synth n=$N seed 0"
echo "exported $WORK/prg-small"
