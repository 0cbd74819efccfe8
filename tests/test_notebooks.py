"""Every notebook in notebooks/ runs to the end at JRBM_NOTEBOOK_SIZE=small.

Each jupytext "percent" script is converted to a notebook in memory and
executed by nbclient in a fresh ``python3`` kernel whose working directory is
a temporary folder, so nothing is written into the repository but the executed
notebooks, into the git-ignored ``docs/_build/executed/``, where the
documentation build finds them instead of running them again. A cell that
raises fails the test (the derivation notebooks also assert their own
identities). The kernel inherits ``os.environ`` and runs this interpreter,
importing the same ``jrbm`` as this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import site
import sys
from pathlib import Path

import jupytext
import nbclient
import nbformat
import pytest

import jrbm

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))


def test_notebooks_found():
    assert len(NOTEBOOKS) >= 5, NOTEBOOKS


def _kernel_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("JRBM_NOTEBOOK_SIZE", "small")
    monkeypatch.delenv("JRBM_NOTEBOOK_SAVE_FIGURES", raising=False)
    # A "python3" kernelspec first on JUPYTER_PATH that runs this interpreter,
    # not whatever other Python a user-wide kernelspec points to.
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python"}  # fmt: skip
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", os.pathsep.join([str(tmp_path / "jupyter"), os.environ.get("JUPYTER_PATH", "")]))
    # Where jrbm is not installed (a source checkout run with `python -m pytest`), put its folder on the path.
    root = str(Path(jrbm.__file__).resolve().parent.parent)
    site_dirs = {str(Path(p).resolve()) for p in site.getsitepackages() + [site.getusersitepackages()]}
    if root not in site_dirs:
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([root, os.environ.get("PYTHONPATH", "")]))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, monkeypatch):
    _kernel_environment(tmp_path, monkeypatch)
    workdir = tmp_path / "work"
    workdir.mkdir()
    nb = jupytext.read(path)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}})
    client.execute()  # raises nbclient.exceptions.CellExecutionError at the first cell that raises
    assert not list(workdir.rglob("*.png")), "a figure was saved although JRBM_NOTEBOOK_SAVE_FIGURES is unset"
    _keep_for_the_docs(path, nb)


def _keep_for_the_docs(path: Path, nb) -> None:
    """Writes the executed notebook to docs/_build/executed/ (ignored by git), stamped with its source's digest.

    The documentation build (docs/conf.py) shows these outputs instead of
    running the notebook again when the digest and the size match, so CI,
    which runs the tests and then builds the docs, runs each notebook once.
    """
    target = ROOT / "docs" / "_build" / "executed"
    if not (ROOT / "docs" / "conf.py").exists():  # an installed copy of the tests, not a checkout
        return
    target.mkdir(parents=True, exist_ok=True)
    nb.metadata["jrbm"] = {"source_sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "size": "small"}
    tmp = target / f".{path.stem}.ipynb.tmp"
    nbformat.write(nb, str(tmp))
    os.replace(tmp, target / f"{path.stem}.ipynb")
