"""A realistic stream of leads for the end-to-end benchmark and the fault scenario.

Russian texts from templates: bookings (service, day, time, sometimes a name and a phone),
price questions, spam. Channels in the proportions a salon sees them. Arrival times follow a
Saturday morning: quiet at opening, a rush around 10–12, a tail after lunch — compressed into
the run's duration so the stack meets bursts, not a steady trickle.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

from leadflow_local.webhooks import Delivery, Webhooks

CHANNEL_WEIGHTS = {
    "telegram": 24, "whatsapp": 22, "instagram": 20, "vk": 8, "form": 14, "call": 7, "sms": 5,
}  # fmt: skip
NAMES = ["Ирина", "Ольга", "Катя", "Светлана", "Марина", "Анастасия", "Дарья", "Юлия", "Наталья",
         "Елена", "Алексей", "Дмитрий", "Сергей", "Павел", "Татьяна", "Вера", "Ксения", "Полина"]  # fmt: skip
SERVICES = ["маникюр", "педикюр", "стрижку", "окрашивание корней", "гель-лак", "коррекцию бровей",
            "наращивание ресниц", "чистку лица", "массаж спины", "мужскую стрижку", "чистку зубов",
            "консультацию стоматолога", "шиномонтаж", "замену масла"]  # fmt: skip
DAYS = ["сегодня", "завтра", "в понедельник", "во вторник", "в субботу", "в воскресенье", "послезавтра"]
TIMES = ["в 10:00", "в 12:30", "к 15", "после 18", "утром", "вечером", "в обед", "на 11"]
BOOKINGS = [
    "Здравствуйте! Хочу записаться на {service} {day} {time}",
    "Добрый день, можно на {service} {day} {time}? Меня зовут {name}",
    "Запишите пожалуйста на {service} {day}, {name}, {phone}",
    "{name}. Нужна запись на {service} {day} {time}, мой номер {phone}",
    "Есть окошко {day} {time} на {service}?",
    "здравствуйте хотела бы на {service} {day} {time} тел {phone}",
]
QUESTIONS = [
    "Сколько стоит {service}?",
    "Добрый вечер, подскажите цену на {service}",
    "А вы работаете {day}? Интересует {service}",
    "Какие мастера делают {service}? И сколько по времени?",
    "Где вы находитесь? Есть парковка?",
]
SPAM = [
    "Продвижение вашего салона в ТОП Яндекса! Первые клиенты уже через неделю",
    "Заработок от 100 000 в месяц без вложений, пишите в личку",
    "Предлагаем базу клиентов вашего города, недорого",
    "Кредит наличными за 5 минут, одобрение 99%",
]
KIND_WEIGHTS = {"booking": 62, "question": 28, "spam": 10}


@dataclass(frozen=True)
class Lead:
    """One lead to replay: the channel-side identity (to find its conversation later) and its text."""

    seq: int
    channel: str
    kind: str
    text: str
    name: str
    phone: str
    user_id: str
    offset_s: float  # when it arrives, from the start of the replay


def saturday_offsets(n: int, duration_s: float, rng: random.Random) -> list[float]:
    """n arrival offsets over duration_s with a Saturday-morning shape: a peak at 40 % of the span."""

    def intensity(x: float) -> float:  # x in [0, 1): relative lead rate
        return 0.25 + math.exp(-(((x - 0.4) / 0.12) ** 2)) + 0.35 * math.exp(-(((x - 0.75) / 0.1) ** 2))

    # Rejection sampling of a non-homogeneous Poisson process, conditioned on n arrivals.
    peak = max(intensity(i / 1000) for i in range(1000))
    offsets: list[float] = []
    while len(offsets) < n:
        x = rng.random()
        if rng.random() * peak <= intensity(x):
            offsets.append(x * duration_s)
    return sorted(offsets)


def _phone(rng: random.Random) -> str:
    digits = f"9{rng.randint(10, 99)}{rng.randint(1_000_000, 9_999_999)}"
    return rng.choice(
        [f"8{digits}", f"+7{digits}", f"+7 {digits[:3]} {digits[3:6]}-{digits[6:8]}-{digits[8:]}"]
    )


def _text(kind: str, rng: random.Random, name: str, phone: str) -> str:
    template = rng.choice({"booking": BOOKINGS, "question": QUESTIONS, "spam": SPAM}[kind])
    return template.format(
        service=rng.choice(SERVICES), day=rng.choice(DAYS), time=rng.choice(TIMES), name=name, phone=phone
    )


def steady_offsets(rate: float, duration_s: float, rng: random.Random) -> list[float]:
    """Arrivals of a Poisson process at `rate` leads/s over duration_s: a steady offered load
    with the bursts a steady load still has."""
    offsets: list[float] = []
    at = rng.expovariate(rate)
    while at < duration_s:
        offsets.append(at)
        at += rng.expovariate(rate)
    return offsets


def make_leads(n: int, duration_s: float, seed: int = 7) -> list[Lead]:
    """n leads over duration_s, shaped like a Saturday morning."""
    rng = random.Random(seed)
    return _leads(saturday_offsets(n, duration_s, rng), rng)


def steady_leads(rate: float, duration_s: float, seed: int = 7) -> list[Lead]:
    """Leads offered at `rate` per second (Poisson arrivals) for duration_s."""
    rng = random.Random(seed)
    return _leads(steady_offsets(rate, duration_s, rng), rng)


def _leads(offsets: list[float], rng: random.Random) -> list[Lead]:
    n = len(offsets)
    channels = rng.choices(list(CHANNEL_WEIGHTS), weights=list(CHANNEL_WEIGHTS.values()), k=n)
    kinds = rng.choices(list(KIND_WEIGHTS), weights=list(KIND_WEIGHTS.values()), k=n)
    leads = []
    for seq, (offset, channel, kind) in enumerate(zip(offsets, channels, kinds, strict=True)):
        name, phone = rng.choice(NAMES), _phone(rng)
        # Unique per lead, so each one opens its own lead (no joining an open conversation).
        user_id = {
            "telegram": str(600_000_000 + seq), "vk": str(300_000_000 + seq),
            "instagram": str(17_841_400_000_000_000 + seq), "whatsapp": f"+7913{seq:07d}",
            "form": f"+7923{seq:07d}", "call": f"+7983{seq:07d}", "sms": f"+7902{seq:07d}",
        }[channel]  # fmt: skip
        leads.append(Lead(seq, channel, kind, _text(kind, rng, name, phone), name, phone, user_id, offset))
    return leads


def delivery(hooks: Webhooks, lead: Lead, at: datetime) -> Delivery:
    """The webhook a platform would send for this lead."""
    if lead.channel == "telegram":
        return hooks.telegram_text(
            int(lead.user_id), lead.name, lead.text, at, update_id=10_000_000 + lead.seq
        )
    if lead.channel == "whatsapp":
        return hooks.whatsapp_text(lead.user_id, lead.name, lead.text, at)
    if lead.channel == "instagram":
        return hooks.instagram_text(lead.user_id, lead.text, at)
    if lead.channel == "vk":
        return hooks.vk_message(int(lead.user_id), lead.text, at)
    if lead.channel == "form":
        return hooks.tilda_form({"Name": lead.name, "Phone": lead.user_id, "Комментарий": lead.text})
    if lead.channel == "call":
        return hooks.missed_call(lead.user_id, "+73912000000", at)
    if lead.channel == "sms":
        return hooks.smsc_inbound(lead.user_id, lead.text, at)
    raise ValueError(lead.channel)
