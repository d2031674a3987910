"""Backprop Lab: the router.  Pages live in pages/; the engine in lab/."""
import streamlit as st

from pages.ui import state
from pages.ui.router import use_router


def main() -> None:
    st.set_page_config(page_title="Backprop Lab", page_icon=":material/science:", layout="wide")
    use_router(rerun=False)

    st.session_state.setdefault(state.RUNS, {})  # every finished run of this session, by name

    pages = [
        st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
        st.Page("pages/lessons.py", title="Lessons", icon=":material/school:"),
        st.Page("pages/train.py", title="Train", icon=":material/monitoring:"),
        st.Page("pages/init_explorer.py", title="Init explorer", icon=":material/search:"),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/runs.py", title="Runs", icon=":material/history:"),
        st.Page("pages/phase_diagram.py", title="Phase diagram", icon=":material/grid_on:"),
        st.Page("pages/sweep.py", title="Sweep", icon=":material/view_module:"),
        st.Page("pages/chain_rule.py", title="Chain rule", icon=":material/account_tree:"),
        st.Page("pages/softmax_loss.py", title="Softmax with loss", icon=":material/functions:"),
        st.Page("pages/gradient_check.py", title="Gradient check", icon=":material/fact_check:"),
    ]
    st.navigation(pages).run()


# Streamlit runs this file as "__main__"; imported under another name (multiprocessing's "__mp_main__", which a
# sweep's workers no longer run: lab.experiments.workers.forget_the_parents_main) there is nothing to draw
if __name__ == "__main__":
    main()
