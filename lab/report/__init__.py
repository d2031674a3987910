"""The report: figures, captions and tables made from the engine's and the theory's numbers.  The only words.

- ``verdicts``: what a run's numbers say, as values (a kind and its numbers); ``summaries`` puts them into words.
- ``charts``: the plotly figures; ``diagram``: what will be trained, drawn before training.
- ``tables``: how the pages' tables show their numbers (through ``lab.formats``).
"""
