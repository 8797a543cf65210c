"""The packed per-customer records (consents, attributes, category scores in one bytes object)
read back exactly what was written, whether the customer has a slot or not."""

from __future__ import annotations

from geo_engine.profile.attributes import Attributes, Consent, ConsentPurpose, ConsentStatus, Sex
from geo_engine.profile.config import ProfileConfig
from geo_engine.profile.state import ProfileState

GRANTED = Consent(ConsentStatus.GRANTED, 1_700_000_000.25, "app")
REVOKED = Consent(ConsentStatus.REVOKED, 1_700_000_100.5, "reaction")
FULL = Attributes("Zoé-Ana", "25-34", Sex.FEMALE, "3", 4, "75011", 1_700_000_000.5)


def test_records_round_trip_with_and_without_a_slot() -> None:
    st = ProfileState(ProfileConfig())
    consents = {ConsentPurpose.SMS: GRANTED, ConsentPurpose.PROFILING: REVOKED}
    st.set_consents("loose", consents)
    st.set_attributes("loose", FULL)
    assert st.consents["loose"] == consents and st.attributes["loose"] == FULL
    s = st.slot("loose")  # the record moves under the slot, unchanged
    st.categories[s] = {"shoes": 2.5, "tea": 1e-300, "bags": 2.5}
    assert st.consents["loose"] == consents and st.attributes["loose"] == FULL
    assert list(st.categories.get(s).items()) == [("shoes", 2.5), ("tea", 1e-300), ("bags", 2.5)]
    assert "loose" in st.objecting
    # empty and None fields stay what they were
    bare = Attributes(first_name="", household_size=0)
    st.set_attributes("bare", bare)
    st.set_consents("bare", {})
    assert st.attributes["bare"] == bare and st.consents["bare"] == {} and "bare" in st.consents
    assert st.attributes.get("nobody") is None and st.consents.get("nobody", {}) == {}
    assert dict(st.consents.items()).keys() == {"loose", "bare"}
    assert len(st.attributes) == 2 and sorted(st.attributes) == ["bare", "loose"]
    del st.consents["bare"]
    assert "bare" not in st.consents and st.attributes["bare"] == bare


def test_a_truncated_slot_keeps_its_declared_part() -> None:
    st = ProfileState(ProfileConfig())
    st.slot("a")
    n = len(st)
    s = st.slot("b")
    st.set_consents("b", {ConsentPurpose.PUSH: GRANTED})
    st.categories[s] = {"shoes": 1.0}
    st.truncate(n)
    assert "b" not in st.slots and st.consents["b"] == {ConsentPurpose.PUSH: GRANTED}
    s = st.slot("b")
    assert st.consents["b"] == {ConsentPurpose.PUSH: GRANTED} and st.categories.get(s) == {}


def test_rebase_scales_every_score() -> None:
    st = ProfileState(ProfileConfig())
    s = st.slot("a")
    st.categories[s] = {"shoes": 4.0, "tea": 2.0}
    st.categories.scale(0.5)
    assert st.categories[s] == {"shoes": 2.0, "tea": 1.0}


def test_one_purpose_status_reads_as_the_decoded_consents_say() -> None:
    st = ProfileState(ProfileConfig())
    st.set_consents("a", {ConsentPurpose.SMS: GRANTED, ConsentPurpose.LOCATION: REVOKED})
    st.set_consents("none", {})
    st.slot("a")
    for cid in ("a", "none", "nobody"):
        for purpose in ConsentPurpose:
            said = st.consents.get(cid, {}).get(purpose)
            assert st.consents.status(cid, purpose) == (None if said is None else said.status)
    assert st.consents.status("a", ConsentPurpose.LOCATION) is ConsentStatus.REVOKED
