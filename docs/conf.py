"""Sphinx configuration of the jrbm documentation site.

Build it from the repository root with
``sphinx-build -W --keep-going -b html docs docs/_build/html``.

The notebooks live in ``notebooks/`` as jupytext "percent" scripts, outside
this source folder, so each build copies them into ``docs/notebooks/`` (a
generated, git-ignored folder) with one added text cell saying at which size
they were run; myst-nb then reads them with jupytext and executes them.
The docs execute them at ``JRBM_NOTEBOOK_SIZE=small`` unless the variable is
set to ``full`` in the environment of the build.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

# Document and execute this checkout's jrbm, installed or not.
sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)

import jrbm  # noqa: E402

project = "jrbm"
release = version = jrbm.__version__

extensions = ["myst_nb", "sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode"]
exclude_patterns = ["_build", "conf.py", "jupyter_execute", ".jupyter_cache"]
html_theme = "furo"
html_title = f"jrbm {release}"

# autodoc and napoleon: Google-style docstrings, members in source order, signatures without type hints
# (the docstrings' Args: sections give the types in words).
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False
napoleon_use_param = False  # one entry per Args: line, so grouped names ("lower, upper: ...") stay one entry

# MyST: heading anchors for links such as [text](page.md#a-heading).
myst_heading_anchors = 3

# ---- notebooks -----------------------------------------------------------------------------------------

NOTEBOOK_SIZE = os.environ.setdefault("JRBM_NOTEBOOK_SIZE", "small")
os.environ.pop("JRBM_NOTEBOOK_SAVE_FIGURES", None)  # figures appear as cell outputs; nothing is written
nb_custom_formats = {".py": ["jupytext.reads", {"fmt": "py:percent"}]}
nb_execution_mode = "force"  # the .py copies; a notebook the tests executed says "off" in its own metadata
nb_execution_in_temp = True  # each notebook runs in a temporary working directory
nb_execution_timeout = 600  # seconds per cell
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True

_SIZE_NOTE = {
    "small": "Every loop, epoch and sample count is scaled down so that the notebook runs in 15 seconds to about 2 minutes: "
    "the numbers and figures below show what it computes, not the results its text discusses. Run it at "
    "`full` size for those (see `notebooks/README.md` in the repository).",
    "full": "These are the numbers and figures its text discusses.",
}


def _note_text() -> str:
    """The note on the size a page was run at (the cell after the title)."""
    return "\n".join(["```{note}", f"This page was executed with `JRBM_NOTEBOOK_SIZE={NOTEBOOK_SIZE}`, when the site was built "
                      "or, just before, by the test suite.", _SIZE_NOTE.get(NOTEBOOK_SIZE, ""), "```"])


def _with_note(text: str) -> str:
    """The notebook with a note on the size it was run at as its second cell, after the title cell."""
    note = ["# %% [markdown]", *("# " + line for line in _note_text().splitlines()), ""]
    second = text.find("\n# %%", text.find("# %%") + 1)
    if second < 0:
        second = len(text)
    return text[:second] + "\n" + "\n".join(note) + text[second:]


def _executed(src: Path):
    """The notebook as the test suite executed it (docs/_build/executed/), if that run is of this source at this size."""
    path = DOCS / "_build" / "executed" / f"{src.stem}.ipynb"
    if not path.exists():
        return None
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    stamp = nb.metadata.get("jrbm", {})
    if stamp.get("source_sha256") != hashlib.sha256(src.read_bytes()).hexdigest() or stamp.get("size") != NOTEBOOK_SIZE:
        return None
    return nb


def _copy_notebooks() -> None:
    """Put each notebooks/NN_*.py into docs/notebooks/, rewriting only what changed (so rebuilds stay incremental).

    Where the test suite has just executed the notebook (tests/test_notebooks.py
    leaves it in docs/_build/executed/, stamped with its source's digest and
    size), its outputs are used as they are (an ``.ipynb`` whose metadata turns
    myst-nb's execution off); otherwise the ``.py`` is copied and run.
    """
    target = DOCS / "notebooks"
    target.mkdir(exist_ok=True)
    sources = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    stems = {p.stem for p in sources}
    for stale in [*target.glob("*.py"), *target.glob("*.ipynb")]:
        if stale.stem not in stems:
            stale.unlink()
    for src in sources:
        nb = _executed(src)
        if nb is not None:
            import nbformat

            (target / src.name).unlink(missing_ok=True)
            nb.cells.insert(1, nbformat.v4.new_markdown_cell(_note_text()))
            nb.metadata["mystnb"] = {"execution_mode": "off"}  # shown with the test suite's outputs
            text = nbformat.writes(nb)
            dst = target / f"{src.stem}.ipynb"
        else:
            (target / f"{src.stem}.ipynb").unlink(missing_ok=True)
            text = _with_note(src.read_text(encoding="utf-8"))
            dst = target / src.name
        if not dst.exists() or dst.read_text(encoding="utf-8") != text:
            dst.write_text(text, encoding="utf-8")


def _python3_kernel() -> None:
    """A "python3" kernelspec, first on JUPYTER_PATH, that runs this interpreter (not a user-wide kernel's Python)."""
    tmp = tempfile.mkdtemp(prefix="jrbm-docs-")
    atexit.register(shutil.rmtree, tmp, ignore_errors=True)
    spec_dir = Path(tmp) / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "Python 3", "language": "python"}  # fmt: skip
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (tmp, os.environ.get("JUPYTER_PATH", "")) if p)


_copy_notebooks()
_python3_kernel()


def _skip_member(app, what, name, obj, skip, options):
    """Members that autodoc would otherwise document twice.

    * A NamedTuple's generated field properties ("Alias for field number 0"): the class's Attributes
      section describes its fields.
    * On a page other than ``jrbm``'s and its defining module's, a class that ``jrbm`` re-exports
      (``jrbm.train.FitState``, defined in ``jrbm.train.checkpoint``): it is documented under ``jrbm``
      and its own module, since a third description would claim the defining module's name again.
    """
    if (getattr(obj, "__doc__", None) or "").startswith("Alias for field number"):
        return True
    current = getattr(app.env, "current_document", None)  # Sphinx >= 8.2; env.docname before
    page = (current.docname if current is not None else app.env.docname).removeprefix("api/")
    if what == "module" and page != "jrbm" and isinstance(obj, type) and obj.__module__ != page and getattr(jrbm, name, None) is obj:
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_member)
