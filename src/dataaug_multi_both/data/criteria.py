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


# More of our own paraphrases: `augmentation.criterion_paraphrase_prob` picks one of these
# instead of the description above for a training example.
CRITERION_PARAPHRASES: dict[str, tuple[str, ...]] = {
    "DEPRESSED_MOOD": (
        "Feels down, sad or empty nearly every day; hopelessness or crying.",
        "Low mood for most of the day: sadness, emptiness, tearfulness.",
    ),
    "ANHEDONIA": (
        "No longer enjoys things or cares about activities that were fun before.",
        "Loss of interest or pleasure in almost all usual activities.",
    ),
    "APPETITE_CHANGE": (
        "Eating far less or far more than usual, or a big weight loss or gain.",
        "Marked appetite change or weight change without trying.",
    ),
    "SLEEP_ISSUES": (
        "Trouble sleeping, waking up in the night, or sleeping much too much.",
        "Insomnia or hypersomnia nearly every night.",
    ),
    "PSYCHOMOTOR": (
        "Restlessness and agitation, or being slowed down in movement and speech.",
        "Visibly agitated or slowed body movements and speech.",
    ),
    "FATIGUE": (
        "Tired and drained of energy almost every day; everything is exhausting.",
        "Constant lack of energy or tiredness, even after small efforts.",
    ),
    "WORTHLESSNESS": (
        "Feeling worthless, or blaming oneself with excessive guilt.",
        "A sense of being useless or guilty far beyond reason.",
    ),
    "COGNITIVE_ISSUES": (
        "Cannot focus or think clearly, or struggles to make decisions.",
        "Poor concentration, slowed thinking or indecision nearly every day.",
    ),
    "SUICIDAL_THOUGHTS": (
        "Thinks about death or dying, wants to die, or has planned or tried suicide.",
        "Suicidal thoughts, plans or attempts, or repeated thoughts of death.",
    ),
}


def criteria_for(num_classes: int) -> tuple[str, ...]:
    """The first `num_classes` symptoms, in model order."""
    return SYMPTOMS[:num_classes]
