"""The source text's worked examples: the fruit shop, softmax with loss, and the gradient check."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from lab.engine.activations import ACTIVATIONS
from lab.engine.config import RunConfig
from lab.engine.gradcheck import BUG_KINDS, check_problem, compare_gradients, gradient_check, parameter_count, planted_bug
from lab.worked.graphs import fruit_shop, fruit_shop_dot, rounding_story, show_number
from lab.worked.softmax_steps import TEXT_LOGITS, softmax_jacobian, softmax_steps

# --- the fruit shop ---------------------------------------------------------------------------


def test_fruit_shop_prints_what_the_text_prints():
    table = fruit_shop().set_index("edge")
    # the text's output, digit for digit
    assert show_number(table.loc["price", "value"]) == "715.0000000000001"
    printed = {"apple_price": "2.2", "apple_count": "110.00000000000001", "orange_price": "3.3000000000000003",
               "orange_count": "165", "tax": "650", "subtotal": "1.1"}
    assert {edge: show_number(table.loc[edge, "grad"]) for edge in printed} == printed


def test_fruit_shop_values_against_plain_arithmetic():
    table = fruit_shop().set_index("edge")
    tax = 1.1
    # computed here in the same order as the text's code, not through the layer objects
    assert table.loc["price", "value"] == (100 * 2 + 150 * 3) * tax == 715.0000000000001
    assert table.loc["price", "value"] != 715
    expected = {"apple_price": 1 * tax * 1 * 2, "apple_count": 1 * tax * 1 * 100,
                "orange_price": 1 * tax * 1 * 3, "orange_count": 1 * tax * 1 * 150,
                "tax": 1 * (100 * 2 + 150 * 3), "subtotal": tax, "apples_total": tax, "oranges_total": tax, "price": 1}
    for edge, want in expected.items():
        assert table.loc[edge, "grad"] == want, edge
    assert (table.loc["apple_price", "grad"], table.loc["apple_count", "grad"]) == (2.2, 110.00000000000001)
    assert (table.loc["orange_price", "grad"], table.loc["orange_count", "grad"]) == (3.3000000000000003, 165.0)
    assert (table.loc["tax", "grad"], table.loc["subtotal", "grad"]) == (650, 1.1)


@pytest.mark.parametrize("inputs", [(100, 2, 150, 3, 1.1), (99.5, 7, 0.3, 11, 1.08), (1.0, 0, 2.5, 4, 1.25)])
def test_fruit_shop_gradients_are_the_partial_derivatives(inputs):
    ap, an, op, on, tax = inputs
    table = fruit_shop(*inputs).set_index("edge")
    closed_form = {"apple_price": an * tax, "apple_count": ap * tax, "orange_price": on * tax,
                   "orange_count": op * tax, "tax": ap * an + op * on}
    for edge, want in closed_form.items():
        assert table.loc[edge, "grad"] == pytest.approx(want, rel=1e-12)
        assert table.loc[edge, "numerical"] == pytest.approx(want, rel=1e-6, abs=1e-6)
    assert table.loc["price", "value"] == pytest.approx((ap * an + op * on) * tax, rel=1e-15)


def test_fruit_shop_dot_shows_every_value_and_gradient():
    table = fruit_shop()
    dot = fruit_shop_dot(table)
    drawn = [line for line in dot.splitlines() if "->" in line and "invis" not in line]
    assert dot.startswith("digraph") and len(drawn) == 9
    for needle in ["715.0000000000001", "110.00000000000001", "3.3000000000000003", ">650<", ">200<", ">450<",
                   ">2.2<", ">165<"]:
        assert needle in dot, needle


def test_why_the_price_is_not_715():
    story = rounding_story(650, 1.1)
    assert not story["tax_is_exact"] and not story["product_is_exact"]
    # the stored 1.1, the exact product and the float result, each from Fraction independently
    assert Fraction(story["tax_stored"]) == Fraction(1.1) and Fraction(1.1) > Fraction(11, 10)
    assert Fraction(story["exact_product"]) == 650 * Fraction(1.1)
    assert Fraction(story["result"]) == Fraction(715.0000000000001)
    assert story["result"].startswith("715.00000000000011368683772161602973937988281")
    assert story["shown"] == "715.0000000000001"
    exact = rounding_story(650, 1.25)
    assert exact["tax_is_exact"] and exact["product_is_exact"] and exact["shown"] == "812.5"


def test_show_number():
    assert show_number(650.0) == "650" and show_number(650) == "650"
    assert show_number(0.1 + 0.2) == "0.30000000000000004"
    assert show_number(-2.5) == "-2.5"


# --- softmax with loss ------------------------------------------------------------------------

CASES = [(TEXT_LOGITS, 2), (TEXT_LOGITS, 0), ((1.0, 1.0), 1), ((0.5, -1.2, 3.3, 0.0, 2.2, -0.7), 4),
         ((12.0, -9.0, 0.0), 1)]


def _softmax_by_hand(a):
    e = np.exp(np.asarray(a, dtype=float) - max(a))
    return e / e.sum()


@pytest.mark.parametrize("logits, target", CASES)
def test_fused_backward_is_y_minus_t(logits, target):
    s = softmax_steps(logits, target)
    y = _softmax_by_hand(logits)
    t = np.eye(len(logits))[target]
    np.testing.assert_allclose(s.y, y, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(s.dL_da_fused, y - t, rtol=1e-10, atol=1e-15)
    assert s.loss == pytest.approx(-math.log(y[target]), rel=1e-12)
    assert s.fused_loss == pytest.approx(s.loss, rel=1e-12)


@pytest.mark.parametrize("logits, target", CASES)
def test_chain_of_local_derivatives_gives_y_minus_t(logits, target, numgrad):
    s = softmax_steps(logits, target)
    t = np.eye(len(logits))[target]
    np.testing.assert_allclose(s.dL_dy, -t / s.y, rtol=1e-12)
    np.testing.assert_allclose(s.dL_da_chain, s.dL_da_fused, rtol=1e-9, atol=1e-14)
    # an independent central difference of -log softmax(a)[target]
    a = np.array(logits, dtype=float)
    numerical = numgrad(lambda: -math.log(_softmax_by_hand(a)[target]), a)
    np.testing.assert_allclose(s.dL_da_numerical, numerical, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(s.dL_da_fused, numerical, rtol=1e-5, atol=1e-8)
    assert s.max_diff < 1e-7
    np.testing.assert_allclose(s.dL_dy_numerical, s.dL_dy, rtol=1e-5)


def test_chain_steps_in_order():
    s = softmax_steps(TEXT_LOGITS, 2)
    chain = s.chain.set_index("step")["upstream"]
    assert list(chain.index) == ["L = -f3", "f3 = sum f2", "f2 = t * f1", "f1 = log y", "y = softmax(a)", "a"]
    np.testing.assert_array_equal(chain["f2 = t * f1"], [-1.0, -1.0, -1.0])
    np.testing.assert_array_equal(chain["f1 = log y"], [0.0, 0.0, -1.0])
    assert not np.signbit(chain["f1 = log y"][:2]).any()  # no -0.0 on the page


def test_softmax_jacobian_against_central_differences(numgrad):
    a = np.array([0.2, -1.0, 2.0, 0.7])
    jac = softmax_jacobian(_softmax_by_hand(a))
    for i in range(4):
        np.testing.assert_allclose(jac[i], numgrad(lambda i=i: _softmax_by_hand(a)[i], a), rtol=1e-6, atol=1e-10)


def test_softmax_steps_rejects_bad_input():
    with pytest.raises(ValueError):
        softmax_steps([1.0], 0)
    with pytest.raises(ValueError):
        softmax_steps([1.0, 2.0], 2)


# --- the gradient check -----------------------------------------------------------------------

PAGE_DEFAULT = RunConfig(depth=2, width=8, activation="tanh", init="xavier_normal", bias_std=0.1).validate()


def _problem(activation="tanh", depth=2, seed=0):
    config = PAGE_DEFAULT.replace(activation=activation, depth=depth, seed=seed, leaky_slope=0.2)
    return check_problem(config)


def _distance_to_kinks(model, X):
    keep = []
    model.forward(X, keep)
    return min((np.abs(z - k).min() for z, _ in keep for k in model.activation.kinks), default=math.inf)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_check_passes_for_every_activation(activation):
    model, X, t = _problem(activation)
    assert _distance_to_kinks(model, X) > 1e-4  # central differences must not straddle a kink
    params = model.flat_params.copy()
    result = compare_gradients(model, X, t, repeats=3)
    assert result.passed, result.table
    assert (result.table["rel_error"] < 1e-6).all()
    np.testing.assert_allclose(result.table["numerical_norm"], result.table["backprop_norm"], rtol=1e-6)
    np.testing.assert_array_equal(model.flat_params, params)
    # the same verdict and errors as the lab's gradient_check on the same network
    reference = gradient_check(model, X, t)
    np.testing.assert_allclose(result.table["rel_error"], reference["rel_error"], rtol=1e-6, atol=1e-15)


@pytest.mark.parametrize("kind", sorted(BUG_KINDS))
def test_planted_bug_fails_the_layers_below_it(kind):
    model, X, t = _problem("tanh", depth=3)
    planted_bug(model, 2, kind)
    result = compare_gradients(model, X, t, repeats=3)
    verdict = result.table.set_index("layer")["passed"]
    assert list(verdict) == [False, False, True, True]  # layers 1-2 go through the bug; 3 and the output do not
    assert not gradient_check(model, X, t)["passed"].all()  # the lab's own check catches it too
    below = result.entries[result.entries["layer"] <= 2]
    if kind == "halved":
        np.testing.assert_allclose(below["backprop"], 0.5 * below["numerical"], rtol=1e-5, atol=1e-10)
    if kind == "sign":
        np.testing.assert_allclose(below["backprop"], -below["numerical"], rtol=1e-5, atol=1e-10)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_planted_bug_is_caught_for_every_activation(activation):
    model, X, t = _problem(activation)
    planted_bug(model, 1, "halved")
    assert not compare_gradients(model, X, t, repeats=1).table.set_index("layer").loc[1, "passed"]


def test_forgotten_derivative_of_identity_is_no_bug():
    model, X, t = _problem("identity")
    planted_bug(model, 1, "forgotten")
    assert compare_gradients(model, X, t, repeats=1).passed


def test_planted_bug_checks_its_arguments():
    model, _, _ = _problem("tanh", depth=2)
    with pytest.raises(ValueError):
        planted_bug(model, 3)
    with pytest.raises(KeyError):
        planted_bug(model, 1, "typo")


def test_timings_and_sizes():
    model, X, t = _problem("tanh")
    result = compare_gradients(model, X, t, repeats=5)
    assert parameter_count(PAGE_DEFAULT) == model.flat_params.size == 4 * 8 + 8 + 8 * 8 + 8 + 8 * 3 + 3
    assert list(result.table["n_params"]) == [40, 72, 27]
    assert len(result.entries) == model.flat_params.size
    assert result.backprop_s > 0 and result.numerical_s > 0
    # 278 forward passes against one forward and one backward; a loose bound, so a busy machine cannot fail it
    assert result.speedup > 5
