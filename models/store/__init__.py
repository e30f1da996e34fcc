"""SQL: engines, schema and migrations, tables, and one application service per concept."""
