#!/usr/bin/env bash
# Rebuild the default model shipped in m2vsearch/models/default/ (the exact recipe, v3).
#   scripts/build_default_model.sh [DATA]     DATA defaults to ../shared/data
# Needs the train extra (CPU torch first: see README). Every setting below was chosen on the
# development sets DATA/dev (never on DATA/beir): docs/quality.md has the tables.
#   1. distil all-MiniLM-L6-v2 with the 50k most frequent wordfreq words to 256 dims (SIF 1e-4);
#   2. pair training on 266k (query, positive) pairs from 17 train/ sources (largest capped;
#      12k pairs of six sources held out by scripts/prepare_pairs.py, never trained on);
#   3. teacher embeddings of every text under train/ (1.76M texts, shuffled; a resumable cache
#      outside the work tree), of which the first $TEXTS (less the held-out texts) are distilled
#      into both the stage-1 and the stage-2 model: whitened least-squares map into the teacher's
#      space, then in-batch InfoNCE;
#   4. the soup (mean table) of those two: an ensemble at no query cost;
#   5. a learned orthogonal rotation of the table that puts the directions that rank the training
#      pairs best first (Matryoshka prefixes improve; full-dim cosines unchanged);
#   6. hybrid calibration on the held-out pairs (at 32/64/128/256 dims) and dense weights chosen on dev.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
cache="${M2VSEARCH_CACHE:-$HOME/.cache/m2vsearch}/featurised-v3-minilm"
TEXTS=400000          # featurised texts used by stage 3 (the cache's first 40 shards)
LR=0.001              # stage 3 learning rate (dev: 0.0003, 0.003 and 0.01 measured)
DIMS=32,64,128,256    # Matryoshka dims in the losses
ROTATION_STEPS=300    # Matryoshka rotation (dev: 300 and 1000 measured)
DENSE_WEIGHT=0.5      # hybrid weight: best dev mean with every dev margin >= -0.005 (benchmarks/hybrid_weight.py)
WEIGHTS_AT=(--dense-weight-at 32=0.2 --dense-weight-at 64=0.3 --dense-weight-at 128=0.4)  # same rule, per index dims (--dims N)
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
for start in base pairs-model; do
    m2vsearch train --featurised "$cache" --texts "$TEXTS" --exclude-texts "$work/pairs/holdout.jsonl" \
        --model "$work/$start" --out "$work/$start-corpus" --batch-size 512 --lr "$LR" --dims "$DIMS" --dtype float32
done
m2vsearch soup "$work/base-corpus" "$work/pairs-model-corpus" --out "$work/soup" --dtype float32
m2vsearch rotate "$work/soup" "$work"/pairs/train-*.jsonl --out "$work/final" --dims 32,64,128 --steps "$ROTATION_STEPS" --dtype int8
m2vsearch calibrate "$work/final" "$work/pairs/holdout.jsonl" --dense-weight "$DENSE_WEIGHT" "${WEIGHTS_AT[@]}"
[ -f "$out/README.md" ] && cp "$out/README.md" "$work/final/README.md"
rm -rf "$out" && mv "$work/final" "$out"
sha256sum "$out/model.safetensors" "$out/tokenizer.json" "$out/config.json"
