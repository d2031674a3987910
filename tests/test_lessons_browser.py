"""One whole lesson in a real browser: answers, reveals, Back, Open in Train, and a learner who comes back after
the server restarted finds their place.  Uses tests/browser_kit.py; skips as the other browser tests do."""
from __future__ import annotations

import browser_kit as kit

from lab.lessons.check import check
from lab.lessons.steps import right_choice, run_block

LESSON = next(lesson for lesson in check()[0] if lesson.id == "vanishing-sigmoid")


def _answer(page, step, right: bool):
    """Answer the step's question: the choice the run will make right (or another), or a number."""
    q = step.question
    measured = run_block(step.block).values[q.measure]
    if q.kind == "choice":
        truth = right_choice(q, measured)
        pick = truth if right else next(c for c in q.choices if c != truth)
        page.get_by_text(pick, exact=True).first.click()
    else:  # the measured number itself, or one a hundred times off
        page.get_by_placeholder("your estimate").fill(f"{measured if right else 100 * measured + 1:.6g}")
        page.keyboard.press("Enter")
    kit.settle(page)


def test_a_learner_walks_a_lesson_goes_back_opens_train_and_resumes_after_a_restart(browser, tmp_path):
    server = kit.start_server(tmp_path / "runs.sqlite", log=tmp_path / "server.log")
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    try:
        kit.open_page(page, server.url + "/lessons", "Lessons")
        kit.open_page(page, f"{server.url}/lessons?lesson={LESSON.id}&step=1", LESSON.title)
        for n, step in enumerate(LESSON.steps, start=1):
            assert page.get_by_text(f"Step {n} of {len(LESSON.steps)}").count() == 1
            if step.block is not None:
                run = page.get_by_role("button", name="Check my answer and run" if step.question else "Run")
                if step.question is not None:
                    assert run.is_disabled()  # the reveal waits for an answer
                    _answer(page, step, right=n % 2 == 1)
                run.click()
                page.get_by_text(step.summary).first.wait_for(timeout=30_000)
                kit.settle(page)
                if step.question is not None:
                    verdict = "Right:" if n % 2 == 1 else "Not quite:"
                    assert page.get_by_text(verdict).count() >= 1, n
            kit.no_exception(page)
            kit.shot(page, f"lesson_{LESSON.id}_{n}")
            if n < len(LESSON.steps):
                page.get_by_role("button", name="Next").click()
                kit.settle(page)
        page.get_by_role("button", name="Back").click()  # to the step before the last, its run kept
        kit.settle(page)
        assert page.get_by_text(f"Step {len(LESSON.steps) - 1} of").count() == 1
        assert page.get_by_text(LESSON.step(len(LESSON.steps) - 1).summary).count() >= 1
        page.get_by_role("button", name="Open in Train").click()
        page.get_by_role("heading", name="Train a network and watch its gradients").wait_for(timeout=30_000)
        kit.settle(page)
        assert page.get_by_text("2. The gradient profile").count() == 1  # the run's charts, not a new run
        kit.no_exception(page)
    finally:
        page.close()
        server.stop()
    again = kit.start_server(tmp_path / "runs.sqlite", log=tmp_path / "server2.log")
    page = browser.new_page(viewport={"width": 1400, "height": 1800})
    try:
        kit.open_page(page, again.url + "/lessons", "Lessons")
        assert page.get_by_text(f"{len(LESSON.steps)} steps · done").count() == 1  # every step was run
        page.get_by_role("button", name="Review").click()  # opens where the learner stopped
        kit.settle(page)
        assert page.get_by_text(f"Step {len(LESSON.steps) - 1} of {len(LESSON.steps)}").count() == 1
        kit.no_exception(page)
    finally:
        page.close()
        again.stop()
