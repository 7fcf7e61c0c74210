"""Model names: the models shipped inside m2vsearch, and opt-in models from other packages.

A package adds a named model by declaring an entry point in the group ``m2vsearch.models`` whose
object is a function returning the model folder, e.g. in its pyproject.toml::

    [project.entry-points."m2vsearch.models"]
    gemma = "m2vsearch_gemma:model_dir"

That is how models under other licences (the Gemma-derived one: `packages/m2vsearch-gemma`) stay
out of the plain `pip install m2vsearch` and still load by name, with no download at run time.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from m2vsearch.errors import ModelError

if TYPE_CHECKING:
    from importlib import metadata

DEFAULT_MODEL_NAME = "default"
PACKAGED_MODELS = (DEFAULT_MODEL_NAME, "multilingual")  # folders under m2vsearch/models/
ENTRY_POINT_GROUP = "m2vsearch.models"
NO_LICENSE = "not recorded"  # what info shows for a model whose config names no licence
# Opt-in models this repository builds, and how to install each when it is asked for by name.
OPTIONAL_MODELS = {
    "gemma": "it is distilled from EmbeddingGemma-300M under the Gemma Terms of Use, so it ships apart: "
    "pip install ./packages/m2vsearch-gemma (from a clone of m2vsearch)",
}


def packaged_model_dir(name: str = DEFAULT_MODEL_NAME) -> Path:
    """The folder of a model shipped inside the package ("default" or "multilingual")."""
    return Path(__file__).resolve().parent.parent / "models" / name


def plugin_models() -> dict[str, metadata.EntryPoint]:
    """Named models that installed packages declare (entry point group ``m2vsearch.models``)."""
    from importlib import metadata  # 20 ms: only when a name is not a packaged model

    return {entry.name: entry for entry in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def is_model_name(name: str) -> bool:
    """Whether `name` names a packaged or installed plugin model (names win over folders)."""
    return name in PACKAGED_MODELS or name in plugin_models()


def not_installed_hint(name: str) -> str:
    """How to get an opt-in model this repository builds, or '' for any other name."""
    return f": {OPTIONAL_MODELS[name]}" if name in OPTIONAL_MODELS else ""


def named_model_dir(name: str) -> Path:
    """The folder of a named model; a one-line ModelError if it is not installed."""
    if name in PACKAGED_MODELS:
        folder = packaged_model_dir(name)
        if not folder.is_dir():
            raise ModelError(f"the packaged model '{name}' is not part of this installation of m2vsearch")
        return folder
    entry = plugin_models().get(name)
    if entry is None:
        raise ModelError(f"the model '{name}' is not installed{not_installed_hint(name)}")
    try:
        folder = Path(entry.load()())
    except Exception as exc:  # noqa: BLE001 - a broken plugin package must not become a traceback
        raise ModelError(f"the package providing the model '{name}' ({entry.value}) failed to load: {exc}") from None
    if not folder.is_dir():
        raise ModelError(f"the package providing the model '{name}' points at {folder}, which is not a folder")
    return folder
