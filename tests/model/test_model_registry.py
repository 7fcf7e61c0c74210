"""Named models from other installed packages (entry point group ``m2vsearch.models``), as the
opt-in Gemma-derived model is shipped, and the licence of an index's model."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import random_model

from m2vsearch import ModelError, StaticModel


def install_plugin(site: Path, name: str, target: str, module: str = "") -> None:
    """A real installed distribution (a .dist-info folder on sys.path) whose entry point names a model."""
    module = module or f"plugin_{name}"
    dist = site / f"{module}-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[m2vsearch.models]\n{name} = {module}:model_dir\n")
    (site / f"{module}.py").write_text(
        textwrap.dedent(f"""
        from pathlib import Path
        def model_dir():
            return Path({target!r})
    """)
    )


@pytest.fixture()
def plugin_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    return site


def test_a_plugin_model_loads_by_name_and_indexes_record_its_license(tmp_path: Path, plugin_site: Path) -> None:
    from m2vsearch import Index

    model = random_model(dim=16)
    model.config["license"] = "gemma"
    model.save_pretrained(tmp_path / "model")
    install_plugin(plugin_site, "tinyplug", str(tmp_path / "model"))
    loaded = StaticModel.from_pretrained("tinyplug")
    assert loaded.fingerprint == model.fingerprint and loaded.license == "gemma"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("the red planet is mars\n")
    index = Index.create(tmp_path / "idx", model="tinyplug")
    index.add_path(docs)
    info = index.info()
    index.close()
    assert info["model"] == "tinyplug" and info["model_license"] == "gemma"  # stored by name, not by path
    assert StaticModel.from_pretrained("default").license == "apache-2.0"
    assert StaticModel.from_pretrained("multilingual").license == "mit"


def test_missing_and_broken_plugins_are_one_line_errors(tmp_path: Path, plugin_site: Path) -> None:
    from m2vsearch.model.registry import plugin_models

    if "gemma" not in plugin_models():  # CI installs packages/m2vsearch-gemma; then it loads instead
        with pytest.raises(
            ModelError, match="'gemma' is not installed: .*Gemma Terms of Use.*pip install ./packages/m2vsearch-gemma"
        ):
            StaticModel.from_pretrained("gemma")
    install_plugin(plugin_site, "gone", str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="points at .*nowhere, which is not a folder"):
        StaticModel.from_pretrained("gone")
    install_plugin(plugin_site, "broken", "", module="broken")
    (plugin_site / "broken.py").write_text("raise RuntimeError('half installed')\n")
    with pytest.raises(ModelError, match="failed to load: half installed"):
        StaticModel.from_pretrained("broken")


def test_cli_names_the_gemma_package_when_it_is_missing(tmp_path: Path) -> None:
    try:
        import m2vsearch_gemma  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("m2vsearch-gemma is installed here; this checks the message without it")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("hello\n")
    result = subprocess.run([sys.executable, "-m", "m2vsearch.cli", "index", str(docs), "--index", str(tmp_path / "idx"),
                             "--model", "gemma"], capture_output=True, text=True, check=False)  # fmt: skip
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "pip install ./packages/m2vsearch-gemma" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_the_gemma_package_when_installed() -> None:
    """CI installs packages/m2vsearch-gemma: its model loads by name and carries its notice."""
    gemma = pytest.importorskip(
        "m2vsearch_gemma", reason="m2vsearch-gemma is not installed (pip install ./packages/m2vsearch-gemma)"
    )
    model = StaticModel.from_pretrained("gemma")
    assert model.license == "gemma" and model.dim == 256
    folder = gemma.model_dir()
    assert gemma.NOTICE in (folder / "NOTICE").read_text(encoding="utf-8")
    assert json.loads((folder / "config.json").read_text())["teacher"] == "embeddinggemma-300m"
    vectors = model.encode(["Which planet is known as the Red Planet?", "Mars is the red planet."], dims=64)
    assert vectors.shape == (2, 64) and float(vectors[0] @ vectors[1]) > 0.3


def test_the_plain_package_ships_no_gemma_weights() -> None:
    import m2vsearch

    shipped = Path(m2vsearch.__file__).parent / "models"
    for config in shipped.glob("*/config.json"):
        data = json.loads(config.read_text())
        assert "gemma" not in str(data.get("teacher", "")).lower() and data.get("license") != "gemma", config
