"""The Faust app, settings, topic declarations and record schemas: cxloop's wire contract."""
