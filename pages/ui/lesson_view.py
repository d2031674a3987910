"""The Lessons page's parts: the course, the learner and their progress, and one step made live."""
from __future__ import annotations

import os

import streamlit as st

from lab.lessons.check import check
from lab.lessons.lesson import Lesson, Step
from lab.lessons.steps import StepRun, block_config, fill, grade, run_block
from lab.report import charts, tables
from lab.serving import gate
from pages.ui import panels, results_view, running, state, store_view

SHARED_ENV = "BACKPROP_LAB_SHARED"  # "1": a shared server, where each learner types a name that keys their progress


@st.cache_resource(show_spinner=False)
def course() -> tuple[Lesson, ...]:
    """The shipped lessons that pass the validator, in file order (read once per server process; a lesson with a
    problem is left out and its problems logged, as ``python -m lab lessons check`` would print them)."""
    lessons, problems = check()
    bad = {p.path for p in problems}
    for p in problems:
        print(f"lessons: {p}")  # the operator's log; the page never shows a broken lesson
    return tuple(lesson for lesson in lessons if lesson.path not in bad)


def shared() -> bool:
    value = os.environ.get(SHARED_ENV)
    try:
        value = st.secrets.get(SHARED_ENV, value)
    except Exception:  # noqa: BLE001 - no secrets file (or an unreadable one): the environment alone
        pass
    return str(value).strip().lower() in ("1", "true", "yes", "on")


def learner() -> str | None:
    """Whose progress this is: "" on one's own machine; on a shared server the name the learner typed (None until
    they type one)."""
    if not shared():
        return ""
    name = st.text_input("Your name", key=state.LEARNER, max_chars=40,
                         help="Your progress is kept under this name on this server. There is no password: anyone "
                              "who types the same name continues the same progress. Only your own progress is shown.")
    st.caption("No password: your name only keys your progress on this server, and only your own progress is shown.")
    return name.strip() or None


def progress(who: str | None) -> dict[str, tuple[int, frozenset[int]]]:
    """This learner's place in each lesson: from the run store, or this session's when the store is off."""
    mine = st.session_state.setdefault(state.LESSON_PROGRESS, {})
    if who is None:
        return mine
    with store_view.opened() as store:
        stored = store.progress(who) if store is not None else {}
    return {**stored, **mine}


def remember(who: str | None, lesson: Lesson, step: int, done: frozenset[int]) -> None:
    st.session_state.setdefault(state.LESSON_PROGRESS, {})[lesson.id] = (step, done)
    if who is not None:
        store_view.save_progress(who, lesson.id, step, done)


def describe(step: Step) -> str:
    """The step's live block in a line: what will run."""
    block = step.block
    if block.kind == "example":
        return {"fruit_shop": "the fruit-shop graph", "softmax": "softmax with cross-entropy for one example",
                "gradcheck": "a gradient check"}[block.name] + (
            f" ({', '.join(f'{k} {v}' for k, v in block.values.items())})" if block.values else "")
    config = block_config(block)
    what = (f"{config.depth} hidden layers of {config.width} {config.activation} units, {config.init} init"
            + (f" (scale {config.init_scale:g})" if config.init_scale != 1 else "") + f", {config.dataset} data")
    if block.name == "spectrum":
        return what + ", at initialization, with its Jacobian's singular values"
    return what + (", at initialization (not trained)" if block.name == "init" else f", trained {config.epochs} epochs")


def run_step(step: Step, key: tuple) -> StepRun | None:
    """The step's run: made once per session (the gate admits an experiment first), then kept."""
    runs = st.session_state.setdefault(state.LESSON_RUNS, {})
    if key in runs:
        return runs[key]
    block = step.block
    if block.kind == "experiment" or block.name == "gradcheck":
        config = block_config(block)
        kind = "train" if block.kind == "experiment" else "gradcheck"
        if running.admitted(gate.Work(kind, (config,))) is None:
            return None
    run = run_block(block)  # a worked example's inputs come from the lesson file, bounded by lab.lessons.steps
    if run.result is not None:
        run.result.meta.setdefault("source", "lesson")
    runs[key] = run
    return run


def ask(step: Step, key: tuple):
    """The question's widget; the learner's answer (None until given)."""
    q = step.question
    if q.kind == "choice":
        return st.radio(q.ask, q.choices, index=None, key=f"lesson_answer_{key}")
    return st.number_input(q.ask, value=None, format="%g", key=f"lesson_answer_{key}",
                           placeholder="your estimate")


def verdict(step: Step, run: StepRun, answer) -> None:
    """Right or wrong, and what the run shows."""
    g = grade(step.question, run, answer)
    shown = g.right or fill(f"{{{step.question.measure}}}", run)
    if g.correct:
        st.success(f"Right: the run shows {shown}.", icon=":material/check_circle:")
    elif step.question.kind == "choice" and not g.right:
        st.warning(f"The run measured {fill('{' + step.question.measure + '}', run)}, which none of the choices "
                   "covers.", icon=":material/help:")
    else:
        st.error(f"Not quite: the run shows {shown}.", icon=":material/cancel:")


def charts_of(run: StepRun) -> None:
    """The same charts and captions the Train page (or the worked example's own page) draws for this run."""
    block = run.block
    if block.kind == "experiment":
        if block.name == "train":
            results_view.learning_curves(run.result)
        results_view.gradient_profile(run.result)
        if block.name == "spectrum":
            spectrum_charts(run)
        else:
            results_view.histograms(run.result)
    elif block.name == "fruit_shop":
        from lab.worked.graphs import fruit_shop_dot

        st.graphviz_chart(fruit_shop_dot(run.table))
        shown = run.table[["label", "value", "grad", "numerical", "meaning"]].astype({"numerical": float})
        st.dataframe(tables.styled(shown, key="label"), hide_index=True)  # "–" where no central difference is taken
    elif block.name == "softmax":
        panels.chart(charts.softmax_figure(run.steps.table), key="lesson_softmax", filename="softmax")
        st.dataframe(run.steps.table, hide_index=True)
    else:
        from lab.engine.gradcheck import PASS_THRESHOLD

        panels.chart(charts.gradcheck_figure(run.check, PASS_THRESHOLD), key="lesson_gradcheck", filename="gradcheck")
        panels.chart(charts.gradcheck_scatter(run.comparison.entries, run.check), key="lesson_gradcheck_entries",
                     filename="gradcheck_entries")
        st.dataframe(tables.styled(run.check.drop(columns=["numerical_s"])), hide_index=True)


def spectrum_charts(run: StepRun) -> None:
    """The Init explorer's spectrum charts and caption for a "spectrum" step's network."""
    from lab.report import spectrum

    name = "this network"
    panels.chart(spectrum.density_figure({name: run.spectrum}), key="lesson_spectrum", filename="jacobian_spectrum")
    panels.chart(spectrum.moments_figure({name: run.spectrum}, {name: charts.PALETTE[0]}), key="lesson_spectrum_moments",
                 filename="jacobian_spectrum_moments")
    st.caption(spectrum.caption("This network", run.spectrum))
