import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "evalplatform.settings")

app = Celery("evalplatform")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each app's tasks.py, each machine-side pipeline's, and the sweeper of lost runs (inference).
app.autodiscover_tasks(
    [
        "annotation.import_jobs",
        "annotation.report_builds",
        "inference",
        "inference.generation",
        "inference.judge",
        "inference.training",
        "inference.experiments",
        "inference.dialogue",
    ]
)


@app.on_after_configure.connect
def _create_filesystem_broker_folders(sender: Celery, **_: object) -> None:
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        folder = (sender.conf.broker_transport_options or {}).get(key)
        if folder:
            os.makedirs(folder, exist_ok=True)
