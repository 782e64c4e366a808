"""What a decision writes: the course, released claims, and reminders scheduled or cancelled as sessions move
(which reminders change is the domain's rule, ``reminder_changes``; ``Repository.save`` writes them)."""

from __future__ import annotations

from datetime import timedelta

from services.scheduling.calendar import Calendar
from services.scheduling.domain import book_course, rebook, release, reminder_changes
from services.scheduling.repository import COURSES, SLOTS, Claim, Repository, reminder_id
from shared.contracts.scheduling import PreTreatmentReminderDue, RescheduleReason
from shared.runtime.effects import Delete, Merge, Put
from tests.unit.scheduling.factories import NOW, approval, booked, clinic

NO_CLAIMS = Claim({}, frozenset())


def save(before, decision, claim, config):
    return Repository.save(decision, claim, reminder_changes(before, decision.course, config, NOW))  # no I/O


def delayed(effects):
    return {e.id: e for e in effects.events if e.due_at is not None}


def test_a_booked_course_schedules_each_sessions_reminders_under_ids_derived_from_session_kind_and_time():
    config = clinic()
    decision = book_course(approval(sessions=3), frozenset(), Calendar(config.calendar), config, NOW)

    effects = save(None, decision, NO_CLAIMS, config)

    reminders = delayed(effects)
    first = decision.course.sessions[0].booking.start
    washout = reminders[reminder_id("ses_UNIT0001_01", "washout", first)]
    assert isinstance(washout.data, PreTreatmentReminderDue) and washout.due_at == first - timedelta(days=7)
    assert len(reminders) == 6
    assert [type(e.data).__name__ for e in effects.events if e.due_at is None] == ["SessionScheduled"] * 3
    assert isinstance(effects.writes[0], Put) and effects.writes[0].collection == COURSES
    assert effects.outcome == "booked"


def test_a_moved_session_has_its_old_reminders_cancelled_and_new_ones_scheduled_and_the_others_are_untouched():
    config = clinic()
    course = booked(config, sessions=3, interval_days=14)
    second = course.sessions[1]
    after = second.booking.start + timedelta(days=1)
    decision = rebook(course, second, RescheduleReason.SESSION_CANCELLED, after.replace(hour=0), frozenset(), Calendar(config.calendar), config, NOW)

    effects = save(course, decision, Claim({}, frozenset({"chair_01|old"})), config)

    old = second.booking.start
    assert sorted(effects.cancel) == sorted(reminder_id(second.session_id, kind, old) for kind in ("washout", "numbing_cream"))
    new = decision.course.sessions[1].booking.start
    assert set(delayed(effects)) == {reminder_id(second.session_id, kind, new) for kind in ("washout", "numbing_cream")}
    assert Delete(SLOTS, "chair_01|old") in effects.writes


def test_a_session_cancelled_for_good_loses_its_reminders_and_nothing_new_is_scheduled():
    config = clinic()
    course = booked(config, sessions=3)

    effects = save(course, release(course, course.sessions[2]), NO_CLAIMS, config)

    assert len(effects.cancel) == 2 and delayed(effects) == {}


def test_a_cell_passed_between_two_sessions_of_the_course_is_handed_over_not_released():
    config = clinic()
    course = booked(config, sessions=3)
    decision = release(course, course.sessions[2])

    effects = save(course, decision, Claim({"chair_01|x": "ses_UNIT0001_02"}, frozenset()), config)

    assert Merge(SLOTS, "chair_01|x", {"holder": "ses_UNIT0001_02"}) in effects.writes
    assert not [w for w in effects.writes if isinstance(w, Delete)]
