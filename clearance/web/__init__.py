"""HTTP(S) serving shared by every web endpoint: one hardened server (:mod:`clearance.web.server`)."""

from clearance.web.server import RunningWebServer, TlsPem, WebLimits, serving, start

__all__ = ["RunningWebServer", "TlsPem", "WebLimits", "serving", "start"]
