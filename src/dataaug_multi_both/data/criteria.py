"""The nine DSM-5 major-depression criteria as ReDSM5 names them, in a fixed order.

The order is part of the model: criterion index i is the i-th entry of `SYMPTOMS`, and
`model.num_criteria_classes = n` trains on the first n.
"""

from __future__ import annotations

SYMPTOMS: tuple[str, ...] = (
    "DEPRESSED_MOOD",
    "ANHEDONIA",
    "APPETITE_CHANGE",
    "SLEEP_ISSUES",
    "PSYCHOMOTOR",
    "FATIGUE",
    "WORTHLESSNESS",
    "COGNITIVE_ISSUES",
    "SUICIDAL_THOUGHTS",
)

# Annotated in ReDSM5 but not a criterion: counted, never trained on.
SPECIAL_CASE = "SPECIAL_CASE"
KNOWN_LABELS = frozenset(SYMPTOMS) | {SPECIAL_CASE}

# Our own short paraphrases of DSM-5 criterion A1..A9, used as the first segment of each input.
CRITERION_DESCRIPTIONS: dict[str, str] = {
    "DEPRESSED_MOOD": "Depressed mood most of the day: feeling sad, empty, hopeless or tearful.",
    "ANHEDONIA": "Markedly lost interest or pleasure in activities that used to be enjoyable.",
    "APPETITE_CHANGE": "Significant change in appetite or weight: eating much less or much more.",
    "SLEEP_ISSUES": "Sleep disturbance: insomnia, waking at night, or sleeping far too much.",
    "PSYCHOMOTOR": "Psychomotor agitation or retardation: restless, or moving and speaking slowly.",
    "FATIGUE": "Fatigue or loss of energy nearly every day; even small tasks feel exhausting.",
    "WORTHLESSNESS": "Feelings of worthlessness or excessive, inappropriate guilt and self-blame.",
    "COGNITIVE_ISSUES": "Diminished ability to think or concentrate, or indecisiveness.",
    "SUICIDAL_THOUGHTS": "Recurrent thoughts of death, suicidal ideation, a plan or an attempt.",
}


def criteria_for(num_classes: int) -> tuple[str, ...]:
    """The first `num_classes` symptoms, in model order."""
    return SYMPTOMS[:num_classes]
