"""Fixtures: a fake Bitrix24 portal on 127.0.0.1 and a client with its own (unshared) rate limiter.

A test whose client broke one of the portal's documented rules (more than 50 commands in a batch,
a ``$result`` reference to no earlier command, too many findbycomm values) fails at teardown, even
when the per-lead outcomes it checks happen to look right."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.fakes.bitrix24_server import Bitrix24Portal
from tests.support.bitrix24 import CLASSIC, SIMPLE


@pytest.fixture
def portal_factory() -> Iterator[Callable[..., Bitrix24Portal]]:
    started: list[Bitrix24Portal] = []

    def start(**kwargs) -> Bitrix24Portal:
        portal = Bitrix24Portal(**kwargs).__enter__()
        started.append(portal)
        return portal

    yield start
    for portal in started:
        portal.__exit__(None, None, None)
    broken = [rule for portal in started for rule in portal.violations]
    assert not broken, f"the client broke Bitrix24's rules: {broken}"


@pytest.fixture
def classic_portal(portal_factory) -> Bitrix24Portal:
    return portal_factory(mode=CLASSIC)


@pytest.fixture
def simple_portal(portal_factory) -> Bitrix24Portal:
    return portal_factory(mode=SIMPLE)


@pytest.fixture
def salon():
    """The business every unit test runs (tests/support/salon.yaml)."""
    from leadflow.business import load_business_config
    from tests.support.aws import SALON

    return load_business_config(SALON)
