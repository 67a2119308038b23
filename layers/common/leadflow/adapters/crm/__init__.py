"""Where leads are recorded: Bitrix24 when BITRIX24_WEBHOOK_URL is set, else the built-in CRM
(the leads table itself). Which one a function gets is decided in ``leadflow.wiring.make_crm``;
this package only names the interface (``base``) and holds the adapters."""

from leadflow.adapters.crm.base import Crm, CrmUnavailable, Pushed
from leadflow.adapters.crm.builtin import BuiltinCrm

__all__ = ["BuiltinCrm", "Crm", "CrmUnavailable", "Pushed"]
