"""The Gemma-derived static model for m2vsearch (`m2vsearch index --model gemma`).

Installing this package registers the name "gemma" with m2vsearch (entry point group
``m2vsearch.models``). The weights are a Model Derivative of EmbeddingGemma-300M and are used under
the Gemma Terms of Use: see NOTICE and model/README.md.
"""

from __future__ import annotations

from pathlib import Path

NOTICE = "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms"


def model_dir() -> Path:
    """The folder of the model (model2vec format, with its NOTICE)."""
    return Path(__file__).parent / "model"
