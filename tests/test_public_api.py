"""The public surface: every name in __all__ imports, and DESIGN.md's names are there."""

import jrbm

DESIGN_NAMES = {
    "BernoulliRBM", "GaussianRBM", "init_bernoulli", "init_gaussian",
    "energy", "free_energy", "p_h_given_v", "p_v_given_h", "sample_h_given_v", "sample_v_given_h",
    "gibbs_step", "gibbs_chain", "cd_grad", "pcd_grad", "CD", "PCD", "exact",
}


def test_all_names_import():
    for name in jrbm.__all__:
        assert getattr(jrbm, name) is not None, name
    assert sorted(jrbm.__all__) == jrbm.__all__


def test_design_names_are_public():
    assert DESIGN_NAMES <= set(jrbm.__all__)
    for name in ("log_partition", "log_likelihood", "grad"):
        assert callable(getattr(jrbm.exact, name))
