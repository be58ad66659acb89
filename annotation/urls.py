from django.urls import path

from annotation.views import reports, research

urlpatterns = [
    path("healthz", research.healthz, name="healthz"),
    path("", research.home, name="home"),
    path("rounds/", research.rounds, name="rounds"),
    path("rounds/new/", research.round_new, name="round-new"),
    path("rounds/<int:round_id>/", research.round_detail, name="round-detail"),
    path("rounds/<int:round_id>/annotate/", research.round_annotate, name="round-annotate"),
    path("rounds/<int:round_id>/workers/", research.round_workers, name="round-workers"),
    path("rounds/<int:round_id>/workers.csv", research.round_workers_csv, name="round-workers-csv"),
    path("rounds/<int:round_id>/report/", reports.round_report_page, name="round-report"),
    path(
        "rounds/<int:round_id>/report/download/<str:name>",
        reports.round_report_download,
        name="round-report-download",
    ),
    path(
        "rounds/<int:round_id>/report/builds/<int:build_id>/<str:name>",
        reports.round_report_figure,
        name="round-report-figure",
    ),
    path("rounds/<int:round_id>/ratings/", reports.round_ratings_page, name="round-ratings"),
    path(
        "rounds/<int:round_id>/ratings/ratings.csv",
        reports.round_ratings_csv,
        name="round-ratings-csv",
    ),
    path(
        "rounds/<int:round_id>/ratings/figure.png",
        reports.round_ratings_figure,
        name="round-ratings-figure",
    ),
    path("imports/", research.imports, name="imports"),
]
