"""The run store: every run kept in one SQLite file, so that it outlives the browser session.

- ``runstore``: save, list, load, delete runs; ``dbfile``: the file recognised, opened, and SQLite's errors told apart.
"""
