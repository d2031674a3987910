"""The course: every shipped lesson passes the validator and runs; the validator finds every kind of error at its
file:line; every question's right answer is computed from its own run and moves when the run does."""
from __future__ import annotations

import math
import textwrap

import pytest

from lab.cli.main import main
from lab.lessons.check import check, lesson_files
from lab.lessons.lesson import read_lesson
from lab.lessons.measures import MEASUREMENTS
from lab.lessons.steps import Grade, fill, grade, parse_tolerance, right_choice, run_block

COURSE, PROBLEMS = check()
STEPS = [(lesson, n, step) for lesson in COURSE for n, step in enumerate(lesson.steps, start=1)]
LIVE = [(lesson, n, step) for lesson, n, step in STEPS if step.block is not None]
QUESTIONS = [(lesson, n, step) for lesson, n, step in LIVE if step.question is not None]


_RUNS: dict = {}


def run_of(lesson, n, step):
    """The step's run, made once for all the tests of this module."""
    if (lesson.id, n) not in _RUNS:
        _RUNS[lesson.id, n] = run_block(step.block)
    return _RUNS[lesson.id, n]


def ids(items):
    return [f"{lesson.id}-{n}" for lesson, n, _ in items]


def test_the_course_passes_its_own_validator():
    assert not PROBLEMS, "\n".join(map(str, PROBLEMS))
    assert len(COURSE) >= 8 and all(3 <= len(lesson.steps) <= 6 for lesson in COURSE), [
        (lesson.id, len(lesson.steps)) for lesson in COURSE]
    assert len(QUESTIONS) > len(STEPS) / 2  # a prediction in most steps
    assert main(["lessons", "check"]) == 0


@pytest.mark.parametrize("lesson, n, step", LIVE, ids=ids(LIVE))
def test_every_step_runs_and_fills_every_field(lesson, n, step):
    run = run_of(lesson, n, step)
    text = fill(step.reveal, run)
    assert "?" not in [w.strip(".,:;()") for w in text.split()] and "{" not in text.replace("{{", ""), text
    if step.question is not None:
        measured = run.values[step.question.measure]
        if step.question.kind == "choice":  # the run makes exactly one choice right
            assert right_choice(step.question, measured) in step.question.choices, (measured, step.question.choices)
        else:
            assert isinstance(measured, float) and math.isfinite(measured)
            assert grade(step.question, run, measured).correct  # the measured value itself is right


# --- each question's answer comes from the run: change the run, and the right answer changes ----------------

PERTURB = {  # tried in order until one changes the right answer
    "init": [{"init": "normal", "init_scale": "0.01"}, {"init": "normal", "init_scale": "3"}, {"activation": "tanh"},
             {"activation": "relu", "init": "he_normal"}, {"depth": "2"}, {"depth": "30"}, {"activation": "sigmoid"},
             {"norm": "batch"}, {"init": "normal", "init_scale": "0.3"}],
    "fruit_shop": [{"apple_price": "30", "apple_count": "7", "orange_price": "11", "orange_count": "5", "tax": "2"}],
    "softmax": [{"logits": "5, -2, 0.5", "target": "1"}, {"logits": "0, 0", "target": "0"}],
    "gradcheck": [{"bug": "halved", "bug_layer": "1"}, {"bug": "none"}, {"depth": "1", "width": "3"}],
}
PERTURB["spectrum"] = [{"init": "orthogonal"}, {"init": "lecun_normal"}, {"activation": "tanh", "gain": "1"},
                       *PERTURB["init"]]
PERTURB["train"] = [{"epochs": "1"}, {"lr": "1", "optimizer": "sgd"}, {"lr": "3", "optimizer": "sgd"},
                    {"init": "normal", "init_scale": "0.01"}, {"init": "zeros"}, {"norm": "none", "residual": "false"},
                    {"activation": "sigmoid", "depth": "30", "init": "normal", "init_scale": "0.01"}, *PERTURB["init"]]


def _changed(step, run, other) -> bool:
    q, before, after = step.question, run.values[step.question.measure], other.values[step.question.measure]
    if q.kind == "choice":
        return right_choice(q, after) != right_choice(q, before)
    kind, amount = parse_tolerance(q.tolerance)
    return not grade(q, other, before).correct if math.isfinite(after) else True


@pytest.mark.parametrize("lesson, n, step", QUESTIONS, ids=ids(QUESTIONS))
def test_the_right_answer_follows_the_run(lesson, n, step):
    from dataclasses import replace

    run = run_of(lesson, n, step)
    for change in PERTURB[step.block.name]:
        values = {**step.block.values, **change}
        if step.block.name == "gradcheck" and values.get("bug", "none") == "none":
            values.pop("bug_layer", None)
        try:
            other = run_block(replace(step.block, values=values))
        except ValueError:  # a change this step's block cannot take (a bound): try the next
            continue
        if _changed(step, run, other):
            return
    pytest.fail(f"no change of {lesson.id} step {n}'s settings moved the answer to {step.question.ask!r}")


