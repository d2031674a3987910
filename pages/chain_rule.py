"""Chain rule: the source text's fruit-shop graph, forward and backward, with every input editable."""
import streamlit as st

from lab.worked.graphs import TEXT_INPUTS, fruit_shop, fruit_shop_dot, rounding_story, show_number
from pages.ui import router

router.use_router()

st.title("Chain rule: the fruit shop")
st.markdown(
    "A shopping bill is a small computational graph: multiply each fruit's price by how many you buy, "
    "add the two amounts, multiply by the tax factor. Run it forward and you get the price. Run it "
    "**backward**, starting from 1 at the price, and every node multiplies the incoming gradient by its own "
    "local derivative: this gives how much the price moves when any single input moves. "
    "The nodes here are the lab's own `MulLayer` and `AddLayer` objects, the same classes the text builds."
)

with st.container(border=True):
    cols = st.columns(5)
    apple_price = cols[0].number_input("apple price", 0.0, 1e6, float(TEXT_INPUTS["apple_price"]), step=10.0,
                                       format="%g", key="fs_apple_price")
    apple_count = cols[1].number_input("apple count", 0, 10_000, TEXT_INPUTS["apple_count"], key="fs_apple_count")
    orange_price = cols[2].number_input("orange price", 0.0, 1e6, float(TEXT_INPUTS["orange_price"]), step=10.0,
                                        format="%g", key="fs_orange_price")
    orange_count = cols[3].number_input("orange count", 0, 10_000, TEXT_INPUTS["orange_count"], key="fs_orange_count")
    tax = cols[4].number_input("tax factor (1.1 = 10% tax)", 0.0, 10.0, TEXT_INPUTS["tax"], step=0.01,
                               format="%g", key="fs_tax")

table = fruit_shop(apple_price, apple_count, orange_price, orange_count, tax)
row = table.set_index("edge")
value, grad = row["value"], row["grad"]

st.subheader(f"Price: {show_number(value['price'])}")
st.graphviz_chart(fruit_shop_dot(table), width="stretch")
st.caption("On each arrow: the forward value (black) and, below it in red, the gradient of the final price "
           "with respect to that value, found by going backward from the price.")

story = rounding_story(value["subtotal"], tax)
with st.container(border=True):
    if story["tax_is_exact"] and story["product_is_exact"]:
        st.markdown(
            f"The tax factor {show_number(tax)} is a sum of powers of two, so the computer stores it exactly, and "
            f"the price {story['shown']} is the exact product of the subtotal and the tax. Try 1.1 to see "
            "what happens with a factor that has no exact binary form."
        )
    elif story["tax_is_exact"]:
        st.markdown(
            f"The tax factor {show_number(tax)} is stored exactly, but the product of subtotal and tax needs more "
            f"than the 53 significant bits a float has, so it is rounded: exactly it is {story['exact_product']}, "
            f"the float is {story['result']}."
        )
    else:
        st.markdown(
            f"**Why {story['shown']} and not the value you would get on paper?** A float is a binary fraction, and "
            f"{show_number(tax)} has no finite binary expansion (just as 1/3 has no finite decimal one). The computer "
            f"stores the nearest binary fraction, which is a little off:"
        )
        st.code(
            f"tax as typed             {show_number(tax)}\n"
            f"tax as stored            {story['tax_stored']}\n"
            f"subtotal x stored tax    {story['exact_product']}   (exact)\n"
            f"nearest float to that    {story['result']}\n"
            f"printed (shortest form)  {story['shown']}",
            language=None,
        )
        st.markdown(
            "Python prints the shortest decimal that reads back as the same float, so the tiny error becomes "
            "visible in the last digit. The gradients carry the same kind of rounding: the apple count's, "
            f"tax × apple price, shows as {show_number(grad['apple_count'])}."
        )

st.subheader("Backward, one local derivative at a time")
st.markdown("Each node knows only its own local derivative. A multiply node hands each input the other "
            "input's value times the incoming gradient; an add node passes the incoming gradient through unchanged.")
st.latex(r"z = x \cdot y:\quad \frac{\partial z}{\partial x} = y,\quad \frac{\partial z}{\partial y} = x"
         r"\qquad\qquad z = x + y:\quad \frac{\partial z}{\partial x} = \frac{\partial z}{\partial y} = 1")
st.markdown("The chain rule multiplies the local derivatives along the path from the price back to an input:")
st.latex(
    r"\frac{\partial\,\text{price}}{\partial\,\text{apple price}}"
    r"= \underbrace{\frac{\partial\,\text{price}}{\partial\,\text{subtotal}}}_{\text{tax}}"
    r"\cdot \underbrace{\frac{\partial\,\text{subtotal}}{\partial\,\text{apples total}}}_{1}"
    r"\cdot \underbrace{\frac{\partial\,\text{apples total}}{\partial\,\text{apple price}}}_{\text{apple count}}"
    rf"= {show_number(tax)} \cdot 1 \cdot {show_number(apple_count)} = {show_number(grad['apple_price'])}"
)

shown = table.assign(
    value=table["value"].map(show_number),
    grad=table["grad"].map(show_number),
    numerical=table["numerical"].map(lambda v: "" if v != v else f"{v:.6f}"),
)[["label", "value", "grad", "numerical", "meaning"]]
st.dataframe(
    shown, hide_index=True, width="stretch",
    column_config={
        "label": "value in the graph", "value": st.column_config.TextColumn("forward value", width="medium"),
        "grad": st.column_config.TextColumn("d price / d value (backprop)"),
        "numerical": st.column_config.TextColumn("numerical check", help="central difference of the price, step 1e-6"),
        "meaning": "meaning of the gradient",
    },
)
st.caption("The numerical column nudges one input up and down by 1e-6 and recomputes the whole price each time; "
           "backprop got every gradient from one backward sweep.")
