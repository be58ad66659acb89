"""round_quality: gold from a file, attention checks, rules, and clear errors."""

import io

import pytest
from django.core.management import CommandError, call_command

from annotation.models import Item
from tests.factories import make_round

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("round_quality", *args, stdout=out)
    return out.getvalue()


def test_it_marks_gold_adds_checks_and_sets_the_rules(tmp_path):
    round_ = make_round(prompts=6)
    first, second = [i.prompt.external_id for i in round_.items.order_by("position")[:2]]
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        f'{{"prompt_id": "{first}", "answer": "candidate"}}\n'
        f'{{"prompt_id": "{second}", "answer": "Tie"}}\n'
    )
    out = run(
        str(round_.pk),
        *("--gold", str(gold), "--attention-checks", "2", "--check-rate", "0.25"),
        *("--min-gold-accuracy", "70%", "--max-failed-checks", "1", "--apply-rules"),
    )
    assert "2 gold items marked." in out and "2 attention checks added." in out
    assert "check rate 0.25" in out
    round_.refresh_from_db()
    assert (round_.exclude_gold_accuracy_below, round_.exclude_failed_checks_at_least) == (0.7, 1)
    assert Item.objects.filter(check_kind="gold").count() == 2

    run(str(round_.pk), "--check-rate", "0.1")  # Only what is given changes.
    round_.refresh_from_db()
    assert (round_.check_rate, round_.exclude_failed_checks_at_least) == (0.1, 1)


def test_it_names_the_bad_line_and_changes_nothing(tmp_path):
    round_ = make_round(prompts=3)
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"prompt_id": "0", "answer": "tie"}\n')
    with pytest.raises(CommandError, match="only 2 prompts of the round have none yet"):
        run(str(round_.pk), "--gold", str(gold), "--attention-checks", "5")
    gold.write_text('{"prompt_id": "0", "answer": "tie"}\n{"answer": "tie"}\n')
    with pytest.raises(CommandError, match=r"gold\.jsonl, line 2: field 'prompt_id': missing"):
        run(str(round_.pk), "--gold", str(gold))
    assert not Item.objects.exclude(check_kind="").exists()
    with pytest.raises(CommandError, match="No round 999"):
        run("999")
