"""The app under Streamlit's AppTest, for the page tests: ``app(page, settings)`` runs it (at ``page``,
with the Train page's ``settings``) and checks that nothing raised.

The app opens at ``page`` directly, as a link to it does: the home page first would cost each test a
second or more (it measures every preset and cure); the home page's own tests open it with ``app()``."""
from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parent.parent / "app.py"


def app(page=None, settings=None):
    at = AppTest.from_file(str(APP), default_timeout=60)
    if settings is not None:
        at.session_state["train_settings"] = settings
    if page:
        at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