def test_a_grade_is_the_run_s_own():
    """The answer is never in the file: the same question is right for one run and wrong for another."""
    lesson, _ = read_lesson("x.md", LESSON.format(scale="0.01", extra=""))
    step = lesson.step(1)
    small, large = run_block(step.block), run_block(lesson.step(1).block.__class__(
        **{**step.block.__dict__, "values": {**step.block.values, "init_scale": "3"}}))
    assert grade(step.question, small, "vanishing") == Grade(True, "vanishing", "vanishing")
    assert grade(step.question, large, "vanishing").correct is False


# --- the validator: each kind of error, at its file and line -------------------------------------------------

LESSON = """---
id: small
title: Small weights
minutes: 3
assumes: chain-rule
---

# Small weights

## Weights of standard deviation {scale}

Some prose.

```lab
experiment: init
activation: sigmoid
init: normal
init_scale: {scale}
depth: 5{extra}
```

```question
ask: What does the error signal do?
measure: verdict
choices: vanishing, healthy, exploding
```

<details><summary>What the run shows</summary>

The verdict is {{verdict}}, the ratio {{signal_ratio}}.

</details>
"""


def problems_of(tmp_path, text: str, name: str = "lesson.md"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return [(p.line, p.message) for p in check([path])[1]]


def test_a_good_lesson_has_no_problem(tmp_path):
    assert problems_of(tmp_path, LESSON.format(scale="0.01", extra="")) == []


@pytest.mark.parametrize("change, line, words", [
    (lambda t: t.replace("depth: 5", "depht: 5"), 19, "unknown setting 'depht' (did you mean 'depth'?)"),
    (lambda t: t.replace("depth: 5", "depth: 5000"), 19, "above 100, the largest"),
    (lambda t: t.replace("activation: sigmoid", "activation: sigmoidal"), 16, "is not one of"),
    (lambda t: t.replace("measure: verdict", "measure: verdikt"), 24, "unknown measurement 'verdikt'"),
    (lambda t: t.replace("measure: verdict", "measure: final_loss"), 24, "cannot be computed from this step"),
    (lambda t: t.replace("{signal_ratio}", "{signal_ration}"), 28, "unknown template field {signal_ration}"),
    (lambda t: t.replace("choices: vanishing, healthy, exploding", "choices: vanishing, fine"), 25,
     "'fine' is not a value of verdict"),
    (lambda t: t.replace("experiment: init", "experimnt: init"), 14, "a ```lab block starts with"),
    (lambda t: t.replace("depth: 5", "depth: 5\nexperiment: train"), 20, "experiment is given twice"),
    (lambda t: t.replace("experiment: init", "experiment: train").replace("depth: 5", "depth: 60\nwidth: 512"), 14,
     "a lesson step may take at most 1 s"),
    (lambda t: t.replace("title: Small weights\n", ""), 1, "the front matter needs 'title:'"),
    (lambda t: t.replace("minutes: 3", "minutes: soon"), 4, "minutes must be a whole number"),
    (lambda t: t.replace("assumes: chain-rule", "assume: chain-rule"), 5, "the front matter has no 'assume'"),
    (lambda t: t.replace("id: small", "id: Small Weights"), 2, "is not lowercase words joined by '-'"),
    (lambda t: t.replace("---\nid", "id", 1), 1, "a lesson starts with front matter"),
    (lambda t: t.split("## ")[0], 7, "a lesson needs at least one step"),
    (lambda t: t.replace("</details>", ""), 28, "never closed with </details>"),
])
def test_the_validator_names_the_file_line_and_what_is_wrong(tmp_path, change, line, words):
    found = problems_of(tmp_path, change(LESSON.format(scale="0.01", extra="")))
    assert any(at == line and words in message for at, message in found), found


def test_a_question_on_a_step_without_a_block_cannot_be_computed(tmp_path):
    text = LESSON.format(scale="0.01", extra="").replace("```lab\n", "```text\n")
    found = problems_of(tmp_path, text)
    assert (24, "the answer cannot be computed from this step: verdict comes from a block 'init or spectrum or train', and this "
                "step has no live block") in found


def test_a_duplicate_id_is_found_in_the_second_file(tmp_path):
    good = LESSON.format(scale="0.01", extra="")
    (tmp_path / "a.md").write_text(good)
    (tmp_path / "b.md").write_text(good)
    problems = check([tmp_path])[1]
    assert [(p.path.endswith("b.md"), p.line) for p in problems] == [(True, 2)]
    assert "also the id of" in problems[0].message


def test_the_command_prints_file_line_and_exits_1(tmp_path, capsys):
    path = tmp_path / "bad.md"
    path.write_text(LESSON.format(scale="0.01", extra="").replace("depth: 5", "depht: 5"))
    assert main(["lessons", "check", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out.startswith(f"{path}:19: unknown setting 'depht'") and "1 problem" in out.err
    assert main(["lessons", "check", str(tmp_path / "missing.md")]) == 1


def test_every_measurement_is_listed_in_the_readme():
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert all(f"| `{name}` |" in readme for name in MEASUREMENTS)
    assert lesson_files()  # the course ships with the lab
