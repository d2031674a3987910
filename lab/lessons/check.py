"""The lesson validator: every lesson file held to its form and to the lab's own declarations, without running it.

``check(paths)`` reads every lesson and returns the problems, each with file:line and one plain sentence:
bad front matter, a missing title or step, an unknown setting or a value outside the lab's bounds, an unknown
measurement or template field, a question whose answer its step cannot compute, an experiment too costly for a
step, a duplicate id.  ``python -m lab lessons check [PATH...]`` prints them.
"""
from __future__ import annotations

import difflib
from pathlib import Path

from .lesson import Lesson, Problem, Step, read_lesson
from .measures import MEASUREMENTS
from .steps import (
    StepError,
    available_fields,
    block_config,
    check_cost,
    example_inputs,
    fields_of,
    parse_range,
    parse_tolerance,
    spec_ok,
)

LESSONS_DIR = Path(__file__).resolve().parent.parent.parent / "lessons"  # the course that ships with the lab


def lesson_files(paths=None) -> list[Path]:
    """The lesson files under ``paths`` (files, or folders whose *.md are lessons, README.md aside), in name order."""
    found = []
    for p in map(Path, paths or [LESSONS_DIR]):
        found += sorted(f for f in p.glob("*.md") if f.name.lower() != "readme.md") if p.is_dir() else [p]
    return found


def _close(name: str, known) -> str:
    match = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {match[0]!r}?)" if match else ""


def _check_block(lesson: Lesson, step: Step) -> list[Problem]:
    block = step.block
    try:
        config = block_config(block)
        if block.kind == "example":
            example_inputs(block)
        check_cost(block, config)
    except StepError as exc:
        line = block.lines.get(exc.key, block.line) if exc.key else block.line
        return [Problem(lesson.path, line, str(exc))]
    return []


def _check_question(lesson: Lesson, step: Step) -> list[Problem]:
    q, path, out = step.question, lesson.path, []
    m = MEASUREMENTS.get(q.measure)
    line = q.lines.get("measure", q.line)
    if m is None:
        return [Problem(path, line, f"unknown measurement {q.measure!r}{_close(q.measure, MEASUREMENTS)}; the "
                                    f"measurements are listed in the README")]
    if step.block is None or step.block.name not in m.blocks:
        has = "no live block" if step.block is None else f"a {step.block.kind} '{step.block.name}'"
        needs = " or ".join(sorted(m.blocks))
        return [Problem(path, line, f"the answer cannot be computed from this step: {q.measure} comes from a block "
                                    f"'{needs}', and this step has {has}")]
    if q.kind == "choice":
        choices_line = q.lines.get("choices", q.line)
        if len(q.choices) < 2:
            out.append(Problem(path, choices_line, "a multiple-choice question needs at least two choices"))
        for choice in q.choices:
            if m.is_number and parse_range(choice) is None:
                out.append(Problem(path, choices_line, f"the choice {choice!r} is not a range of {q.measure} "
                                                       "('below 0.1', '0.1 to 10', 'above 10')"))
            elif not m.is_number and choice.replace(" ", "_") not in m.values:
                out.append(Problem(path, choices_line, f"the choice {choice!r} is not a value of {q.measure}, which is "
                                                       f"one of {', '.join(v.replace('_', ' ') for v in m.values)}"))
    else:
        if not m.is_number:
            out.append(Problem(path, line, f"{q.measure} is a kind, not a number: ask it with 'choices:'"))
        if parse_tolerance(q.tolerance) is None:
            out.append(Problem(path, q.lines.get("tolerance", q.line), f"the tolerance {q.tolerance!r} is not '20%' "
                                                                       "(relative), 'x3' (a factor) or '0.05' (absolute)"))
    return out


def _check_fields(lesson: Lesson, step: Step) -> list[Problem]:
    line = step.reveal_line or step.line
    try:
        names = fields_of(step.reveal)
    except ValueError as exc:
        return [Problem(lesson.path, line, f"a template field in the reveal is not closed ({exc}); write {{{{ and }}}} "
                                           "for a brace")]
    known = available_fields(step.block)
    out = []
    for name, spec in names:
        if name not in known:
            where = "this step has no live block" if step.block is None else f"its block is '{step.block.name}'"
            out.append(Problem(lesson.path, line, f"unknown template field {{{name}}}{_close(name, known)}: {where}"))
        elif not spec_ok(spec):
            out.append(Problem(lesson.path, line, f"the field {{{name}:{spec}}} asks for a format other than '%' "
                                                  "or '.N' (N significant digits, 1 to 6)"))
    return out


def check_lesson(lesson: Lesson) -> list[Problem]:
    out = []
    for step in lesson.steps:
        if step.block is not None:
            out += _check_block(lesson, step)
        if step.question is not None:
            out += _check_question(lesson, step)
        out += _check_fields(lesson, step)
    return out


def check(paths=None) -> tuple[list[Lesson], list[Problem]]:
    """The lessons read from ``paths`` (default: the shipped course) and every problem found in them."""
    lessons, problems, ids = [], [], {}
    for path in lesson_files(paths):
        lesson, found = read_lesson(path)
        problems += found
        if lesson is None:
            continue
        problems += check_lesson(lesson)
        lessons.append(lesson)
        if lesson.id:
            if lesson.id in ids:
                problems.append(Problem(lesson.path, lesson.lines.get("id", 1),
                                        f"the id {lesson.id!r} is also the id of {ids[lesson.id]}"))
            else:
                ids[lesson.id] = lesson.path
    return lessons, sorted(problems, key=lambda p: (p.path, p.line))
