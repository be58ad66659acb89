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


def wrong_answers(answers: dict[str, str]) -> list[Question]:
    """The questions answered wrongly (or not at all)."""
    return [question for question in QUESTIONS if answers.get(question.key) != question.answer]
