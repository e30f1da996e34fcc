"""The base of the errors the wire contract and the embedded broker raise. streams/ imports
nothing of cxloop's, so this base stands on its own."""

from __future__ import annotations


class StreamsError(Exception):
    """The broker or a topic could not be set up."""
