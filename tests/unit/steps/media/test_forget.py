"""`leadflow forget` covers a person's files: their photos and voice messages leave the media bucket
with the rest of them (152-FZ), and the report says how many."""

from __future__ import annotations

from datetime import timedelta

from leadflow import clock, wiring
from leadflow.steps.privacy import Privacy
from leadflow_local.cli import main

IRINA = "+79135550001"
PHOTO = b"\xff\xd8\xff\xe0" + b"photo" * 50


def test_forget_deletes_the_persons_files_from_the_bucket(media, monkeypatch, capsys):
    ws, graph = media.ws, media.graph
    graph.add_media("61001", PHOTO, "image/jpeg")
    graph.add_media("61002", PHOTO, "image/jpeg")
    assert ws.post(ws.hooks.whatsapp_media(IRINA, "Ирина", "image", "61001", "image/jpeg", clock.now(),
                                           caption="Маникюр завтра в 12, вот такой")) == 200  # fmt: skip
    ws.run()
    clock.advance(timedelta(minutes=3))
    assert (
        ws.post(ws.hooks.whatsapp_media(IRINA, "Ирина", "image", "61002", "image/jpeg", clock.now())) == 200
    )
    ws.run()
    # Somebody else's file stays.
    graph.add_media("61003", PHOTO, "image/jpeg")
    assert ws.post(ws.hooks.whatsapp_media("+79135550002", "Оля", "image", "61003", "image/jpeg", clock.now(),
                                           caption="Педикюр завтра в 12")) == 200  # fmt: skip
    ws.run()
    irina = next(lead for lead in map(ws.lead, _lead_ids(ws)) if lead.contact.phone == IRINA)
    assert len(ws.aws.media_objects(f"media/{irina.lead_id}/")) == 2
    assert len(ws.aws.media_objects()) == 3

    monkeypatch.setattr("leadflow_local.cli._connected", lambda args: {})
    assert main(["forget", IRINA]) == 0

    assert "файлов (фото, голосовые) удалено: 2" in capsys.readouterr().out
    assert ws.aws.media_objects(f"media/{irina.lead_id}/") == {}
    assert len(ws.aws.media_objects()) == 1
    gone = ws.lead(irina.lead_id)
    assert gone.attachments == [] and "anonymised" in gone.tags  # no caption or transcript kept either
    # Asked again: nothing left to delete, and nothing fails.
    report = Privacy(ws.aws.store, wiring.crm(), wiring.business(), wiring.media_bucket()).forget(IRINA)
    assert report.media_files == 0


def _lead_ids(ws) -> list[str]:
    return [item["lead_id"] for item in ws.aws.store.leads.table.scan()["Items"]]
