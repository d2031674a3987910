"""The one workaround for Streamlit's router: keep every page under app.py's st.navigation.

Streamlit 1.67 offers no supported switch for its v1 multipage mode: a ``pages/`` folder turns it
on for the process (``PagesManager.uses_pages_directory``), ``st.navigation`` turns it off only
once app.py runs (by writing that same attribute), and ``client.showSidebarNavigation`` merely
hides the list.  The folder keeps its published name, so this module writes the attribute too;
tests/test_router.py fails when Streamlit changes the behaviour this relies on.
"""
from __future__ import annotations

import streamlit as st

from pages.ui import state


def use_router(rerun: bool = True) -> None:
    """Make sure the page runs under app.py's st.navigation.

    Streamlit keeps a v1 multipage mode for apps that have a ``pages/`` folder: until
    app.py has run once in this server process, a first request for /train would run
    pages/train.py on its own (no router, no wide layout, every file listed as a page).
    app.py switches that mode off (``rerun=False``); a page that still finds it on was
    reached without app.py, and reruns so that app.py routes the request, unless app.py
    already ran in this session (then a rerun would only drop the click that got here).
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the v1 mode
        return
    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        if rerun and state.RUNS not in st.session_state:
            st.rerun()
