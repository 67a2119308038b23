"""Ingest answers fast: reading a webhook that names a photo or a voice loads nothing of the media
path (no transcriber, no openai, no HTTP client) — the file is fetched later, by score."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]


def test_parsing_a_file_message_loads_nothing_heavy():
    code = f"""
import json, sys
from leadflow.steps import ingest
from leadflow.adapters.channels import telegram, whatsapp, instagram, vk
events = {str(ROOT / "events")!r}
update = telegram.TgUpdate.model_validate(json.load(open(events + "/telegram/voice.json")))
assert telegram.parse_update(update).messages[0].attachments
assert whatsapp.parse_notification(json.load(open(events + "/whatsapp/image_caption.json"))).messages[0].attachments
callback = vk.VkCallback.model_validate(json.load(open(events + "/vk/message_new_audio_message.json")))
assert vk.parse_callback(callback).messages[0].attachments
heavy = ["openai", "requests", "leadflow.adapters.transcribe", "leadflow.steps.media", "leadflow.steps.score"]
print(json.dumps([name for name in heavy if name in sys.modules]))
"""
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, cwd=ROOT
    )
    assert json.loads(loaded.stdout) == []
