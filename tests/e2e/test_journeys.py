"""Whole patient journeys through the four services running as separate processes."""

from __future__ import annotations

from clinic.journey import Journey, model
from clinic.polling import eventually
from shared.contracts import REGISTRY


async def test_the_sample_journey_completes_with_every_service_in_step(running, events):
    journey = Journey(events)
    seen = await journey.play()

    approved = seen["ConsultationApproved"][0].data
    sessions = seen["SessionScheduled"]
    escalated = seen["AdverseEventEscalated"][0].data
    assert len(sessions) == approved.plan.sessions
    assert seen["TreatmentPaused"][0].data.released_sessions, "future sessions are released"

    consultation = await running.db("consultation")["consultations"].find_one({"_id": journey.consultation})
    patient = await running.db("consultation")["patients"].find_one({"_id": journey.patient})
    course = await running.db("scheduling")["courses"].find_one({"_id": approved.course_id})
    flags = await running.db("inventory")["lot_flags"].count_documents({"escalation_id": escalated.escalation_id})
    side_effect = await running.db("aftercare")["side_effects"].find_one({"_id": f"sfx_DEMO{journey.run}"})

    assert consultation["status"] == "approved"
    assert set(escalated.suspect_ingredients) <= {s["ingredient"] for s in patient["sensitivities"]}
    assert course["status"] == "paused"
    assert flags == len(escalated.lots)
    assert side_effect["category"] == "serious" and side_effect["escalation_id"] == escalated.escalation_id


async def test_the_next_plan_for_a_sensitised_patient_needs_review(running, events):
    journey = Journey(events)
    await journey.play()
    again = model(
        "ConsultationRecorded",
        **{**(await events.events(REGISTRY.by_name("ConsultationRecorded"), lambda d: d.patient_id == journey.patient))[0].data.model_dump(mode="json"),
           "consultation_id": f"cons_NEXT{journey.run}"},
    )
    await events.publish(again, source="/clinic/ehr")

    [decision] = await events.wait_for(REGISTRY.by_name("ConsultationDeferred"), lambda d: d.consultation_id == f"cons_NEXT{journey.run}")
    assert any("sensitiv" in rule.rule_id for rule in decision.data.rules_fired)


async def test_a_rejected_consultation_books_nothing(running, events):
    journey = Journey(events)
    recorded = model(
        "ConsultationRecorded",
        patient_id=journey.patient,
        consultation_id=journey.consultation,
        recorded_at=journey.now().isoformat(),
        sex_at_birth="female",
        severity={"scale": "ludwig", "value": 2},
        pregnant=True,
    )
    await events.publish(recorded, source="/clinic/ehr")
    await journey.expect("ConsultationRejected")

    await eventually(lambda: _handled(running, "consultation", journey.consultation), what="consultation settled")
    assert await events.events(REGISTRY.by_name("SessionScheduled"), lambda d: d.patient_id == journey.patient) == []
    assert await running.db("scheduling")["courses"].count_documents({"patient_id": journey.patient}) == 0
    assert await running.db("inventory")["sessions"].count_documents({"patient_id": journey.patient}) == 0


async def test_a_cancellation_releases_the_reservation_and_rebooks_the_session(running, events):
    journey = Journey(events)
    await journey.deliver_stock()
    deferred = await journey.record_consultation()
    approved = await journey.record_allergy_test(deferred)
    sessions = await journey.book_series(approved)
    second = sessions[1].data
    await journey.expect("IngredientsReserved", lambda d: d.session_id == second.session_id)

    cancelled = model(
        "SessionCancelled",
        patient_id=journey.patient,
        course_id=second.course_id,
        session_id=second.session_id,
        scheduled_for=second.scheduled_for.isoformat(),
        cancelled_at=journey.now().isoformat(),
    )
    await events.publish(cancelled, source="/clinic/front-desk")

    [released] = await journey.expect("ReservationReleased", lambda d: d.session_id == second.session_id)
    [moved] = await journey.expect("SessionRescheduled", lambda d: d.session_id == second.session_id)
    assert moved.data.scheduled_for != second.scheduled_for
    await journey.expect("IngredientsReserved", lambda d: d.session_id == second.session_id, count=2)
    assert released.data.session_id == second.session_id


async def _handled(running, service: str, consultation_id: str) -> bool:
    document = await running.db(service)["consultations"].find_one({"_id": consultation_id})
    return bool(document and document.get("status") == "rejected")


async def _paused(journey: Journey, running) -> tuple[object, tuple[str, ...]]:
    """The sample journey, then wait until inventory released every session the pause released."""
    seen = await journey.play()
    paused = seen["TreatmentPaused"][0].data
    released = tuple(paused.released_sessions)

    async def all_released() -> bool:
        docs = [await running.db("inventory")["sessions"].find_one({"_id": s}) for s in released]
        return all(doc is not None and doc["status"] == "released" for doc in docs)

    try:
        await eventually(all_released, timeout=journey.timeout, what="inventory released the paused sessions")
    except AssertionError as late:
        docs = [await running.db("inventory")["sessions"].find_one({"_id": s}) for s in released]
        raise AssertionError(f"{late}; inventory's sessions: {[(s, (d or {}).get('status')) for s, d in zip(released, docs, strict=True)]}") from None
    return paused, released


async def test_a_paused_course_resumed_after_the_review_is_booked_again_and_inventory_reserves_again(running, events):
    journey = Journey(events)
    paused, released = await _paused(journey, running)

    decided = model("CourseReviewDecided", patient_id=journey.patient, course_id=paused.course_id, decision="resume", decided_at=journey.now().isoformat())
    await events.publish(decided, source="/clinic/ehr")

    [resumed] = await journey.expect("TreatmentResumed")
    moved = await journey.expect("SessionRescheduled", lambda d: d.reason == "course_resumed", count=len(released))
    starts = {m.data.session_id: m.data.scheduled_for for m in moved}
    assert resumed.data.rebooked_sessions == released and set(starts) == set(released)

    async def answered_again() -> bool:
        # reserved again at the new time (or short, when the suspect lots were quarantined): never left released
        docs = {s: await running.db("inventory")["sessions"].find_one({"_id": s}) for s in released}
        return all(doc is not None and doc["status"] in ("reserved", "short") and doc["scheduled_for"] == starts[s] for s, doc in docs.items())

    await eventually(answered_again, timeout=journey.timeout, what="inventory answered the rebooked sessions")
    course = await running.db("scheduling")["courses"].find_one({"_id": paused.course_id})
    assert course["status"] == "active"


async def test_a_paused_course_closed_after_the_review_cancels_its_sessions_and_holds_no_stock(running, events):
    journey = Journey(events)
    paused, released = await _paused(journey, running)

    decided = model("CourseReviewDecided", patient_id=journey.patient, course_id=paused.course_id, decision="close", decided_at=journey.now().isoformat())
    await events.publish(decided, source="/clinic/ehr")

    [closed] = await journey.expect("TreatmentCourseClosed")
    assert set(released) <= set(closed.data.cancelled_sessions)
    course = await running.db("scheduling")["courses"].find_one({"_id": paused.course_id})
    inventory = [await running.db("inventory")["sessions"].find_one({"_id": s}) for s in released]
    assert course["status"] == "closed"
    assert all(doc["status"] == "released" and not any(h["amount"] > 0 for h in doc["holds"].values()) for doc in inventory), "nothing held for a cancelled session"
    assert await events.events(REGISTRY.by_name("SessionRescheduled"), lambda d: d.patient_id == journey.patient) == []
