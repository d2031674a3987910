"""Run names say the cures: a batch-norm run and a plain one are not both "relu/he_normal 20×64"."""
import pytest

from lab import RunConfig
from lab.experiments.compare import describe

PLAIN = RunConfig(depth=20, width=64)


@pytest.mark.parametrize("cure, words", [
    (dict(norm="batch"), "+BN"),
    (dict(norm="layer"), "+LN"),
    (dict(dropout=0.2), "drop 0.2"),
    (dict(clip_norm=1.0), "clip 1"),
    (dict(residual=True, residual_scale=0.2), "res α 0.2"),
    (dict(weight_decay=1e-4), "wd 1e-4"),
])
def test_a_runs_name_carries_its_cure(cure, words):
    name = describe(PLAIN.replace(**cure).validate())
    assert name.startswith("relu/he_normal 20×64") and words in name and name != describe(PLAIN)


def test_a_plain_run_keeps_its_short_name_and_cures_add_up():
    assert describe(PLAIN) == "relu/he_normal 20×64"
    both = describe(PLAIN.replace(norm="batch", dropout=0.1, residual=True, residual_scale=1 / 50 ** 0.5))
    assert "+BN" in both and "drop 0.1" in both and "res α 0.141" in both
    assert describe(PLAIN.replace(residual_scale=0.5)) == describe(PLAIN)  # the scale means nothing without residual
