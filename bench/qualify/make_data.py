"""Turn the hand-written case tables in data/src/*.txt into the benchmark's JSONL files.

The tables hold the labels as a person wrote them by LABELING.md. Relative dates may be written
as the rule names them (+N days, the next weekday, that weekday next calendar week) so the
labeller does not do calendar arithmetic by hand; temperature is derived by the rule
(booking → hot when the date is 0–2 days away or the text is urgent, else warm; others cold).
"""

from __future__ import annotations

import argparse
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
CHANNELS = {"tg": "telegram", "wa": "whatsapp", "ig": "instagram"}
INTENTS = {"b": "booking", "q": "question", "n": "not_target"}
WEEKDAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


def resolve_date(spec: str, received: date) -> date | None:
    if spec == "-":
        return None
    if spec.startswith("+"):
        return received + timedelta(days=int(spec[1:]))
    if spec.startswith("wd:"):
        target = WEEKDAYS.index(spec[3:])
        return received + timedelta(days=(target - received.weekday()) % 7)
    if spec.startswith("nwd:"):
        target = WEEKDAYS.index(spec[4:])
        next_monday = received + timedelta(days=7 - received.weekday())
        return next_monday + timedelta(days=target)
    return date.fromisoformat(spec)


def parse_line(line: str, number: int, prefix: str) -> dict:
    channel, received, intent, service, day, time, name, phone, urgent, text = line.split("|", 9)
    received_at = datetime.fromisoformat(received.strip() + ":00+07:00")
    problems = []
    if phone != "-" and not re.fullmatch(r"\+7\d{10}", phone):
        problems.append(f"phone {phone!r}")
    if urgent not in ("u", "-"):
        problems.append(f"urgent {urgent!r}")
    if time != "-" and not re.fullmatch(r"\d{2}:\d{2}", time):
        problems.append(f"time {time!r}")
    if intent not in INTENTS or text.startswith(("-|", "|")) or not text.strip():
        problems.append("intent or text")
    if problems:
        raise ValueError(f"{prefix}{number:03d}: bad columns: {', '.join(problems)}")
    intent = INTENTS[intent]
    preferred = resolve_date(day, received_at.date())
    if intent == "booking":
        near = preferred is not None and 0 <= (preferred - received_at.date()).days <= 2
        temperature = "hot" if near or urgent == "u" else "warm"
    else:
        temperature = "cold"
    none = lambda value: None if value == "-" else value  # noqa: E731
    return {
        "id": f"{prefix}{number:03d}",
        "channel": CHANNELS.get(channel, channel),
        "received_at": received_at.isoformat(),
        "text": text.replace("\\n", "\n"),
        "expect": {
            "intent": intent,
            "temperature": temperature,
            "service": none(service),
            "preferred_date": preferred.isoformat() if preferred else None,
            "preferred_time": none(time),
            "name": none(name),
            "phone": none(phone),
        },
    }


def convert(source: Path, target: Path, prefix: str) -> int:
    cases = []
    for line in source.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            cases.append(parse_line(line, len(cases) + 1, prefix))
    with target.open("w", encoding="utf-8") as out:
        for case in cases:
            out.write(json.dumps(case, ensure_ascii=False) + "\n")
    return len(cases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.parse_args()
    for name, prefix in (("heldout", "h"), ("dev", "d")):
        source = HERE / "data" / "src" / f"{name}.txt"
        if source.exists():
            count = convert(source, HERE / "data" / f"{name}.jsonl", prefix)
            print(f"{name}: {count} cases")


if __name__ == "__main__":
    main()
