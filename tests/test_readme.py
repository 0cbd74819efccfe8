"""The README's code examples run as written (against the installed package)."""

import re
from pathlib import Path

import jax

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    with jax.numpy_dtype_promotion("standard"):  # the README is user code; see tests/conftest.py
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
