"""The three textbook pages through Streamlit's AppTest: each runs, shows the text's numbers, and follows its inputs.

Each page script is run on its own (``AppTest.from_file``), so these tests do not depend
on app.py's navigation listing the pages.
"""
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

PAGES = Path(__file__).resolve().parent.parent / "pages"


def page(name):
    at = AppTest.from_file(str(PAGES / f"{name}.py"), default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text(at):
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [c.value for c in at.code]
    parts += [h.value for h in at.subheader] + [m.value for m in at.metric] + [x.value for x in at.latex]
    return "\n".join(parts)


def graph(at):
    (chart,) = at.get("graphviz_chart")
    return chart.proto.spec


def test_chain_rule_shows_the_texts_numbers():
    at = page("chain_rule")
    assert "Price: 715.0000000000001" in [h.value for h in at.subheader]
    dot = graph(at)
    for value in ["715.0000000000001", ">2.2<", "110.00000000000001", "3.3000000000000003", ">165<", ">650<", ">1.1<"]:
        assert value in dot, value
    body = text(at)
    assert "1.100000000000000088817841970012523233890533447265625" in body  # 1.1 as stored
    table = at.dataframe[0].value
    assert list(table["grad"][:5]) == ["2.2", "110.00000000000001", "3.3000000000000003", "165", "650"]


def test_chain_rule_follows_its_inputs():
    at = page("chain_rule")
    at.number_input(key="fs_apple_count").set_value(5)
    at.number_input(key="fs_tax").set_value(1.25).run()
    assert not at.exception
    # (100 * 5 + 150 * 3) * 1.25, exact in binary
    assert "Price: 1187.5" in [h.value for h in at.subheader]
    dot = graph(at)
    assert ">125<" in dot and ">950<" in dot  # d/d(apple count) = 100 * 1.25; d/d(tax) = 950
    assert "stores it exactly" in text(at)


def test_softmax_page_shows_y_minus_t_three_ways():
    at = page("softmax_loss")
    assert len(at.get("plotly_chart")) == 1
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["loss, step by step"] == metrics["loss, fused SoftmaxWithLoss"] == "0.305714"
    comparison = at.dataframe[0].value
    assert list(comparison.columns) == ["class", "dL/da by the chain", "dL/da fused (y - t)", "dL/da numerical"]
    assert comparison["dL/da fused (y - t)"].iloc[2] == pytest.approx(0.736597 - 1, abs=1e-6)
    assert "y_j - t_j" in text(at)


def test_softmax_page_follows_logits_and_target():
    at = page("softmax_loss")
    at.slider(key="sm_k").set_value(4).run()
    at.number_input(key="sm_logit_3").set_value(5.0)
    at.selectbox(key="sm_target").set_value(0).run()
    assert not at.exception
    comparison = at.dataframe[0].value
    assert len(comparison) == 4
    fused = comparison["dL/da fused (y - t)"]
    assert fused.iloc[0] < 0 and (fused.iloc[1:] > 0).all()  # y - t: negative only at the target
    assert comparison["dL/da numerical"].to_numpy() == pytest.approx(fused.to_numpy(), abs=1e-8)


def test_gradient_check_passes_by_default_and_catches_a_planted_bug():
    at = page("gradient_check")
    assert at.success and "All 3 layers pass" in at.success[0].value
    assert len(at.get("plotly_chart")) == 2
    labels = [m.label for m in at.metric]
    assert "backprop is faster by" in labels
    at.sidebar.checkbox(key="g_bug").check()
    at.sidebar.number_input(key="g_bug_layer").set_value(2)
    at.sidebar.selectbox(key="g_bug_kind").set_value("sign")
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception
    assert at.error and "Layers 1, 2 of 3 fail" in at.error[0].value
    table = at.dataframe[0].value
    assert list(table["passed"]) == [False, False, True]


def test_gradient_check_other_network_and_limits():
    at = page("gradient_check")
    at.sidebar.selectbox(key="g_activation").set_value("relu")
    at.sidebar.slider(key="g_depth").set_value(3)
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception
    assert "All 4 layers pass" in at.success[0].value
    # a bug in a layer the network does not have
    at.sidebar.checkbox(key="g_bug").check()
    at.sidebar.number_input(key="g_bug_layer").set_value(7)
    at.sidebar.form_submit_button[0].click().run()
    assert "hidden layer(s)" in at.error[0].value
    # too many parameters: the page says what it would cost instead of freezing
    at.sidebar.checkbox(key="g_bug").uncheck()
    at.sidebar.slider(key="g_depth").set_value(40)
    at.sidebar.select_slider(key="g_width").set_value(64)
    at.sidebar.form_submit_button[0].click().run()
    assert not at.exception
    assert at.warning and "forward passes" in at.warning[0].value
    assert not at.get("plotly_chart")
