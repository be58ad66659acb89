"""Round reports built once per state of their data: `services` finds or starts the build a
page or the API needs (inline for a small round, on a Celery worker for a large one) or the
command's (built in its process), `tasks` receives a build's id on a worker, `worker` computes
the report and stores its sections and files, `files` reads a finished build's files back."""
