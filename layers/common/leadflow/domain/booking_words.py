"""What the assistant says about real slots: the offer («Есть окна в субботу, 5 декабря: 13:00,
14:30 (Ольга), 16:00. Какое удобно?») and the confirmation of a booking (day, time, master,
service, price, the branch's address and directions, prepayment link, payment wording)."""

from __future__ import annotations

from datetime import date, datetime
from urllib.parse import quote

from leadflow.business import BusinessConfig
from leadflow.domain.models import Lead
from leadflow.domain.replies import accusative
from leadflow.domain.schedule import Offer, Slot
from leadflow.domain.wording import (
    capitalised,
    describe_day,
    describe_when,
    parse_price,
    price_text,
    service_name,
)


def master_name(business: BusinessConfig, staff_id: str | None) -> str | None:
    member = business.staff_member(staff_id)
    return member.name if member else None


def slot_times(slots: list[Slot], lead: Lead, business: BusinessConfig) -> str:
    """«13:00, 14:30 (Ольга), 16:00»: a master's name where the client named her or the business wants it."""
    said = []
    for slot in slots:
        text = f"{slot.start:%H:%M}"
        if business.booking.show_master or (lead.master and slot.master == lead.master):
            name = master_name(business, slot.master)
            text += f" ({name})" if name else ""
        said.append(text)
    return ", ".join(said)


def offer_text(
    offer: Offer | None, lead: Lead, business: BusinessConfig, today: date, wished: date | None
) -> str:
    texts = business.messages.in_language(lead.language)
    if offer is None:
        return texts.slots_none
    day = describe_day(offer.day, today, lead.language)
    times = slot_times(offer.slots, lead, business)
    if offer.on_wished_day or wished is None or wished < today:
        return texts.slots_offer.format(day=day, times=times)
    wished_said = capitalised(describe_day(wished, today, lead.language))
    return texts.slots_other_day.format(wished=wished_said, day=day, times=times)


def visit_place(business: BusinessConfig, lead: Lead, master: str | None) -> tuple[str | None, str | None]:
    """(address, directions) of the visit: the lead's (or the master's) branch, else the business's."""
    member = business.staff_member(master)
    branch = business.branch(lead.branch) or business.branch(member.branch if member else None)
    if branch is None and len(business.branches) == 1:
        branch = business.branches[0]
    knowledge = business.knowledge
    address = (branch.address if branch else None) or knowledge.fact("address", lead.language)
    directions = (branch.directions if branch else None) or knowledge.fact("directions", lead.language)
    return address, directions


def branch_address(business: BusinessConfig, lead: Lead, master: str | None) -> str | None:
    """The visit's address and how to get there, in one sentence."""
    address, directions = visit_place(business, lead, master)
    if not address:
        return None
    return (
        f"{address.rstrip('.')}, {directions[:1].lower()}{directions[1:].rstrip('.')}"
        if directions
        else address.rstrip(".")
    )


def prepayment_link(business: BusinessConfig, lead: Lead) -> str | None:
    template = business.booking.prepayment_url
    service = business.service(lead.service)
    price = parse_price(service.price) if service else None
    if not template:
        return None
    amount = price.low if price else ""
    return template.replace("{amount}", str(amount)).replace("{lead_id}", quote(lead.lead_id))


def _said_service(lead: Lead, business: BusinessConfig) -> str:
    service = business.service(lead.service)
    if service is None:
        return "визит" if lead.language != "en" else "a visit"
    return service_name(service, "en") if lead.language == "en" else accusative(service.name)


def _said_when(lead: Lead, business: BusinessConfig, today: date) -> str:
    assert lead.appointment_at is not None
    local: datetime = lead.appointment_at.astimezone(business.tz)
    return describe_when(local.date(), f"{local:%H:%M}", None, today, lead.language, with_date=True)


def cancellation_text(lead: Lead, business: BusinessConfig, today: date) -> str | None:
    """«Ваша запись на окрашивание волос в субботу, 5 декабря, в 14:30 отменена. …»: a visit
    cancelled in the CRM or the booking system, told to the client; None without an appointment."""
    if lead.appointment_at is None:
        return None
    texts = business.messages.in_language(lead.language)
    return texts.booking_cancelled.format(
        service=_said_service(lead, business), when=_said_when(lead, business, today)
    )


def confirmation_text(
    lead: Lead, business: BusinessConfig, today: date, *, calendar_url: str | None = None
) -> str | None:
    """«Готово! Записали вас на окрашивание волос в субботу, 5 декабря, в 14:30, мастер — Ольга.
    Стоимость — 4 500 ₽. Адрес: …. Предоплата: …»; None without an appointment."""
    if lead.appointment_at is None:
        return None
    texts = business.messages.in_language(lead.language)
    when = _said_when(lead, business, today)
    service = business.service(lead.service)
    said_service = _said_service(lead, business)
    name = master_name(business, lead.booked_master or lead.owner)
    master_part = texts.booked_master.format(master=name) if name and lead.booked_master else ""
    parts = [texts.booked.format(service=said_service, when=when, master_part=master_part)]
    price = price_text(service.price, lead.language) if service else None
    if price:
        parts.append(texts.booked_price.format(price=price))
    address = branch_address(business, lead, lead.booked_master)
    if address:
        parts.append(texts.booked_address.format(address=address))
    payment = business.knowledge.fact("payment", lead.language)
    if payment:
        parts.append(payment.strip())
    link = prepayment_link(business, lead)
    if link:
        parts.append(texts.booked_payment.format(url=link))
    if calendar_url:
        parts.append(texts.booked_calendar.format(url=calendar_url))
    return " ".join(parts)
