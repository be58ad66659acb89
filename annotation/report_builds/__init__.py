"""Round reports built once per state of their data: `services` finds or starts the build a
page needs (inline for a small round, on a Celery worker for a large one), `tasks` receives a
build's id on a worker, `worker` computes the report and stores its sections and files."""
