"""What an inbound SMS asks for (geo_engine/delivery/keywords.py), pure: Twilio's keywords and
the French ones, any case or accent; an opt-out on the whole text or its first word, an opt-in
only on the whole text."""

from __future__ import annotations

import pytest

from geo_engine.delivery.keywords import HELP, OPT_IN, OPT_OUT, SOURCE, classify, normalise


@pytest.mark.parametrize(
    ("body", "action", "keyword"),
    [
        ("STOP", "opt_out", "STOP"),
        (" stop\n", "opt_out", "STOP"),
        ("Stop.", "opt_out", "STOP"),
        ("stopall", "opt_out", "STOPALL"),
        ("Unsubscribe", "opt_out", "UNSUBSCRIBE"),
        ("cancel", "opt_out", "CANCEL"),
        ("END", "opt_out", "END"),
        ("quit", "opt_out", "QUIT"),
        ("ARRÊT", "opt_out", "ARRET"),
        ("arrêt !", "opt_out", "ARRET"),
        ("Stop SMS", "opt_out", "STOP SMS"),
        ("DÉSABONNER", "opt_out", "DESABONNER"),
        ("désinscription", "opt_out", "DESINSCRIPTION"),
        ("Stop merci", "opt_out", "STOP"),  # the first word, as carriers match it
        ("START", "opt_in", "START"),
        ("Yes!", "opt_in", "YES"),
        ("unstop", "opt_in", "UNSTOP"),
        ("Start now", "none", None),  # an opt-in must be the whole message
        ("yes but stop", "none", None),
        ("Je veux stopper", "none", None),
        ("stopper", "none", None),
        ("", "none", None),
        ("help", "help", "HELP"),
    ],
)
def test_keywords(body: str, action: str, keyword: str | None) -> None:
    assert classify(body) == (action, keyword)


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ("  Arrêt ! ", "ARRET"),
        ("désinscription", "DESINSCRIPTION"),
        ("stop\n\tsms", "STOP SMS"),
        ("Stop-All", "STOP ALL"),
        ("ÉÈÊË àç", "EEEE AC"),
        ("", ""),
    ],
)
def test_normalise_drops_case_accents_punctuation_and_extra_spaces(body: str, text: str) -> None:
    assert normalise(body) == text


def test_keyword_sets_are_normalised_and_disjoint() -> None:
    """A keyword that normalisation changes could never match."""
    for keyword in OPT_OUT | OPT_IN | HELP:
        assert normalise(keyword) == keyword
    assert not (OPT_OUT & OPT_IN or OPT_OUT & HELP or OPT_IN & HELP)


@pytest.mark.parametrize("keyword", sorted(OPT_OUT))
def test_every_opt_out_matches_alone_and_as_the_first_word(keyword: str) -> None:
    assert classify(keyword.lower()) == ("opt_out", keyword)
    if " " not in keyword:
        assert classify(f"{keyword} merci") == ("opt_out", keyword)


@pytest.mark.parametrize("keyword", sorted(OPT_IN))
def test_an_opt_in_must_be_the_whole_message(keyword: str) -> None:
    assert classify(keyword.lower()) == ("opt_in", keyword)
    assert classify(f"{keyword} please") == ("none", None)


def test_each_consent_action_has_its_source() -> None:
    assert dict(SOURCE) == {"opt_out": "sms_inbound_stop", "opt_in": "sms_inbound_start"}
