r"""The fruit-shop computational graph of the source text, built from ``MulLayer`` and ``AddLayer``.

Two apples at 100 and three oranges at 150, plus 10% tax:

    apple_price  --\
                    (x) -- apples_total --\
    apple_count  --/                       (+) -- subtotal --\
    orange_price --\                       /                  (x) -- price
                    (x) -- oranges_total -/       tax --------/
    orange_count --/

``fruit_shop`` runs it forward and back with the lab's own layer objects and returns
every edge's value and gradient; ``fruit_shop_dot`` draws the result as a DOT string
(Streamlit renders DOT in the browser, so no graphviz install is needed).
"""
from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction

import pandas as pd

from lab.engine.layers import AddLayer, MulLayer

TEXT_INPUTS = {"apple_price": 100, "apple_count": 2, "orange_price": 150, "orange_count": 3, "tax": 1.1}

# edge name -> (label, what its gradient means), in the order the table lists them
EDGES = {
    "apple_price": ("apple price", "price rise per +1 on each apple's price"),
    "apple_count": ("apple count", "price rise per extra apple"),
    "orange_price": ("orange price", "price rise per +1 on each orange's price"),
    "orange_count": ("orange count", "price rise per extra orange"),
    "tax": ("tax factor", "price rise per +1 on the factor (i.e. +100 tax points)"),
    "apples_total": ("apples total", "price rise per +1 spent on apples before tax"),
    "oranges_total": ("oranges total", "price rise per +1 spent on oranges before tax"),
    "subtotal": ("subtotal (before tax)", "price rise per +1 on the pre-tax sum"),
    "price": ("price", "where backward starts: d price / d price = 1"),
}
INPUTS = ("apple_price", "apple_count", "orange_price", "orange_count", "tax")


def _price(v: dict) -> float:
    """The same arithmetic as the graph, in the same order, for central differences."""
    return (v["apple_price"] * v["apple_count"] + v["orange_price"] * v["orange_count"]) * v["tax"]


def fruit_shop(apple_price=100, apple_count=2, orange_price=150, orange_count=3, tax=1.1,
               eps: float = 1e-6) -> pd.DataFrame:
    """Forward and backward through the graph; one row per edge.

    Columns: edge, label, value (forward), grad (dprice/dedge by back-propagation),
    numerical (central difference of the price, inputs only), meaning.
    """
    mul_apple, mul_orange, add_fruit, mul_tax = MulLayer(), MulLayer(), AddLayer(), MulLayer()
    value = {"apple_price": apple_price, "apple_count": apple_count, "orange_price": orange_price,
             "orange_count": orange_count, "tax": tax}
    value["apples_total"] = mul_apple.forward(apple_price, apple_count)
    value["oranges_total"] = mul_orange.forward(orange_price, orange_count)
    value["subtotal"] = add_fruit.forward(value["apples_total"], value["oranges_total"])
    value["price"] = mul_tax.forward(value["subtotal"], tax)

    grad = {"price": 1}
    grad["subtotal"], grad["tax"] = mul_tax.backward(grad["price"])
    grad["apples_total"], grad["oranges_total"] = add_fruit.backward(grad["subtotal"])
    grad["apple_price"], grad["apple_count"] = mul_apple.backward(grad["apples_total"])
    grad["orange_price"], grad["orange_count"] = mul_orange.backward(grad["oranges_total"])

    rows = []
    for edge, (label, meaning) in EDGES.items():
        numerical = None
        if edge in INPUTS:
            up, down = dict(value), dict(value)
            up[edge] = value[edge] + eps
            down[edge] = value[edge] - eps
            numerical = (_price(up) - _price(down)) / (2 * eps)
        rows.append({"edge": edge, "label": label, "value": value[edge], "grad": grad[edge],
                     "numerical": numerical, "meaning": meaning})
    return pd.DataFrame(rows)


