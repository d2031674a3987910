"""A lesson file read into values, with the line of everything in it, and every problem found on the way.

A lesson is one Markdown file: front matter between ``---`` lines, then ``##`` headings, one per step.
A step is prose plus, at most, one live block (a fenced ```` ```lab ```` block), a question (a fenced
```` ```question ```` block) and a reveal (``<details><summary>…</summary> … </details>``, which GitHub shows
folded, as the page does until the question is answered).  The README's "Writing a lesson" has an example.

``read_lesson`` never raises on a bad file: it returns what it could read and a list of ``Problem``s, each with
the file, the line and one plain sentence.  The values are checked against the lab's own declarations by
``lab.lessons.check``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

FRONT_KEYS = ("id", "title", "minutes", "assumes")
ID_PATTERN = re.compile(r"[a-z0-9]+(-[a-z0-9]+)*")
MAX_MINUTES = 120
MAX_FILE_BYTES = 256 * 1024  # a lesson is a few kB of text
BLOCK_NAMES = {"experiment": ("init", "train", "spectrum"), "example": ("fruit_shop", "softmax", "gradcheck")}
QUESTION_KEYS = ("ask", "measure", "choices", "tolerance")


@dataclass(frozen=True)
class Problem:
    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


@dataclass(frozen=True)
class Block:
    """A step's live block: ``kind`` "experiment" (``name`` "init": only initialized, or "train") or "example"
    (``name`` "fruit_shop", "softmax" or "gradcheck"); ``values`` its other lines as text, ``lines`` where each is."""

    kind: str
    name: str
    values: dict[str, str]
    lines: dict[str, int]
    line: int


@dataclass(frozen=True)
class Question:
    """Asked before the reveal.  ``choices`` empty: a number, right within ``tolerance``."""

    ask: str
    measure: str
    choices: tuple[str, ...]
    tolerance: str
    line: int
    lines: dict[str, int]

    @property
    def kind(self) -> str:
        return "choice" if self.choices else "number"


@dataclass(frozen=True)
class Step:
    title: str
    line: int
    prose: str
    block: Block | None = None
    question: Question | None = None
    reveal: str = ""
    reveal_line: int = 0
    summary: str = "What the run shows"  # the reveal's <summary>


@dataclass(frozen=True)
class Lesson:
    path: str
    id: str
    title: str
    minutes: int
    assumes: tuple[str, ...]
    intro: str
    steps: tuple[Step, ...]
    lines: dict[str, int] = field(default_factory=dict)  # front matter key -> line

    def step(self, number: int) -> Step:
        """Step ``number``, counted from 1."""
        return self.steps[number - 1]


def _key_values(lines: list[tuple[int, str]], path: str, what: str, problems: list[Problem]):
    """``key: value`` lines (a ``- item`` line adds to the key above it, as a list) -> (values, lines)."""
    values: dict[str, str | list[str]] = {}
    where: dict[str, int] = {}
    last = None
    for number, text in lines:
        stripped = text.split("  #", 1)[0].strip() if not text.lstrip().startswith("#") else ""
        if not stripped:
            continue
        if stripped.startswith("- ") and last is not None:
            current = values[last]
            values[last] = ([] if current == "" else [current] if isinstance(current, str) else current) + [stripped[2:].strip()]
            continue
        key, sep, value = stripped.partition(":")
        key = key.strip()
        if not sep or not re.fullmatch(r"[a-z_]+", key):
            problems.append(Problem(path, number, f"the {what} line {stripped[:40]!r} is not 'name: value'"))
            last = None
            continue
        if key in values:
            problems.append(Problem(path, number, f"{key} is given twice in the {what}"))
        values[key], where[key], last = value.strip(), number, key
    return values, where


def _fences(body: list[tuple[int, str]], path: str, problems: list[Problem]):
    """Split a step's lines into prose and fenced blocks: a list of ("text", [(n, line)]) and (info, n, [(n, line)])."""
    parts, i = [], 0
    while i < len(body):
        number, text = body[i]
        match = re.match(r"^(`{3,})\s*([\w-]*)\s*$", text)
        if not match:
            parts.append(("text", number, text))
            i += 1
            continue
        fence, info = match.group(1), match.group(2)
        inner, i = [], i + 1
        while i < len(body) and not body[i][1].startswith(fence):
            inner.append(body[i])
            i += 1
        if i >= len(body):
            problems.append(Problem(path, number, f"the ```{info} block opened here is never closed"))
        i += 1
        parts.append(("fence", number, (info, fence, inner)))
    return parts


def _step(title: str, line: int, body: list[tuple[int, str]], path: str, problems: list[Problem]) -> Step:
    prose: list[str] = []
    block = question = None
    reveal: list[str] = []
    reveal_line, summary, in_reveal = 0, "What the run shows", False
    for kind, number, item in _fences(body, path, problems):
        if kind == "text":
            opened = re.match(r"^\s*<details>\s*(<summary>(.*?)</summary>)?\s*$", item)
            if opened and not in_reveal:
                if reveal_line:
                    problems.append(Problem(path, number, "a step has at most one reveal (<details>)"))
                in_reveal, reveal_line = True, number
                summary = (opened.group(2) or "").strip() or summary
                continue
            if in_reveal and re.match(r"^\s*</details>\s*$", item):
                in_reveal = False
                continue
            (reveal if in_reveal else prose).append(item)
            continue
        info, fence, inner = item
        if info == "lab":
            if block is not None:
                problems.append(Problem(path, number, "a step has at most one live block (```lab)"))
                continue
            block = _block(number, inner, path, problems)
        elif info == "question":
            if question is not None:
                problems.append(Problem(path, number, "a step asks at most one question"))
                continue
            question = _question(number, inner, path, problems)
        else:  # any other fenced block is prose (a formula, a code sample)
            (reveal if in_reveal else prose).extend([f"{fence}{info}", *(t for _, t in inner), fence])
    if in_reveal:
        problems.append(Problem(path, reveal_line, "the <details> opened here is never closed with </details>"))
    return Step(title, line, "\n".join(prose).strip(), block, question, "\n".join(reveal).strip(), reveal_line, summary)


