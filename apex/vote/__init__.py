"""The vote core: comparable answers and their weighted tally, pure and shared.

Both the fusion cycle (``graph/``) and the evidence it yields (``evidence/``) read answers and
votes through this package and nothing else, so live synthesis, the evidence it records and the
replay that measures it run the same arithmetic.
"""

from apex.vote.extract import (
    count_options,
    extract,
    extract_choice,
    extract_number,
    normalize_text,
    options_of,
    same_answer,
)
from apex.vote.tally import (
    DEFAULT_MIN_PEERS,
    peer_agreement,
    plurality,
    tie_break,
    top_answers,
    vote_distribution,
    vote_scores,
)

__all__ = [
    "DEFAULT_MIN_PEERS",
    "count_options",
    "extract",
    "extract_choice",
    "extract_number",
    "normalize_text",
    "options_of",
    "peer_agreement",
    "plurality",
    "same_answer",
    "tie_break",
    "top_answers",
    "vote_distribution",
    "vote_scores",
]
