"""Shareable links: a page's address read once per distinct link, and written back."""
from __future__ import annotations

import streamlit as st

from pages.ui.panels import plain_notice


def new_link(seen_key: str) -> dict | None:
    """The page's query parameters if they differ from the link already applied (remembered
    under ``seen_key``), so that a shared link is restored once and not on every rerun."""
    link = {k: st.query_params.get_all(k)[-1] for k in st.query_params}
    if not link or st.session_state.get(seen_key) == link:
        return None
    st.session_state[seen_key] = link
    return link


def set_address(params: dict, seen_key: str) -> None:
    """Make the page's address carry ``params`` (and remember them as applied, see ``new_link``)."""
    params = {k: str(v) for k, v in params.items()}
    if {k: st.query_params.get_all(k)[-1] for k in st.query_params} != params:
        st.query_params.from_dict(params)
    st.session_state[seen_key] = params


def show_link_notices(notices: list[str]) -> None:
    """A warning, and under it each value of a link that was clamped or ignored, one line each, as plain text."""
    if notices:
        plain_notice("warning", "The link asks for settings this page cannot use as given:",
                     "\n".join(f"• {n}" for n in notices), icon=":material/link_off:", key="link_notices")