def _block(number: int, inner, path: str, problems: list[Problem]) -> Block | None:
    values, where = _key_values(inner, path, "```lab block", problems)
    kinds = [k for k in BLOCK_NAMES if k in values]
    if len(kinds) != 1:
        problems.append(Problem(path, number, "a ```lab block starts with 'experiment: init' or 'experiment: train', "
                                              "or 'example: fruit_shop', 'example: softmax' or 'example: gradcheck'"))
        return None
    kind = kinds[0]
    name = values.pop(kind)
    where.pop(kind)
    if name not in BLOCK_NAMES[kind]:
        problems.append(Problem(path, number, f"{kind} must be one of {', '.join(BLOCK_NAMES[kind])}, not {str(name)!r}"))
        return None
    flat = {k: ", ".join(v) if isinstance(v, list) else v for k, v in values.items()}
    return Block(kind, name, flat, where, number)


def _question(number: int, inner, path: str, problems: list[Problem]) -> Question | None:
    values, where = _key_values(inner, path, "```question block", problems)
    for key in values:
        if key not in QUESTION_KEYS:
            problems.append(Problem(path, where[key], f"a question has no {key!r}; it has {', '.join(QUESTION_KEYS)}"))
    for key in ("ask", "measure"):
        if not values.get(key):
            problems.append(Problem(path, number, f"the question needs '{key}:'"))
    if problems and not (values.get("ask") and values.get("measure")):
        return None
    choices = values.get("choices", [])
    choices = tuple(c.strip() for c in (choices if isinstance(choices, list) else choices.split(","))) if choices else ()
    if ("choices" in values) == ("tolerance" in values):
        problems.append(Problem(path, number, "a question has either 'choices:' (multiple choice) or 'tolerance:' "
                                              "(a number), and not both"))
    return Question(str(values["ask"]), str(values["measure"]), tuple(c for c in choices if c),
                    str(values.get("tolerance", "")), number, where)


def read_lesson(path: str | Path, text: str | None = None) -> tuple[Lesson | None, list[Problem]]:
    """The lesson in ``path`` (or ``text``, named ``path``) and the problems of its form.  None when there is no
    lesson to speak of (no front matter, or no step)."""
    path = str(path)
    problems: list[Problem] = []
    if text is None:
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            return None, [Problem(path, 0, f"cannot be read: {exc.strerror or exc}")]
        if len(raw) > MAX_FILE_BYTES:
            return None, [Problem(path, 0, f"is {len(raw):,} bytes; a lesson is at most {MAX_FILE_BYTES:,}")]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return None, [Problem(path, 0, "is not UTF-8 text")]
    lines = list(enumerate(text.splitlines(), start=1))
    if not lines or lines[0][1].strip() != "---":
        return None, [Problem(path, 1, "a lesson starts with front matter: a line '---', then id, title, minutes and "
                                       "assumes, then '---'")]
    end = next((i for i, (_, t) in enumerate(lines[1:], start=1) if t.strip() == "---"), None)
    if end is None:
        return None, [Problem(path, 1, "the front matter opened here is never closed with '---'")]
    front, where = _key_values(lines[1:end], path, "front matter", problems)
    for key in front:
        if key not in FRONT_KEYS:
            problems.append(Problem(path, where[key], f"the front matter has no {key!r}; it has {', '.join(FRONT_KEYS)}"))
    for key in ("id", "title", "minutes"):
        if not front.get(key):
            problems.append(Problem(path, 1, f"the front matter needs '{key}:'"))
    lesson_id = str(front.get("id", ""))
    if lesson_id and not ID_PATTERN.fullmatch(lesson_id):
        problems.append(Problem(path, where["id"], f"the id {lesson_id!r} is not lowercase words joined by '-'"))
    minutes = 0
    if front.get("minutes"):
        text_minutes = str(front["minutes"])
        if text_minutes.isdigit() and 1 <= int(text_minutes) <= MAX_MINUTES:
            minutes = int(text_minutes)
        else:
            problems.append(Problem(path, where["minutes"], f"minutes must be a whole number from 1 to {MAX_MINUTES}, "
                                                            f"not {text_minutes!r}"))
    assumes = front.get("assumes", "")
    assumes = tuple(a.strip() for a in (assumes if isinstance(assumes, list) else str(assumes).split(",")) if a.strip())

    body = lines[end + 1:]
    heads = [i for i, (_, t) in enumerate(body) if t.startswith("## ")]
    intro = "\n".join(t for _, t in body[: heads[0] if heads else len(body)] if not t.startswith("# ")).strip()
    steps = []
    for k, i in enumerate(heads):
        number, heading = body[i]
        title = heading[3:].strip()
        if not title:
            problems.append(Problem(path, number, "a step's heading ('## ') needs a title"))
        steps.append(_step(title, number, body[i + 1: heads[k + 1] if k + 1 < len(heads) else len(body)], path, problems))
    if not steps:
        problems.append(Problem(path, end + 2 if end + 2 <= len(lines) else end + 1,
                                "a lesson needs at least one step: a heading '## ' followed by its text"))
    title = str(front.get("title", ""))
    return Lesson(path, lesson_id, title, minutes, assumes, intro, tuple(steps), where), problems
