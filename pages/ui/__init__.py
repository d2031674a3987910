"""Streamlit helpers shared by the pages (a package, so that st.navigation never lists them as pages).

router: the v1-pages workaround; state: every session-state key the pages use, with its type;
widgets: settings widgets into a RunConfig; running: the run cache, the server's limits and the live
training loop; playback: Play, Pause, Step and Reset on a Trainer kept in the session, and the live view;
pace: Play's speed control and its slices of training; preview: the data beside the network diagram;
results_view: the Train page's result sections; run_history: the session's runs, their colours and
downloads; store_view: the app's handle on the run store; panels: charts, status line, profile block,
notices; links: shareable addresses.
"""
