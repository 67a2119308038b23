"""Booking systems behind one small interface: the built-in calendar (bookings in DynamoDB) and
YCLIENTS. Dikidi or Bitrix24 Booking would be a third class with the same five methods."""

from leadflow.adapters.booking.base import Booked, BookingSystem, BookingUnavailable, SlotTaken

__all__ = ["Booked", "BookingSystem", "BookingUnavailable", "SlotTaken"]
