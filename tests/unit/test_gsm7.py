from geo_engine.decision.gsm7 import sms_length


def test_gsm7_single_and_multi_segment() -> None:
    assert sms_length("").segments == 0
    assert sms_length("a" * 160) == sms_length("a" * 160)
    assert (sms_length("a" * 160).encoding, sms_length("a" * 160).segments) == ("gsm7", 1)
    assert sms_length("a" * 161).segments == 2
    assert sms_length("a" * 306).segments == 2
    assert sms_length("a" * 307).segments == 3


def test_extended_characters_take_two_septets() -> None:
    s = sms_length("€" * 80)
    assert (s.encoding, s.units, s.segments) == ("gsm7", 160, 1)
    assert sms_length("€" * 81).segments == 2


def test_french_accents_in_gsm7_but_not_all() -> None:
    assert sms_length("Café à Opéra, -10% è ù").encoding == "gsm7"
    s = sms_length("Noël ç")  # ë and lower-case ç are not in GSM 03.38
    assert s.encoding == "ucs2"
    assert sms_length("ê" * 70).segments == 1
    assert sms_length("ê" * 71).segments == 2
    assert sms_length("😀" * 35).units == 70
