"""The stand-in HTTP server every fake API here is built on: it lives in the local stack's package
(leadflow_local.standin_http) because `leadflow demo` runs some of these stand-ins too."""

from leadflow_local.standin_http import FakeServer, Request, Response, Route, Upload

__all__ = ["FakeServer", "Request", "Response", "Route", "Upload"]
