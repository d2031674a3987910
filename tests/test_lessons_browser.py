"""One whole lesson in a real browser: answers right and wrong, reveals, Back, Open in Train, and a learner who
comes back after a server restart finds their place.  Uses tests/browser_kit.py; skips as the other browser tests do."""
from __future__ import annotations

import browser_kit as kit

from lab.lessons.check import check
from lab.lessons.steps import right_choice, run_block

# four steps: two fruit-shop steps, a gradient check and a trained network (which Open in Train can carry)
LESSON = next(lesson for lesson in check()[0] if lesson.id == "layers-as-objects")


def _answer(page, step, right: bool):
    """Answer the step's question: the choice its run makes right (or another), or the measured number (or one far
    off), as a learner would pick or type it."""
    q = step.question
    measured = run_block(step.block).values[q.measure]
    if q.kind == "choice":
        truth = right_choice(q, measured)
        pick = truth if right else next(c for c in q.choices if c != truth)
        page.locator("[data-testid=stRadio]").get_by_text(pick, exact=True).click()  # not the same words in the prose
    else:
        page.get_by_placeholder("your estimate").fill(f"{measured if right else 100 * measured + 1:.6g}")
        page.keyboard.press("Enter")
    kit.settle(page)


def _on_step(page, n: int) -> bool:
    return page.get_by_text(f"Step {n} of {len(LESSON.steps)}").count() == 1


def test_a_learner_walks_a_lesson_goes_back_opens_train_and_resumes_after_a_restart(server, page, tmp_path):
    last = len(LESSON.steps)
    kit.open_page(page, f"{server}/lessons?lesson={LESSON.id}&step=1", LESSON.title)
    for n, step in enumerate(LESSON.steps, start=1):
        assert _on_step(page, n)
        run = page.get_by_role("button", name="Check my answer and run")
        assert run.is_disabled()  # no run and no reveal before an answer
        _answer(page, step, right=n % 2 == 1)
        run.click()
        page.get_by_text(step.summary).first.wait_for(timeout=30_000)
        kit.settle(page)
        assert page.get_by_text("Right:" if n % 2 == 1 else "Not quite:").count() >= 1, n
        kit.no_exception(page)
        if n < last:
            page.get_by_role("button", name="Next").click()
            kit.settle(page)
    page.get_by_role("button", name="Back").click()
    kit.settle(page)
    assert _on_step(page, last - 1) and page.get_by_text(LESSON.step(last - 1).summary).count() >= 1  # its run kept
    page.get_by_role("button", name="Next").click()
    kit.settle(page)
    assert _on_step(page, last) and page.get_by_role("button", name="Check my answer and run").count() == 0
    page.get_by_role("button", name="Open in Train").click()
    page.get_by_role("heading", name="Train a network and watch its gradients").wait_for(timeout=30_000)
    kit.settle(page)
    assert page.get_by_text("1. Learning curves").count() == 1 and page.get_by_text("Training…").count() == 0
    kit.no_exception(page)

    # a new server process on the same run store, as after a restart, finds the learner's place
    again = kit.start_server(kit.SERVER["store"], log=tmp_path / "restarted.log")
    try:
        kit.open_page(page, again.url + "/lessons", "Lessons")
        assert page.get_by_text(f"{last} steps · done").count() == 1  # every step of it was run
        page.get_by_role("button", name="Review").first.click()  # opens where the learner stopped
        kit.settle(page)
        assert _on_step(page, last)
        kit.no_exception(page)
    finally:
        again.stop()
