"""Stream agents, web views and the CLI: the glue between topics, SQL and SMTP."""
