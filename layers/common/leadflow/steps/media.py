"""Clients' files: fetched by score, kept in the media bucket, forwarded under the lead's card.

Who forwards, exactly once. Score names a message's files on the lead (one conditional write with
the message itself), uploads them, then forwards them if the lead has a card — reading the lead
again when it had none, since route may have sent the card meanwhile. Route (and whoever sends a
card: a reassignment, a transfer, a newly connected owner) forwards every file the lead names right
after the card is sent. The two writes — the files named, the card set — are conditional on the
lead's version, so at least one side sees both; each forward is an exactly-once message
``media:<card>:<message id>:<n>`` claimed in the conversation table, so when both see both, one
sends. A file route finds named but not yet uploaded is left to score (``MediaNotStored``).

Telegram's own files are copied (copyMessage: no download, any size); a voice note is fetched only
to be transcribed. Other channels' files are fetched and uploaded to the bucket, then re-uploaded
to Telegram (sendPhoto, sendVoice, …). A file too big, unsupported or unavailable becomes a note
under the card saying where to look — never a lost message.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from leadflow.adapters.media import (
    MAX_MEDIA_BYTES,
    Blob,
    Fetcher,
    MediaBucket,
    MediaNotStored,
    MediaTooBig,
    MediaUnavailable,
    extension,
    mime_of,
)
from leadflow.adapters.messenger import Messenger
from leadflow.adapters.transcribe import Transcriber, TranscriptionFailed
from leadflow.domain.cards import attachment_text
from leadflow.domain.models import Attachment, InboundMessage, Lead, MediaRef, OutboundMessage
from leadflow.observability import logger, metrics

FILE_KINDS = frozenset({"photo", "voice", "audio", "video", "video_note", "document", "sticker"})
MAX_FILES = 10  # a VK message carries up to ten attachments
FETCH_MIN_S = 8.0  # time a fetch (and its upload) needs; less left in the batch: the message is retried
AFTER_FETCH_S = 4.0  # kept back from a download for the upload to the bucket and the forward
TRANSCRIBE_MIN_S = 4.0  # less left: the voice goes to the owner and the client is asked to write
TRANSCRIBE_MAX_S = 20.0


class NoTimeLeft(Exception):
    """Not enough of the batch's time for this message's files: it is retried on its own (nothing
    of it was written yet)."""


@dataclass
class Collected:
    """A message's files as fetched: what the lead will name, the bytes to keep, the voice's words."""

    attachments: list[Attachment] = field(default_factory=list)
    blobs: dict[int, Blob] = field(default_factory=dict)
    transcript: str | None = None
    unheard_voice: bool = False


class ClientMedia:
    def __init__(
        self,
        fetcher_for: Callable[[str], Fetcher | None],
        bucket: MediaBucket | None,
        transcriber: Transcriber | None,
        *,
        max_bytes: int = MAX_MEDIA_BYTES,
    ):
        self.fetcher_for = fetcher_for
        self.bucket = bucket
        self.transcriber = transcriber
        self.max_bytes = max_bytes

    # ------------------------------------------------------------------ score: fetch, transcribe
    def collect(self, message: InboundMessage, time_left_s: Callable[[], float]) -> Collected:
        collected = Collected()
        refs = list(message.attachments[:MAX_FILES])
        if "unsupported" in message.media and not any(r.kind == "unsupported" for r in refs):
            refs.append(MediaRef(kind="unsupported"))
        words: list[str] = []
        for n, ref in enumerate(refs):
            attachment = Attachment(
                message_id=message.message_id,
                n=n,
                kind=ref.kind,
                ext=extension(ref.mime_type, ref.file_name, ref.kind),
                mime_type=ref.mime_type,
                size=ref.size,
                file_name=ref.file_name,
                # Instagram and VK send the words beside the files: they go with the first one.
                caption=ref.caption or (message.text if n == 0 and not message.transcribed else None) or None,
                copy_from=ref.copy_from,
                link=ref.link,
            )
            blob = self._fetch(message, ref, attachment, time_left_s)
            if blob is not None:
                attachment.ext = extension(blob.mime_type or ref.mime_type, blob.file_name, ref.kind)
                attachment.mime_type = blob.mime_type or ref.mime_type
                attachment.size = len(blob.data)
                if not ref.copy_from:
                    attachment.stored = True
                    collected.blobs[n] = blob
                if ref.kind == "voice":
                    attachment.transcript = self._transcribe(blob, time_left_s)
                    if attachment.transcript:
                        words.append(attachment.transcript)
            if ref.kind == "voice" and not attachment.transcript:
                collected.unheard_voice = True
            collected.attachments.append(attachment)
        collected.transcript = " ".join(words) or None
        if collected.transcript:
            collected.unheard_voice = False
        return collected

    def _fetch(
        self, message: InboundMessage, ref: MediaRef, attachment: Attachment, time_left_s: Callable[[], float]
    ) -> Blob | None:
        """The file's bytes when they are needed: to keep it (not a Telegram copy) or to transcribe it."""
        wanted = not ref.copy_from or (ref.kind == "voice" and self.transcriber is not None)
        if not wanted:
            return None
        if ref.kind == "unsupported" or (ref.kind not in FILE_KINDS and not (ref.url or ref.file_id)):
            attachment.problem = "unsupported"  # a shared post, a link: staff open it where it lives
            return None
        fetcher = self.fetcher_for(message.channel)
        if fetcher is None or (self.bucket is None and not ref.copy_from) or not (ref.url or ref.file_id):
            attachment.problem = None if ref.copy_from else "unavailable"
            return None
        if time_left_s() < FETCH_MIN_S:
            if ref.copy_from:
                return (
                    None  # wanted only for its words: the owner gets the copy, the client is asked to write
                )
            raise NoTimeLeft(f"{message.channel} file: the batch's time is nearly spent")
        try:
            # What is left of the batch, less the time the upload and the forward need after it.
            return fetcher.fetch(ref, self.max_bytes, within_s=time_left_s() - AFTER_FETCH_S)
        except MediaTooBig as exc:
            problem = "too_big"
            reason = str(exc)
        except MediaUnavailable as exc:
            problem = "unavailable"
            reason = str(exc)
        metrics.add_metric(name="MediaNotFetched", unit="Count", value=1)
        logger.warning("client file not fetched", extra={"channel": message.channel, "reason": reason[:200]})
        if not ref.copy_from:
            attachment.problem = problem  # type: ignore[assignment]
        return None

    def _transcribe(self, blob: Blob, time_left_s: Callable[[], float]) -> str | None:
        if self.transcriber is None:
            return None
        left = time_left_s()
        if left < TRANSCRIBE_MIN_S:
            logger.info("voice not transcribed: the batch's time is nearly spent")
            return None
        try:
            words = self.transcriber.transcribe(blob, min(left - 2.0, TRANSCRIBE_MAX_S))
        except TranscriptionFailed as exc:
            metrics.add_metric(name="TranscriptionFailed", unit="Count", value=1)
            logger.warning("voice not transcribed", extra={"reason": exc.reason, "retryable": exc.retryable})
            return None
        metrics.add_metric(name="VoiceTranscribed", unit="Count", value=1)
        return words or None

    def keep(self, lead_id: str, collected: Collected) -> None:
        """Upload the fetched files under the lead's prefix (the same key on a redelivery)."""
        if self.bucket is None:
            return
        for attachment in collected.attachments:
            blob = collected.blobs.get(attachment.n)
            if blob is not None:
                self.bucket.put(attachment.key(lead_id), blob.data, mime_of(attachment.ext, blob.mime_type))

    def read(self, lead_id: str, attachment: Attachment) -> bytes | None:
        return self.bucket.get(attachment.key(lead_id)) if self.bucket else None


