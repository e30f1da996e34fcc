"""Sink tables and pure domain logic. Imports neither faust nor aiokafka."""
