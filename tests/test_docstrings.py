"""Every docstring example in jrbm runs and prints what it says (doctest), in a fresh process with JAX's defaults."""

import subprocess
import sys
import textwrap

import pytest

CODE = textwrap.dedent(
    """
    import doctest, importlib, pkgutil, sys
    import jrbm
    failed = []
    for info in pkgutil.walk_packages(jrbm.__path__, "jrbm."):
        if info.name == "jrbm.__main__":  # runs the command line on import
            continue
        module = importlib.import_module(info.name)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
        if result.failed:
            failed.append(info.name)
    print("FAILED:", failed)
    sys.exit(1 if failed else 0)
    """
)


@pytest.mark.slow
def test_docstring_examples_run():
    """In a subprocess: the examples are user code, run with float32 defaults (the suite enables x64)."""
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