def with_transcript(message: InboundMessage, transcript: str) -> InboundMessage:
    """The message as qualification reads it: the voice's words are its text (marked as such)."""
    text = f"{message.text}\n{transcript}" if message.text.strip() else transcript
    return message.model_copy(update={"text": text, "transcribed": True})


def forward_attachments(messenger: Messenger, lead: Lead) -> int:
    """Every file the lead names, under its card, once per card; how many were sent now."""
    ref = lead.card_ref()
    if ref is None or not lead.attachments:
        return 0
    chat, card_message = ref
    sent = 0
    for attachment in lead.attachments:
        message = OutboundMessage(
            id=f"media:{lead.card}:{attachment.message_id}:{attachment.n}",
            channel="telegram",
            to=chat,
            lead_id=lead.lead_id,
            kind="client_media",
            text=attachment_text(lead, attachment),
            reply_to_message_id=card_message,
            attachment=attachment,
        )
        try:
            delivery = messenger.send(message)
        except MediaNotStored:
            continue  # score uploads it, then forwards it itself
        if delivery.outcome == "failed" and message.attachment is not None and not attachment.problem:
            # The platform would not take the file (the client deleted the message before it was
            # copied, an upload refused): the owner still learns that it came and where to see it.
            delivery = messenger.send(_note_instead(lead, message, attachment))
        sent += delivery.outcome == "sent"
    if sent:
        metrics.add_metric(name="MediaForwarded", unit="Count", value=sent)
    return sent


def _note_instead(lead: Lead, message: OutboundMessage, attachment: Attachment) -> OutboundMessage:
    unavailable = attachment.model_copy(update={"problem": "unavailable"})
    return message.model_copy(
        update={"id": f"{message.id}:note", "text": attachment_text(lead, unavailable), "attachment": None}
    )
