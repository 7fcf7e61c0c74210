#!/usr/bin/env bash
# Rebuild multilingual v3 (shipped until v3.1 replaced it; the exact recipe) into OUT (default
# multilingual-v3/): build_multilingual_model.sh's recipe without --debian-docs, at most 20,000
# pairs per file.
#   scripts/build_multilingual_model_v3.sh [DATA [OUT]]     DATA defaults to ../shared/data
set -euo pipefail
RECIPE=v3 exec "$(dirname "$0")/build_multilingual_model.sh" "${1:-../shared/data}" "${2:-multilingual-v3}"
