# The panel's stack fixture, for every test module here (it lives beside the tests it was written for).
from tests.unit.steps.panel.test_panel import panel_aws  # noqa: F401
