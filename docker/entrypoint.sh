#!/bin/sh
# Entry point of the evalplatform image. The first argument names the role:
#   web             apply migrations, then serve evalplatform.wsgi with gunicorn on :8000
#                   (more gunicorn flags: the remaining arguments, or GUNICORN_CMD_ARGS;
#                   worker processes: WEB_CONCURRENCY, default 3, each with WEB_THREADS
#                   threads, default 4: gthread, since a request mostly waits on PostgreSQL)
#   worker ARGS...  celery -A evalplatform worker ARGS... (queues, concurrency, pool, name)
#   anything else   run as given, e.g. `python manage.py createsuperuser`
set -eu

role="${1:-web}"
[ "$#" -gt 0 ] && shift

case "$role" in
    web)
        python manage.py migrate --noinput
        exec gunicorn evalplatform.wsgi:application \
            --bind "${BIND:-0.0.0.0:8000}" \
            --workers "${WEB_CONCURRENCY:-3}" \
            --worker-class "${WEB_WORKER_CLASS:-gthread}" \
            --threads "${WEB_THREADS:-4}" \
            --access-logfile - \
            "$@"
        ;;
    worker)
        exec celery -A evalplatform worker --loglevel "${LOG_LEVEL:-INFO}" "$@"
        ;;
    *)
        exec "$role" "$@"
        ;;
esac
