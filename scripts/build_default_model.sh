#!/usr/bin/env bash
# Rebuild the default model shipped in m2vsearch/models/default/ (the exact recipe).
#   scripts/build_default_model.sh [DATA]     DATA defaults to ../shared/data
# Needs the train extra (pip install torch==2.13.0 && pip install -e ".[train]").
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
scripts/get_teachers.sh minilm
export HF_HUB_OFFLINE=1
out=m2vsearch/models/default
card="$out/README.md"
m2vsearch distill teachers/all-MiniLM-L6-v2 --out "$out.new" --dims 256 \
    --vocab "$data/vocab/wordfreq_en/large_en.tsv" --vocab-size 50000 --sif 1e-4 --dtype int8
[ -f "$card" ] && cp "$card" "$out.new/README.md"
rm -rf "$out" && mv "$out.new" "$out"
sha256sum "$out/model.safetensors" "$out/tokenizer.json"
