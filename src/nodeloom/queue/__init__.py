"""Queue backends: one protocol (`base.QueueBackend`), the durable `sql` backend, Celery for scale-out, and an
in-memory one for tests and no-database runs; tests/contracts holds all of them to the same cases."""
