"""The comprehension check before a study: the instructions' key points, two attempts.

Prolific's policy lets a study screen participants out on a comprehension check only when
they get a second attempt; a worker who fails both is sent back with the study's return URL
and counted, never silently dropped.
"""

from dataclasses import dataclass

ATTEMPTS = 2


@dataclass(frozen=True)
class Question:
    key: str
    text: str
    options: tuple[tuple[str, str], ...]  # (value, label)
    answer: str
    why: str


QUESTIONS = (
    Question(
        key="task",
        text="What will you do on each page of this study?",
        options=(
            ("compare", "Read one question and two answers, and say which answer is better"),
            ("write", "Write my own answer to the question"),
            ("fix", "Correct the spelling of the answers"),
        ),
        answer="compare",
        why="Each page shows one question and two answers; you say which answer is better.",
    ),
    Question(
        key="neither",
        text="When do you choose “Neither is significantly better”?",
        options=(
            ("never", "Never: one answer is always better"),
            ("similar", "When the two answers are about equally good (or equally bad)"),
            ("unsure", "Whenever I have not read both answers"),
        ),
        answer="similar",
        why="Choose it when neither answer is clearly better than the other; read both first.",
    ),
    Question(
        key="empathy",
        text="Whose needs should you judge the answers by?",
        options=(
            ("asker", "Those of the person who wrote the question: imagine it is you"),
            ("length", "None: the longer answer is the better one"),
            ("ai", "The AI assistant's"),
        ),
        answer="asker",
        why="Imagine that you wrote the question, and judge how well each answer would help you.",
    ),
)


@dataclass(frozen=True)
class PracticeItem:
    """A practice comparison shown after the questions, answered with feedback, not recorded."""

    question: str
    answer_a: str
    answer_b: str
    expected: str  # A, B or N as shown
    feedback: str


PRACTICE = (
    PracticeItem(
        question="What is the capital of Australia?",
        answer_a="The capital of Australia is Sydney, its largest city.",
        answer_b="The capital of Australia is Canberra. Sydney is its largest city, which is "
        "why it is often mistaken for the capital.",
        expected="B",
        feedback="Answer B is significantly better: it is correct, and Answer A is wrong.",
    ),
    PracticeItem(
        question="Give me a word that means 'happy'.",
        answer_a="Joyful.",
        answer_b="Cheerful.",
        expected="N",
        feedback="Neither is significantly better: both give a correct word, equally briefly.",
    ),
)


def wrong_answers(answers: dict[str, str]) -> list[Question]:
    """The questions answered wrongly (or not at all)."""
    return [question for question in QUESTIONS if answers.get(question.key) != question.answer]
