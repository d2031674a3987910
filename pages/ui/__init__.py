"""Streamlit helpers shared by the pages (a package, so that st.navigation never lists them as pages).

router: the v1-pages workaround; widgets: settings widgets into a RunConfig; running: the run cache, the
server's limits and the live training loop; run_history: the session's runs, their colours and downloads;
panels: charts, status line, profile block, notices; links: shareable addresses;
state: every session-state key the pages use, with its type.
"""