def show_number(x) -> str:
    """Python's shortest repr that reads back as the same float (as ``print`` shows it); 650.0 -> '650'."""
    if isinstance(x, int):
        return str(x)
    text = repr(float(x))
    return text[:-2] if text.endswith(".0") else text


def exact_decimal(x: float) -> str:
    """Every digit of the binary float ``x``: 1.1 -> '1.100000000000000088817841970012523233890533447265625'."""
    return _plain(Decimal(float(x)))


def _plain(d: Decimal) -> str:
    text = f"{d:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def rounding_story(subtotal: float, tax: float) -> dict:
    """Why subtotal * tax prints as it does: the stored tax, the exact product, and the rounded float.

    Keys: tax_stored (exact decimal of the tax as stored), exact_product (the product of the
    two stored values, with every digit), result (the float the multiplication returns, every
    digit), shown (its repr), tax_is_exact (whether the typed tax has an exact binary form),
    product_is_exact (whether the multiplication itself needed no rounding).
    """
    result = float(subtotal) * float(tax)
    with localcontext() as ctx:
        ctx.prec = 2000  # a product of two binary floats is a finite decimal; keep every digit
        exact = Decimal(float(subtotal)) * Decimal(float(tax))
    return {
        "tax_stored": exact_decimal(tax),
        "exact_product": _plain(exact),
        "result": exact_decimal(result),
        "shown": show_number(result),
        "tax_is_exact": Fraction(str(tax)) == Fraction(float(tax)),
        "product_is_exact": Decimal(result) == exact,
    }


def _edge_label(value, grad) -> str:
    # HTML-like DOT label: forward value on top, gradient in red below it.  Streamlit's stylesheet sets
    # every text in the chart to about 10 px, so the DOT sizes match it and the layout stays compact.
    return (f'<<FONT POINT-SIZE="10">{show_number(value)}</FONT><BR/>'
            f'<FONT POINT-SIZE="10" COLOR="#d62728">{show_number(grad)}</FONT>>')


def fruit_shop_dot(table: pd.DataFrame) -> str:
    """A DOT digraph of the fruit shop: each edge carries its forward value and, in red, its gradient."""
    row = table.set_index("edge")
    v, g = row["value"].to_dict(), row["grad"].to_dict()
    lines = [
        "digraph fruit_shop {",
        '  rankdir=LR; bgcolor="transparent"; nodesep=0.3; ranksep=0.35;',
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", color="#555555", arrowsize=0.7];',
    ]
    for name in INPUTS:
        lines.append(f'  {name} [shape=plaintext, label="{EDGES[name][0]}"];')
    lines += [
        '  mul_apple [shape=circle, label="×", fixedsize=true, width=0.3];',
        '  mul_orange [shape=circle, label="×", fixedsize=true, width=0.3];',
        '  add_fruit [shape=circle, label="+", fixedsize=true, width=0.3];',
        '  mul_tax [shape=circle, label="×", fixedsize=true, width=0.3];',
        '  price [shape=plaintext, label="price"];',
        '  { rank=same; apple_price; apple_count; orange_price; orange_count; }',
        # invisible edges within the rank keep the inputs in the text's order, top to bottom
        '  apple_price -> apple_count -> orange_price -> orange_count [style=invis];',
    ]
    wiring = [
        ("apple_price", "mul_apple", "apple_price"), ("apple_count", "mul_apple", "apple_count"),
        ("orange_price", "mul_orange", "orange_price"), ("orange_count", "mul_orange", "orange_count"),
        ("mul_apple", "add_fruit", "apples_total"), ("mul_orange", "add_fruit", "oranges_total"),
        ("add_fruit", "mul_tax", "subtotal"), ("tax", "mul_tax", "tax"), ("mul_tax", "price", "price"),
    ]
    for src, dst, edge in wiring:
        lines.append(f"  {src} -> {dst} [label={_edge_label(v[edge], g[edge])}];")
    lines.append("}")
    return "\n".join(lines)
