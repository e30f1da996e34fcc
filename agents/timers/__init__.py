"""Timers every worker runs: due surveys, outbox relays, the escalation ladder, webhooks."""
