"""The SQL stores (models.store) on SQLite and PostgreSQL, and the commands that only read
or write SQL (db, report): nothing else is started, no broker, worker, SMTP server or browser.
Databases come from tests/conftest.py, test data from tests/factories.py."""
