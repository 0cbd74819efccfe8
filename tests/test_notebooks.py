"""Every notebook in notebooks/ runs to the end at JRBM_NOTEBOOK_SIZE=small.

Each jupytext "percent" script is converted to a notebook in memory and
executed by nbclient in a fresh ``python3`` kernel, in a temporary working
directory, so nothing is written into the repository. A cell that raises
fails the test (several notebooks also assert their own identities). The
kernel inherits ``os.environ``; it imports the same ``jrbm`` as this process.
"""

from __future__ import annotations

import os
import site
from pathlib import Path

import pytest

jupytext = pytest.importorskip("jupytext")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

import jrbm  # noqa: E402

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("[0-9][0-9]_*.py"))


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 5, NOTEBOOKS


def _kernel_env(tmp_path) -> dict:
    env = {"JRBM_NOTEBOOK_SIZE": "small"}
    # The kernel must import the jrbm under test: where it is not installed
    # (a source checkout run with `python -m pytest`), put its folder on the path.
    root = str(Path(jrbm.__file__).resolve().parent.parent)
    site_dirs = {str(Path(p).resolve()) for p in site.getsitepackages() + [site.getusersitepackages()]}
    if root not in site_dirs:
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    for name, value in _kernel_env(tmp_path).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("JRBM_NOTEBOOK_SAVE_FIGURES", raising=False)
    nb = jupytext.read(path)
    client = nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # raises CellExecutionError on the first failing cell
    assert not list(tmp_path.glob("**/*.png")), "a notebook wrote a figure although JRBM_NOTEBOOK_SAVE_FIGURES is unset"
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
