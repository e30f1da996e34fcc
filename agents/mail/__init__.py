"""E-mail: sending through an SMTP relay and the embedded mail server that keeps every message."""
