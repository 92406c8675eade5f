"""Queue backends: a small protocol, the durable `sql` backend and (scale-out) Celery."""
