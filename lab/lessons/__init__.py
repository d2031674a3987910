"""The course: lessons written as Markdown data, read, checked and made live over the lab's own engine.

It sits above the serving floor because a step is priced by the cost model and its settings are read as a link's.

- ``lesson``: a lesson file read into values (front matter, steps, blocks, questions, reveals) with their lines.
- ``measures``: the named measurements a question may ask about and a reveal may quote.
- ``steps``: a step's block read into settings, run, measured; its reveal filled in; an answer graded.
- ``check``: the validator behind ``python -m lab lessons check``.
"""
