from datetime import timedelta

import pytest

from services.aftercare.config import EscalationRules
from services.aftercare.side_effects import InvalidReport, assess, escalation_id
from shared.contracts.aftercare import Symptom
from tests.unit.aftercare.factories import COMPLETED_AT, LOTS, report, session

RULES = EscalationRules()
NOW = COMPLETED_AT + timedelta(days=1)


def test_mild_redness_is_recorded_without_escalation():
    assessment = assess(session(), (report(Symptom.REDNESS, 1),), RULES, NOW)
    [item] = assessment.items
    assert assessment.escalations == ()
    assert item.escalation is None and not item.already_escalated
    assert assessment.escalated == {}


def test_an_allergic_reaction_is_escalated_with_the_sessions_lots_and_ingredients():
    [escalation] = assess(session(), (report(Symptom.ALLERGIC_REACTION, 2, report_id="sfx_UNIT5D0B_01B"),), RULES, NOW).escalations
    assert escalation.escalation_id == "esc_UNIT5D0B_01B"
    assert escalation.report_id == "sfx_UNIT5D0B_01B"
    assert (escalation.patient_id, escalation.course_id, escalation.session_id) == ("pt_UNIT7Q2M9K", "crs_UNIT5D0B", "ses_UNIT5D0B_01")
    assert escalation.lots == LOTS
    assert escalation.suspect_ingredients == ("hyaluronic_acid", "biotin")
    assert escalation.reasons == ("allergic_reaction",)
    assert escalation.escalated_at == NOW
    assert escalation.onset_at == COMPLETED_AT + timedelta(hours=2)


def test_the_escalation_id_depends_only_on_the_report_id():
    assert escalation_id("sfx_ABC123_9") == "esc_ABC123_9"
    first = assess(session(), (report(Symptom.INFECTION, 1),), RULES, NOW).escalations[0]
    again = assess(session(), (report(Symptom.INFECTION, 1),), RULES, NOW + timedelta(hours=1)).escalations[0]
    assert first.escalation_id == again.escalation_id


def test_the_same_symptom_of_the_same_session_at_the_same_grade_is_not_escalated_twice():
    already = session(escalated={Symptom.ALLERGIC_REACTION: 2})
    assessment = assess(already, (report(Symptom.ALLERGIC_REACTION, 2, report_id="sfx_UNIT5D0B_01C"),), RULES, NOW)
    [item] = assessment.items
    assert assessment.escalations == ()
    assert item.already_escalated
    assert assessment.escalated == {Symptom.ALLERGIC_REACTION: 2}


def test_a_lower_grade_of_an_escalated_symptom_is_not_escalated_again():
    assert assess(session(escalated={Symptom.INFECTION: 3}), (report(Symptom.INFECTION, 2),), RULES, NOW).escalations == ()


def test_a_worsening_symptom_is_escalated_again_and_remembers_the_higher_grade():
    assessment = assess(session(escalated={Symptom.ALLERGIC_REACTION: 2}), (report(Symptom.ALLERGIC_REACTION, 3),), RULES, NOW)
    [escalation] = assessment.escalations
    assert escalation.reasons == ("allergic_reaction", "grade_3_or_above")
    assert assessment.escalated == {Symptom.ALLERGIC_REACTION: 3}


def test_another_symptom_of_an_escalated_session_is_escalated_on_its_own():
    assessment = assess(session(escalated={Symptom.ALLERGIC_REACTION: 2}), (report(Symptom.INFECTION, 1),), RULES, NOW)
    assert [e.symptom for e in assessment.escalations] == [Symptom.INFECTION]
    assert assessment.escalated == {Symptom.ALLERGIC_REACTION: 2, Symptom.INFECTION: 1}


def test_two_lines_of_one_answer_with_the_same_serious_symptom_escalate_once():
    reports = (report(Symptom.INFECTION, 1, report_id="sfx_UNIT_L1"), report(Symptom.INFECTION, 1, report_id="sfx_UNIT_L2"))
    assessment = assess(session(), reports, RULES, NOW)
    assert [e.report_id for e in assessment.escalations] == ["sfx_UNIT_L1"]
    assert [i.already_escalated for i in assessment.items] == [False, True]


def test_redness_still_present_beyond_a_week_is_escalated_as_persisting():
    [escalation] = assess(session(), (report(Symptom.REDNESS, 1, lasted=timedelta(days=8)),), RULES, NOW).escalations
    assert escalation.reasons == ("persisting",)


def test_an_onset_before_the_session_completed_is_refused():
    with pytest.raises(InvalidReport) as refused:
        assess(session(), (report(after=-timedelta(minutes=1)),), RULES, NOW)
    assert refused.value.reason == "onset-before-session"
    assert "pt_" not in refused.value.detail


def test_an_onset_at_the_moment_of_completion_is_accepted():
    assert len(assess(session(), (report(after=timedelta(0)),), RULES, NOW).items) == 1


def test_a_configured_grace_accepts_an_onset_during_the_injections():
    rules = EscalationRules(onset_grace_minutes=30)
    assert len(assess(session(), (report(after=-timedelta(minutes=30)),), rules, NOW).items) == 1
    with pytest.raises(InvalidReport):
        assess(session(), (report(after=-timedelta(minutes=31)),), rules, NOW)


def test_an_onset_after_the_report_is_refused():
    with pytest.raises(InvalidReport) as refused:
        assess(session(), (report(lasted=-timedelta(minutes=1)),), RULES, NOW)
    assert refused.value.reason == "onset-after-report"


def test_a_report_of_another_patient_for_the_session_is_refused():
    with pytest.raises(InvalidReport) as refused:
        assess(session(), (report(patient_id="pt_SOMEONEELSE1"),), RULES, NOW)
    assert refused.value.reason == "patient-mismatch"


def test_one_bad_line_refuses_the_whole_answer_even_after_a_serious_one():
    reports = (report(Symptom.ALLERGIC_REACTION, 2), report(after=-timedelta(hours=1), report_id="sfx_UNIT_BAD"))
    with pytest.raises(InvalidReport):
        assess(session(), reports, RULES, NOW)
