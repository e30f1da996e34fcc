"""Pure domain rules: scoring, eligibility, programmes, SLA calendars, statistics.

No SQL, web, faust or aiokafka here; models.store holds the SQL application services."""
