"""What a shared server needs between a visitor and the engine: prices, limits, one gate, links and files.

- ``cost``: what a run will cost before it starts; ``limits``: what one user may spend.
- ``gate``: the one gate every request passes; ``runcache``: bounded homes for finished runs.
- ``share``: settings to and from links; ``imports``: an uploaded export read back, untrusted;
  ``export``: the export format (config.json, history.csv, layers.csv).
"""
