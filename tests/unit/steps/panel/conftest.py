"""The panel's fixture for every test module here (test_panel.py defines it)."""

from tests.unit.steps.panel.test_panel import panel_aws  # noqa: F401
