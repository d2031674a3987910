"""The Jacobian spectrum on the pages (issue 26): the Init explorer's section for its two sides, and the Train
page's spectrum at initialization and after training, computed on a button."""

import pytest

pytest.importorskip("streamlit")
from apptest import app  # noqa: E402

from lab import RunConfig  # noqa: E402

SPREAD_WORDS = ("orders of magnitude", "within a factor", "include numerically zero")


def chart_keys(at) -> list[str]:
    return [c.key for c in at.get("plotly_chart")]


def spectrum_captions(at) -> list[str]:
    return [c.value for c in at.caption if any(w in c.value for w in SPREAD_WORDS)]


def test_init_explorer_shows_both_sides_spectra_with_captions():
    at = app("pages/init_explorer.py")
    assert any(s.value == "Jacobian spectrum" for s in at.subheader)
    assert {"init_jacobian_density", "init_jacobian_moments"} <= set(chart_keys(at))
    captions = spectrum_captions(at)
    assert [c.split(":")[0] for c in captions] == ["A", "B"], captions
    assert all("orders of magnitude" in c or "within a factor" in c for c in captions)
    assert at.button_group(key="x_jacobian_inputs").value == "data"


def test_a_side_without_a_fixed_point_says_so_at_fixed_point_inputs():
    at = app("pages/init_explorer.py")
    # ReLU with He's variance times 4 (sigma_w^2 = 8): the length doubles and more per layer, no fixed point
    at.selectbox(key="xB_activation").set_value("relu")
    at.selectbox(key="xB_init").set_value("he_normal")
    at.number_input(key="xB_gain").set_value(2.0)
    at.form_submit_button[0].click().run()
    at.button_group(key="x_jacobian_inputs").set_value("fixed-point").run()
    assert not at.exception, [e.value for e in at.exception]
    infos = [i.value for i in at.info]
    assert any(i.startswith("B: ") and "no fixed point q*" in i for i in infos), infos
    # side A still has its spectrum, and the page says why fixed-point inputs
    assert [c.split(":")[0] for c in spectrum_captions(at)] == ["A"]
    assert {"init_jacobian_density", "init_jacobian_moments"} <= set(chart_keys(at))
    assert any("theory is stated at the fixed point" in c.value for c in at.caption)


def test_the_isometry_pair_button_sets_both_sides():
    at = app("pages/init_explorer.py")
    next(b for b in at.button if b.label.startswith("Try A: tanh, orthogonal")).click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert (at.selectbox(key="xA_init").value, at.selectbox(key="xB_init").value) == ("orthogonal", "lecun_normal")
    assert at.slider(key="xA_depth").value == 50 and at.button_group(key="x_jacobian_inputs").value == "fixed-point"
    a, b = spectrum_captions(at)
    assert "within a factor" in a and "isometry" in a
    assert "orders of magnitude" in b


def test_train_page_computes_both_spectra_on_the_button_after_a_default_run():
    at = app("pages/train.py")
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any(k.startswith("train_jacobian") for k in chart_keys(at))  # nothing paid before it is asked for
    (expander,) = [x for x in at.expander if x.label.startswith("Jacobian spectrum")]
    expander.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert {"train_jacobian_density", "train_jacobian_moments"} <= set(chart_keys(at))
    captions = spectrum_captions(at)
    assert [c.split(":")[0] for c in captions] == ["at initialization", "after training"], captions
    assert "Dashed: free probability" in captions[0] and "these have been trained" in captions[1]
    assert any("epoch 200 of 200, the run's last" in c.value for c in at.caption)
    at.toggle[0].set_value(True).run()  # another control: the spectra stay, with no button to press again
    assert {"train_jacobian_density", "train_jacobian_moments"} <= set(chart_keys(at))
    assert not [b for b in at.button if b.label == "Compute the spectrum"]


def test_a_run_without_its_weights_says_why_no_spectrum():
    at = app("pages/train.py", RunConfig(samples=200, epochs=2, depth=3, width=8, dtype="float64"))
    at.sidebar.form_submit_button[0].click().run()
    at.session_state["result"] = at.session_state["result"].slim()  # as a session keeps its older runs
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    (expander,) = [x for x in at.expander if x.label.startswith("Jacobian spectrum")]
    assert any("final weights were not kept" in c.value for c in expander.caption)
    assert not expander.button


def test_a_run_of_zero_epochs_shows_the_spectrum_at_initialization_only():
    """Its final weights are its initial ones: a second, "trained" spectrum of the same numbers would be false."""
    at = app("pages/train.py", RunConfig(samples=200, epochs=0, depth=3, width=8, dtype="float64"))
    at.sidebar.form_submit_button[0].click().run()
    (expander,) = [x for x in at.expander if x.label.startswith("Jacobian spectrum")]
    expander.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [c.split(":")[0] for c in spectrum_captions(at)] == ["at initialization"]
    assert any("has not trained yet" in c.value for c in at.caption)
