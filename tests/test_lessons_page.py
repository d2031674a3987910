"""The Lessons page through AppTest: every step of every lesson runs with its fields filled, a question is graded by
the run, Open in Train carries the run over untrained, and a learner's place survives a new session."""
from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from apptest import app  # noqa: E402

from lab.lessons.check import check  # noqa: E402
from lab.lessons.steps import right_choice, run_block  # noqa: E402
from lab.store.runstore import open_store  # noqa: E402

COURSE = check()[0]
OPEN = "lesson_open"


def _answer(step):
    """An answer as a learner gives it: the first choice, or a number."""
    return step.question.choices[0] if step.question.kind == "choice" else 1.0


@pytest.mark.parametrize("lesson", COURSE, ids=[lesson.id for lesson in COURSE])
def test_every_step_of_every_lesson_runs_with_its_fields_filled(lesson):
    at = app("pages/lessons.py")
    assert [b.key for b in at.button] == [f"lesson_start_{other.id}" for other in COURSE]
    for n, step in enumerate(lesson.steps, start=1):
        key = (lesson.id, n)
        at.session_state[OPEN] = key
        if step.question is not None:  # answered as the widget would keep it: the page opens with it given
            at.session_state[f"lesson_answer_{key}"] = _answer(step)
        at.run()
        assert at.title[0].value == lesson.title and at.subheader[0].value == step.title
        if step.block is not None:
            at.button(key=f"lesson_run_{key}").click().run()
        assert not at.exception, (key, [e.value for e in at.exception])
        text = " ".join(m.value for m in at.markdown)
        assert "{" not in text.replace("{{", ""), (key, text)
        if step.question is not None:
            graded = [*at.success, *at.error, *at.warning]
            assert any(g.value.startswith(("Right:", "Not quite:", "The run measured")) for g in graded), key


def test_a_wrong_answer_is_told_what_the_run_shows_and_open_in_train_carries_the_run(monkeypatch, tmp_path):
    lesson = next(lesson for lesson in COURSE if any(s.question is not None and s.question.kind == "choice"
                                                     and s.block.kind == "experiment" for s in lesson.steps))
    n, step = next((n, s) for n, s in enumerate(lesson.steps, start=1) if s.question is not None
                   and s.question.kind == "choice" and s.block.kind == "experiment")
    right = right_choice(step.question, run_block(step.block).values[step.question.measure])
    wrong = next(c for c in step.question.choices if c != right)
    at = app("pages/lessons.py")
    at.session_state[OPEN] = (lesson.id, n)
    at.run()
    assert at.button(key=f"lesson_run_{(lesson.id, n)}").disabled  # no run, and no reveal, before an answer
    at.radio(key=f"lesson_answer_{(lesson.id, n)}").set_value(wrong).run()
    at.button(key=f"lesson_run_{(lesson.id, n)}").click().run()
    assert at.error[0].value == f"Not quite: the run shows {right}."
    run = at.session_state["lesson_runs"][(lesson.id, n)]
    at.button(key=f"lesson_train_{(lesson.id, n)}").click().run()
    assert not at.exception
    assert at.session_state["result"] is run.result  # the very run, not trained again
    assert at.session_state["train_settings"].activation == run.result.config.activation  # its settings in the sidebar


def test_a_learner_resumes_where_they_stopped(monkeypatch, tmp_path):
    store = tmp_path / "runs.sqlite"
    monkeypatch.setenv("BACKPROP_LAB_STORE", str(store))
    lesson = COURSE[0]
    at = app("pages/lessons.py")
    at.button(key=f"lesson_start_{lesson.id}").click().run()
    at.button(key="lesson_next").click().run()
    assert at.session_state[OPEN] == (lesson.id, 2)
    with open_store(store) as s:
        assert s.progress("")[lesson.id][0] == 2
    again = app("pages/lessons.py")  # a new session: the list offers to continue at step 2
    assert again.button(key=f"lesson_start_{lesson.id}").label == "Continue"
    again.button(key=f"lesson_start_{lesson.id}").click().run()
    assert again.session_state[OPEN] == (lesson.id, 2)


def test_on_a_shared_server_progress_needs_a_name_and_shows_only_that_name_s(monkeypatch, tmp_path):
    store = tmp_path / "runs.sqlite"
    monkeypatch.setenv("BACKPROP_LAB_STORE", str(store))
    monkeypatch.setenv("BACKPROP_LAB_SHARED", "1")
    lesson = COURSE[0]
    with open_store(store) as s:
        s.save_progress("someone else", lesson.id, 3, {1, 2})
    at = app("pages/lessons.py")
    assert "Type your name" in at.info[0].value
    assert at.button(key=f"lesson_start_{lesson.id}").label == "Start"  # nobody else's progress
    at.text_input(key="learner").set_value("ana").run()
    at.button(key=f"lesson_start_{lesson.id}").click().run()
    at.button(key="lesson_next").click().run()
    with open_store(store) as s:
        assert s.progress("ana")[lesson.id][0] == 2 and s.progress("someone else")[lesson.id][0] == 3
    assert "someone else" not in " ".join(m.value for m in at.markdown)


def test_a_link_opens_its_step_and_a_stale_one_opens_the_list():
    lesson = COURSE[-1]
    at = app("pages/lessons.py")
    at.query_params["lesson"] = lesson.id
    at.query_params["step"] = "99"
    at.run()
    assert at.session_state[OPEN] == (lesson.id, len(lesson.steps)) and at.title[0].value == lesson.title
    at.query_params["lesson"] = "no-such-lesson"
    at.run()
    assert at.title[0].value == "Lessons" and not at.exception
