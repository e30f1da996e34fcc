"""cxloop's Alembic migrations: env.py, the revision template and versions/<id>.py.

Run through models.store.schema and `cxloop db`, never through an alembic.ini: the script
location is this package, so an installed cxloop carries its own migrations.
"""
