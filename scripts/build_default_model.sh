#!/usr/bin/env bash
# Rebuild the default model shipped in m2vsearch/models/default/ (the exact recipe).
#   scripts/build_default_model.sh [DATA]     DATA defaults to ../shared/data
# Needs the train extra (pip install torch==2.13.0 && pip install -e ".[train]").
# Stage 1 distils all-MiniLM-L6-v2 (+ the 50k most frequent wordfreq words) to 256 dims;
# stage 2 trains it for retrieval on the (query, positive) pairs under DATA/train (never beir/);
# stage 3 embeds 340,000 texts from DATA/train with the teacher (cached in cache/featurised-minilm,
# resumable; about an hour on 2 CPU cores) and distils the teacher's geometry into the table.
set -euo pipefail
cd "$(dirname "$0")/.."
data="${1:-../shared/data}"
scripts/get_teachers.sh minilm
export HF_HUB_OFFLINE=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=m2vsearch/models/default
m2vsearch distill teachers/all-MiniLM-L6-v2 --out "$work/base" --dims 256 \
    --vocab "$data/vocab/wordfreq_en/large_en.tsv" --vocab-size 50000 --sif 1e-4 --dtype float32
# WordNet lemma -> definition pairs as pairs.jsonl (underscores in lemmas become spaces)
python - "$data/train/wordnet/lemma_definition_pairs.tsv" "$work/wordnet.jsonl" <<'PY'
import csv, json, sys
with open(sys.argv[1], encoding="utf-8") as src, open(sys.argv[2], "w", encoding="utf-8") as dst:
    rows = csv.reader(src, delimiter="\t")
    next(rows)
    for row in rows:
        if len(row) >= 2:
            dst.write(json.dumps({"query": row[0].replace("_", " "), "positive": row[1]}) + "\n")
PY
pairs=()
for name in debian_descriptions python_docs postgresql_docs django_docs sqlite_docs manpages chatterbot_corpus jargon; do
    pairs+=("$data/train/$name/pairs.jsonl")
done
m2vsearch train "${pairs[@]}" "$work/wordnet.jsonl" --model "$work/base" --out "$work/trained" \
    --epochs 1 --batch-size 512 --lr 0.01 --dims 32,64,128,256 --dtype int8
texts=("$data"/train/debian_descriptions/pairs.jsonl "$data"/train/manpages/{text,pairs}.jsonl)
for name in python_docs postgresql_docs sqlite_docs django_docs; do
    texts+=("$data/train/$name/text.jsonl" "$data/train/$name/pairs.jsonl")
done
texts+=("$data"/train/{jargon,devils_dictionary,chatterbot_corpus}/pairs.jsonl "$data/train/wordnet/synsets.jsonl")
for name in genesis inaugural movie_reviews product_reviews pros_cons sentence_polarity state_union subjectivity; do
    texts+=("$data/train/nltk_sentences/$name.jsonl")
done
m2vsearch featurise teachers/all-MiniLM-L6-v2 "${texts[@]}" --out cache/featurised-minilm --limit 340000
m2vsearch train --featurised cache/featurised-minilm --model "$work/trained" --out "$work/final" \
    --batch-size 512 --lr 0.0003 --dims 32,64,128,256 --dtype int8
[ -f "$out/README.md" ] && cp "$out/README.md" "$work/final/README.md"
rm -rf "$out" && mv "$work/final" "$out"
sha256sum "$out/model.safetensors" "$out/tokenizer.json"
