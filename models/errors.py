"""The base of every error cxloop raises on purpose.

Errors are named <Subject><Problem>Error (TaskClosedError, TemplateUnknownError) or, for a
family, <Subject>Error (RulesError); each is defined next to the code that raises it and
derives from CxloopError (models, agents) or StreamsError (the wire contract). Where callers
already catch a built-in kind (ValueError, LookupError), the error is that kind too.
"""

from __future__ import annotations


class CxloopError(Exception):
    """Something cxloop refuses or cannot do, said in its own words."""
