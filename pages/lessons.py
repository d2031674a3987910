"""Lessons: a course through the lab, from the chain rule to the edge of chaos, one step at a time."""
import streamlit as st

from pages.ui import lesson_view, links, playback, router, run_history, state, widgets

router.use_router()

OPEN = "lesson_open"  # (lesson id, step) on screen; absent: the list of lessons
lessons = lesson_view.course()
by_id = {lesson.id: lesson for lesson in lessons}

link = links.new_link(state.LESSON_LINK_SEEN)
if link is not None:  # ?lesson=ID&step=N opens that step; anything else is ignored (the list shows)
    wanted = by_id.get(str(link.get("lesson", "")))
    step_text = str(link.get("step", "1"))
    if wanted is not None:
        number = int(step_text) if step_text.isdigit() else 1
        st.session_state[OPEN] = (wanted.id, min(max(number, 1), len(wanted.steps)))
    else:
        st.session_state.pop(OPEN, None)

who = lesson_view.learner()
places = lesson_view.progress(who)


def go(lesson_id: str | None, number: int = 1) -> None:
    """Open step ``number`` of a lesson (None: the list), keep the place, and put it in the address."""
    if lesson_id is None:
        st.session_state.pop(OPEN, None)
        links.set_address({}, state.LESSON_LINK_SEEN)
        return
    st.session_state[OPEN] = (lesson_id, number)
    _, done = places.get(lesson_id, (1, frozenset()))
    lesson_view.remember(who, by_id[lesson_id], number, done)
    links.set_address({"lesson": lesson_id, "step": number}, state.LESSON_LINK_SEEN)


def course_list() -> None:
    st.title("Lessons")
    st.markdown(
        "A course through the lab, from the chain rule to the edge of chaos. Each step is a short text, an "
        "experiment on the lab's own engine, and often a question: **predict** what the run will show, **run** it, "
        "**look** at what it measured, and read the **explanation**, whose numbers are those of your run. "
        "Start at the top if derivatives are all you know."
    )
    if who is None:
        st.info("Type your name above to keep your progress on this server.", icon=":material/person:")
    for k, lesson in enumerate(lessons, start=1):
        step, done = places.get(lesson.id, (1, frozenset()))
        with st.container(border=True):
            text, button = st.columns([5, 1], vertical_alignment="center")
            text.markdown(f"**{k}. {lesson.title}**")
            status = ("done" if len(done) >= len(lesson.steps) else f"step {step} of {len(lesson.steps)}" if done
                      or lesson.id in places else "not started")
            text.caption(f"about {lesson.minutes} min · {len(lesson.steps)} steps · {status}")
            # a lesson begun opens where the learner stopped, done or not
            label = "Start" if lesson.id not in places else "Review" if len(done) >= len(lesson.steps) else "Continue"
            if button.button(label, key=f"lesson_start_{lesson.id}", width="stretch"):
                go(lesson.id, 1 if label == "Start" else step)
                st.rerun()


def lesson_page(lesson, number: int) -> None:
    step = lesson.step(number)
    key = (lesson.id, number)
    if st.button("All lessons", icon=":material/arrow_back:", key="lesson_all"):
        go(None)
        st.rerun()
    st.title(lesson.title)
    st.progress(number / len(lesson.steps), text=f"Step {number} of {len(lesson.steps)} · about {lesson.minutes} min "
                                                 "for the lesson")
    if number == 1 and lesson.intro:
        st.markdown(lesson.intro)
    st.subheader(step.title)
    st.markdown(step.prose)
    _, done = places.get(lesson.id, (number, frozenset()))
    run = st.session_state.get(state.LESSON_RUNS, {}).get(key)
    if step.block is not None:
        st.caption(f"Runs {lesson_view.describe(step)}.")
        answer = lesson_view.ask(step, key) if step.question is not None else None
        label = "Check my answer and run" if step.question is not None else "Run"
        if run is None and step.question is not None and answer is None:
            st.caption("Answer first: the run and its explanation come after.")
        if run is None and st.button(label, type="primary", key=f"lesson_run_{key}",
                                     disabled=step.question is not None and answer is None):
            with st.spinner("Running…"):
                run = lesson_view.run_step(step, key)
            if run is not None:
                st.session_state[f"lesson_answered_{key}"] = answer
                lesson_view.remember(who, lesson, number, done | {number})
        if run is not None:
            if step.question is not None:
                lesson_view.verdict(step, run, st.session_state.get(f"lesson_answered_{key}", answer))
            if step.reveal:
                st.markdown(f"**{step.summary}**")
                st.markdown(lesson_view.fill(step.reveal, run))
            lesson_view.charts_of(run)
            if run.result is not None and st.button("Open in Train", icon=":material/monitoring:",
                                                    key=f"lesson_train_{key}",
                                                    help="this run on the Train page with all its charts, "
                                                         "without training it again"):
                playback.forget()  # a paused run of other settings would take the Train page's place
                run_history.remember_run(f"{lesson.id} step {number}", run.result, "lesson", store=False)
                widgets.open_run(run.result)
                st.switch_page("pages/train.py")
    else:
        if step.reveal:
            st.markdown(step.reveal)
        if number not in done:
            lesson_view.remember(who, lesson, number, done | {number})
    back, _, forward = st.columns([1, 3, 1])
    if back.button("Back", icon=":material/chevron_left:", key="lesson_back", disabled=number == 1, width="stretch"):
        go(lesson.id, number - 1)
        st.rerun()
    last = number == len(lesson.steps)
    if forward.button("All lessons" if last else "Next", icon=None if last else ":material/chevron_right:",
                      key="lesson_next", type="primary", width="stretch"):
        go(None) if last else go(lesson.id, number + 1)
        st.rerun()
    st.caption(f"This step's address opens it directly: ?lesson={lesson.id}&step={number}")


opened = st.session_state.get(OPEN)
if opened is not None and opened[0] in by_id:
    lesson_page(by_id[opened[0]], opened[1])
else:
    course_list()
