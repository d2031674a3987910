"""The data floor: the datasets a run trains on, and the checked CSV loader.

Nothing here imports the rest of ``lab`` except ``lab.seeds`` and ``lab.formats``: a dataset is made from a
description (``datasets.DataSpec``, which a ``RunConfig`` is) and a random stream.

- ``datasets``: the synthetic and bundled real datasets, their registry, split and standardization.
- ``csv_table``: an untrusted CSV file read with bounded effort; every bad one refused with one sentence.
"""
