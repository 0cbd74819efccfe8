"""The documentation site's sources are complete, without building it (CI builds it; that takes minutes).

Every notebook has a page, every public module has an API page, every
``{include}`` of the README finds its markers, and CI runs the README's docs
build command as written.
"""

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import jrbm

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"

# Public modules: those jrbm exports, plus the modules of the re-exported estimators, samplers and
# constructors, the command line, the layer interface's helpers and the training-state files.
PUBLIC_MODULES = {
    "jrbm", "jrbm.estimators", "jrbm.sampling", "jrbm.params", "jrbm.cli", "jrbm.layers.base", "jrbm.train.checkpoint",
} | {f"jrbm.{name}" for name in jrbm.__all__ if inspect.ismodule(getattr(jrbm, name))}
# Top-level modules without a page.
UNDOCUMENTED: set[str] = set()


def _toctree(page: Path) -> list[str]:
    """The entries of the toctrees of a MyST page."""
    entries = []
    for block in re.findall(r"```\{toctree\}\n(.*?)```", page.read_text(), re.S):
        entries += [line.strip() for line in block.splitlines() if line.strip() and not line.startswith(":")]
    return entries


def test_every_notebook_has_a_page():
    notebooks = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
    assert notebooks
    assert _toctree(DOCS / "notebooks.md") == [f"notebooks/{stem}" for stem in notebooks]
    assert "notebooks" in _toctree(DOCS / "index.md")


def test_every_public_module_has_an_api_page():
    pages = _toctree(DOCS / "api" / "index.md")
    assert "api/index" in _toctree(DOCS / "index.md")
    top_level = {f"jrbm.{m.name}" for m in pkgutil.iter_modules(jrbm.__path__) if not m.name.startswith("_")}
    assert top_level - UNDOCUMENTED <= PUBLIC_MODULES, "a new module: give it a page in docs/api/ or list it in UNDOCUMENTED"
    for module in sorted(PUBLIC_MODULES):
        importlib.import_module(module)
        assert module in pages, module
        assert f".. automodule:: {module}\n" in (DOCS / "api" / f"{module}.md").read_text(), module


def test_included_sections_are_found():
    """Each {include} names an existing file, and its start-after and end-before markers are in it, in that order."""
    includes = 0
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts:
            continue
        for path, options in re.findall(r"```\{include\} (\S+)\n(.*?)```", page.read_text(), re.S):
            target = (page.parent / path).resolve()
            assert target.is_file(), (page, path)
            text = target.read_text()
            start = re.search(r"^:start-after: (.*)$", options, re.M)
            end = re.search(r"^:end-before: (.*)$", options, re.M)
            i = text.index(start.group(1)) if start else 0  # ValueError when a marker is missing
            if end:
                assert text.index(end.group(1), i) > i, (page, end.group(1))
            includes += 1
    assert includes >= 10


def test_ci_runs_the_readme_docs_command():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Documentation") :].split("\n## ")[0]
    commands = [line for line in section.splitlines() if line.startswith('pip install ".[docs]"')]
    assert commands == ['pip install ".[docs]" && sphinx-build -W --keep-going -b html docs docs/_build/html'], commands
    assert commands[0] in (ROOT / ".ci" / "run").read_text().splitlines()
