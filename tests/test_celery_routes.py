from evalplatform.celery import app


def route_of(task_name: str) -> str:
    app.loader.import_default_modules()
    return app.amqp.router.route({}, task_name)["queue"].name


def test_it_sends_judging_to_the_api_queue_and_training_to_the_train_queue():
    assert route_of("inference.tasks.judge_round") == "api"
    assert route_of("inference.training.tasks.train_model") == "train"
    assert route_of("inference.experiments.tasks.run_experiment") == "train"


def test_it_runs_imports_and_report_builds_on_the_default_queue():
    assert route_of("annotation.tasks.run_import_job") == "default"
    assert route_of("annotation.tasks.build_report") == "default"
    assert route_of("inference.tasks.sweep_runs") == "default"


def test_every_task_keeps_the_name_it_was_queued_under_before_the_pipelines_moved():
    app.loader.import_default_modules()
    ours = {name for name in app.tasks if name.startswith(("annotation.", "inference."))}

    # Messages already in a queue name their task: renaming one would strand them.
    assert ours == {
        "annotation.tasks.run_import_job",
        "annotation.tasks.build_report",
        "inference.tasks.judge_round",
        "inference.generation_tasks.generate_responses",
        "inference.training.tasks.train_model",
        "inference.tasks.sweep_runs",
        # Added since, under their names for good.
        "inference.experiments.tasks.run_experiment",
        "inference.dialogue.tasks.dialogue_reply",
    }
    assert app.tasks["inference.tasks.judge_round"].__module__ == "inference.judge.tasks"
