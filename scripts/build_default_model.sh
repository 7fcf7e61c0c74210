#!/usr/bin/env bash
# Rebuild the default model shipped in m2vsearch/models/default/ (the exact recipe, v3).
#   scripts/build_default_model.sh [DATA]     DATA defaults to ../shared/data
# Needs the train extra (CPU torch first: see README). Every setting below was chosen on the
# development sets DATA/dev (never on DATA/beir): docs/quality.md has the tables.
#   1. distil all-MiniLM-L6-v2 with the 50k most frequent wordfreq words to 256 dims (SIF 1e-4);
#   2. pair training on 266k (query, positive) pairs from 17 train/ sources (largest capped;
#      12k pairs of six sources held out by scripts/prepare_pairs.py, never trained on);
#   3. teacher embeddings of every text under train/ (1.76M texts, shuffled; a resumable cache
#      outside the work tree), of which the first $TEXTS (less the held-out texts) are distilled:
#      whitened least-squares map into the teacher's space, then in-batch InfoNCE;
#   4. hybrid calibration on the held-out pairs and the dense weight chosen on dev.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
cache="${M2VSEARCH_CACHE:-$HOME/.cache/m2vsearch}/featurised-v3-minilm"
TEXTS=400000          # featurised texts used by stage 3 (the cache's first 40 shards)
LR=0.0003             # stage 3 learning rate (dev: 0.001 worse)
DIMS=32,64,128,256    # Matryoshka dims in the losses
DENSE_WEIGHT=0.3      # hybrid weight (benchmarks/hybrid_weight.py on dev)
scripts/get_teachers.sh minilm
export HF_HUB_OFFLINE=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=m2vsearch/models/default
m2vsearch distill teachers/all-MiniLM-L6-v2 --out "$work/base" --dims 256 \
    --vocab "$data/vocab/wordfreq_en/large_en.tsv" --vocab-size 50000 --sif 1e-4 --dtype float32
python scripts/prepare_pairs.py "$data" "$work/pairs"
m2vsearch train "$work"/pairs/train-*.jsonl --model "$work/base" --out "$work/pairs-model" \
    --epochs 1 --batch-size 512 --lr 0.01 --dims "$DIMS" --dtype float32
mapfile -t texts < <(ls "$data"/train/*/*.jsonl "$data"/train/*/*.jsonl.gz | sort)
m2vsearch featurise teachers/all-MiniLM-L6-v2 "${texts[@]}" --out "$cache" --first "$TEXTS"
m2vsearch train --featurised "$cache" --texts "$TEXTS" --exclude-texts "$work/pairs/holdout.jsonl" \
    --model "$work/pairs-model" --out "$work/final" --batch-size 512 --lr "$LR" --dims "$DIMS" --dtype int8
m2vsearch calibrate "$work/final" "$work/pairs/holdout.jsonl" --dense-weight "$DENSE_WEIGHT"
[ -f "$out/README.md" ] && cp "$out/README.md" "$work/final/README.md"
rm -rf "$out" && mv "$work/final" "$out"
sha256sum "$out/model.safetensors" "$out/tokenizer.json" "$out/config.json"
