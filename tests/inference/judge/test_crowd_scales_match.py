"""People in an absolute round read the scale the judge reads: the same words, the same values."""

import pytest

from annotation.models import RATED_CHECK_ANSWERS, ROUND_SCALES
from annotation.scales import CROWD_SCALES
from inference.judge.prompts import DEFAULT_TEMPLATE, TEMPLATES


@pytest.mark.parametrize("scale", sorted(CROWD_SCALES))
def test_the_crowds_scale_is_the_judges_word_for_word(scale):
    crowd = CROWD_SCALES[scale]
    template = TEMPLATES[DEFAULT_TEMPLATE[scale]]
    message = template.messages(structured=False, question="Q?", answer="A.")[0]["content"]
    assert crowd.intro in message
    assert crowd.question in message
    numbered = scale == "helpfulness_1_6"
    for number, value in enumerate(crowd.values, start=1):
        line = f"{value.name}: {value.definition}"
        assert (f"{number}. {line}" if numbered else line) in message.splitlines()
    # What the crowd's rating stores is what the judge's verdict stores.
    assert tuple(value.value for value in crowd.values) == template.labels


def test_an_absolute_round_may_have_exactly_the_scales_people_are_shown():
    assert set(ROUND_SCALES) == set(CROWD_SCALES)


def test_a_check_item_may_expect_any_value_of_any_crowd_scale():
    values = {value.value for scale in CROWD_SCALES.values() for value in scale.values}
    assert set(RATED_CHECK_ANSWERS) == values
