"""Captions moved out of the pages into lab/report/summaries.py: Compare's best and weakest run, the Init explorer's label."""
import math

import pandas as pd

from lab import RunConfig
from lab.report import summaries


def table():
    return pd.DataFrame({"run": ["init=he_normal", "init=normal", "init=xavier_normal"],
                         "final_loss": [0.05, math.nan, 0.5],
                         "delta_ratio_init": [0.9, 1e-12, 0.02]})


def test_lowest_skips_missing_values():
    assert summaries.lowest(table(), "final_loss")["run"] == "init=he_normal"
    assert summaries.lowest(table(), "delta_ratio_init")["run"] == "init=normal"


def test_comparison_captions_name_the_best_and_the_weakest_run():
    loss = summaries.comparison_loss_caption(table())
    assert loss.startswith(f"Lowest final training loss: **init=he_normal** ({summaries.fmt(0.05)}). ")
    signal = summaries.comparison_signal_caption(table())
    assert f"layer 1 of **init=normal** gets {summaries.fmt(1e-12)}× the error signal" in signal


def test_network_label_shows_the_scale_only_where_the_init_has_one():
    assert summaries.network_label(RunConfig(activation="relu", init="he_normal", depth=5, width=100)) == \
        "relu, he_normal, 5×100"
    assert summaries.network_label(RunConfig(activation="tanh", init="normal", init_scale=0.05, depth=3,
                                             width=64)) == "tanh, normal (scale 0.05), 3×64"
