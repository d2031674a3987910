"""The router workaround (pages/ui/router.py) against the Streamlit behaviour it relies on.

Streamlit 1.67 has no supported switch for its v1 multipage mode: a ``pages/`` folder beside the
main script turns it on (``PagesManager.uses_pages_directory``) until ``st.navigation`` runs, and
``client.showSidebarNavigation`` only hides the sidebar list.  These tests fail when Streamlit
changes that, so the workaround can be replaced or dropped then.
"""
import inspect
import textwrap

import pytest
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import script_runner
from streamlit.testing.v1 import AppTest

from pages.ui import router  # noqa: F401 - imported here so the test app below finds the same module


@pytest.fixture
def restore_flag():
    before = PagesManager.uses_pages_directory
    yield
    PagesManager.uses_pages_directory = before


def _app(tmp_path, body: str, pages_folder: bool = True) -> str:
    if pages_folder:
        (tmp_path / "pages").mkdir()
        (tmp_path / "pages" / "other.py").write_text("import streamlit as st\nst.text('other')\n")
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(body))
    return str(script)


@pytest.mark.parametrize("pages_folder", [True, False])
def test_a_pages_folder_turns_on_the_v1_mode_for_the_whole_process(tmp_path, restore_flag, pages_folder):
    script = _app(tmp_path, "", pages_folder)
    PagesManager.uses_pages_directory = None
    PagesManager(script)
    assert PagesManager.uses_pages_directory is pages_folder  # a class attribute: every session shares it


def test_the_v1_mode_runs_pages_without_the_router_and_navigation_ends_it():
    # the script runner chooses between v1 routing and the app's own script on this very flag
    runner = inspect.getsource(script_runner.ScriptRunner)
    assert "if PagesManager.uses_pages_directory:" in runner and "_mpa_v1(" in runner
    # st.navigation switches the mode off, but only once app.py has run in this process
    from streamlit.commands import navigation
    assert "PagesManager.uses_pages_directory = False" in inspect.getsource(navigation.navigation)


def test_use_router_ends_the_v1_mode_and_reruns_a_page_reached_without_app_py(tmp_path, restore_flag):
    script = _app(tmp_path, """
        import streamlit as st
        from streamlit.runtime.pages_manager import PagesManager
        from pages.ui.router import use_router

        st.session_state["runs_of_script"] = st.session_state.get("runs_of_script", 0) + 1
        st.session_state.setdefault("v1_at_start", PagesManager.uses_pages_directory)
        use_router()
        st.text(f"v1 after: {PagesManager.uses_pages_directory}")
    """)
    at = AppTest.from_file(script).run()
    assert not at.exception
    assert at.session_state["v1_at_start"] is True  # the pages/ folder switched the v1 mode on
    assert at.text[0].value == "v1 after: False"
    assert at.session_state["runs_of_script"] == 2  # reran once, now routed without the v1 mode


def test_use_router_does_not_rerun_once_app_py_has_run_in_the_session(tmp_path, restore_flag):
    script = _app(tmp_path, """
        import streamlit as st
        from pages.ui import state
        from pages.ui.router import use_router

        st.session_state.setdefault(state.RUNS, {})
        st.session_state["runs_of_script"] = st.session_state.get("runs_of_script", 0) + 1
        use_router()
    """)
    at = AppTest.from_file(script).run()
    assert not at.exception and at.session_state["runs_of_script"] == 1
