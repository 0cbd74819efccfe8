"""The README's code examples run as written (against the installed package)."""

import math
import re
from pathlib import Path

import jax

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_python_blocks_run():
    """Every example runs, and the training examples learn what the text says they learn."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 3
    namespace: dict = {}
    import jrbm

    data = jrbm.datasets.bars_and_stripes(4)
    start = float(jrbm.exact.log_likelihood(jrbm.init_bernoulli(jax.random.key(0), 16, 16, data=data), data).mean())
    # "from -11.09 at the start": near the uniform distribution over 2^16 patterns (the initial weights are small)
    assert abs(start - 16 * math.log(0.5)) < 0.01 and f"{start:.2f}" == "-11.09"
    checked = set()
    with jax.numpy_dtype_promotion("standard"):  # the README is user code; see tests/conftest.py
        for block in blocks:
            exec(compile(block, str(README), "exec"), namespace)
            if "estimator=jrbm.CD(10), epochs=300" in block:  # the fit snippet: well above its start, near -4.5
                assert namespace["history"]["log_likelihood"][-1] > start + 5, namespace["history"]["log_likelihood"]
                checked.add("fit")
            if "jrbm.fit_ensemble(" in block:  # a sweep in which the learning rate matters
                ll = namespace["history"]["log_likelihood"][:, -1]
                assert ll[0] < start + 0.1 and ll.max() > start + 4, ll
                checked.add("ensemble")
    assert checked == {"fit", "ensemble"}


def _guarantees() -> str:
    text = README.read_text()
    return " ".join(text[text.index("## Guarantees") :].split())  # one line: numbers may wrap


def test_guarantee_counts_match_the_tests():
    """The counts in the README's Guarantees section are those of the test files."""
    import test_io
    import test_properties
    import test_validation

    text = _guarantees()
    assert f"{len(test_validation.CASES)} cases of bad input" in text
    tests = Path(__file__).resolve().parent
    others = sum(p.read_text().count("pytest.raises(") for p in tests.glob("test_*.py") if p.name not in ("test_validation.py", "test_readme.py"))
    assert f"A further {others} `pytest.raises` checks" in text

    def examples(test):
        return test._hypothesis_internal_use_settings.max_examples

    claims = {
        "by enumeration ({} examples)": test_properties.test_free_energy_is_minus_log_sum_of_exp_minus_energy,
        "sums to 1 over all visible states ({})": test_properties.test_bb_likelihood_sums_to_one,
        "by enumerating the other layer ({})": test_properties.test_conditionals_are_the_normalised_joint,
        "changes with the key ({})": test_properties.test_gibbs_chain_is_reproducible_and_key_dependent,
        "the metadata exactly ({})": test_io.test_round_trip_property,
    }
    for claim, test in claims.items():
        assert claim.format(examples(test)) in text, claim
    assert "`log_sigma` at -8 and +8" in text and test_properties.LOG_SIGMA_EXTREMES == (-8.0, 8.0)


def test_readme_states_the_lowest_supported_versions():
    """The README names the lower bound of every runtime dependency it claims to be tested at."""
    pyproject = (README.parent / "pyproject.toml").read_text()
    deps = re.search(r"^dependencies = \[(.*?)\]", pyproject, re.S | re.M).group(1)
    bounds = dict(re.findall(r'"([A-Za-z0-9_-]+)>=([0-9.]+)"', deps))
    text = " ".join(README.read_text().split())
    tested = text[text.index("with its lowest bounds"):].split(")")[0]  # the parenthesised list of versions
    assert f"jax and jaxlib {bounds['jax']}" in tested and bounds["jaxlib"] == bounds["jax"]
    for name in ("optax", "chex", "numpy", "scikit-learn", "matplotlib", "tqdm"):
        assert f"{name} {bounds[name]}" in tested, name
    python = re.search(r'requires-python = ">=([0-9.]+)"', pyproject).group(1)
    assert f"Python {python} with its lowest bounds" in text
