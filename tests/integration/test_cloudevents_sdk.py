"""A clinic system on the CNCF CloudEvents SDK talks to a service over the real broker, both ways."""

from __future__ import annotations

from cloudevents.core.bindings import kafka as sdk
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent as SdkEvent

from tests.support import probe


async def test_sdk_events_in_both_modes_are_handled_and_the_reply_is_read_by_the_sdk(settings, bus, run_id):
    sent = {}
    for mode, convert in (("binary", sdk.to_binary), ("structured", sdk.to_structured)):
        patient = f"pt_SDK{mode.upper()}{run_id}"
        event = SdkEvent(
            {"type": probe.INBOUND.event_type, "source": "/patient-app/sdk", "datacontenttype": "application/json", "partitionkey": patient},
            probe.inbound(patient).model_dump(mode="json"),
        )
        message = convert(event, JSONFormat())
        await bus.send(bus.topic(probe.INBOUND), message.value, list(message.headers.items()), key=message.key)
        sent[patient] = event.get_id()

    async with probe.create(settings) as service:
        for patient in sent:
            await bus.wait_for(probe.OUTBOUND, lambda d, patient=patient: d.patient_id == patient)
    assert service.stats.handled == {probe.INBOUND.event_type: 2} and not service.stats.dead_lettered

    for record in await bus.records(bus.topic(probe.OUTBOUND)):
        read = sdk.from_binary(sdk.KafkaMessage(headers=dict(record.headers), key=record.key, value=record.value), JSONFormat())
        patient = read.get_data()["patient_id"]
        assert read.get_type() == probe.OUTBOUND.event_type and read.get_extension("partitionkey") == patient
        assert read.get_extension("causationid") == sent[patient] == read.get_extension("correlationid")
