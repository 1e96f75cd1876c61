"""Evasion normalisation: each trick is undone, ordinary text survives."""

from __future__ import annotations

import pytest

from domain.normalize import normalize


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ｆｕｃｋ ｙｏｕ", "fuck you"),  # fullwidth (NFKC)
        ("ﬁne", "fine"),  # ligature (NFKC)
    ],
)
def test_nfkc(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["fu\u200bck", "f\u200cu\u200dck", "fu\u00adck", "\ufefffuck", "fu\u2060ck", "f\u202eu\u202cck"],
)
def test_invisible_characters_removed(raw: str) -> None:
    assert normalize(raw) == "fuck"


def test_zalgo_marks_on_latin_removed() -> None:
    assert normalize("f\u0338u\u0338c\u0338k\u0338") == "fuck"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("ѕһіt", "shit"),  # all Cyrillic look-alikes
        ("idiоt", "idiot"),  # one Cyrillic o inside a Latin word
        ("ΙDΙΟΤ", "IDIOT"),  # Greek capitals
    ],
)
def test_homoglyphs_mapped(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


def test_real_cyrillic_and_greek_text_left_alone() -> None:
    assert normalize("Привет, как дела?") == "Привет, как дела?"
    assert normalize("Καλημέρα σας") == "Καλημέρα σας"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sh1t", "shit"),
        ("b!tch", "bitch"),
        ("f@g", "fag"),
        ("$hit", "shit"),
        ("n00b", "noob"),
        ("l0s3r", "loser"),
        ("k1ll y0urs3lf", "kill yourself"),
        ("4ss", "ass"),
    ],
)
def test_leetspeak_inside_words(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I have 3 cats and 2 dogs",
        "Back in 2020 we came 3rd",
        "see you at 10pm",
        "covid19 and mp3 files",
        "@USER thanks!",
        "c++ and x = 5+3",
        "it costs $5",
        "Wow!! Great game!",
    ],
)
def test_numbers_mentions_and_punctuation_kept(text: str) -> None:
    assert normalize(text) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("fuuuuuck yooooou", "fuuck yoou"),
        ("soooo good", "soo good"),
        ("good book", "good book"),  # doubles are left alone
    ],
)
def test_repeated_letters_collapsed(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("f u c k you", "fuck you"),
        ("f.u.c.k off", "fuck off"),
        ("f-u-c-k", "fuck"),
        ("you are a b i t c h", "you are a bitch"),
        ("s_h_i_t", "shit"),
    ],
)
def test_spaced_letters_joined(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "text",
    [
        "I am a teacher and I like it",
        "e.g. this, i.e. that",
        "Plan A or plan B",
        "We met at 5 a.m. today",
    ],
)
def test_normal_text_with_single_letters_not_joined(text: str) -> None:
    assert normalize(text) == text


def test_empty_and_whitespace() -> None:
    assert normalize("") == ""
    assert normalize("   ") == "   "


def test_idempotent_on_examples() -> None:
    for s in ["f u c k y0u", "ѕһіt h3ad", "fuuuuck", "sh1t!!!", "I am a b c d"]:
        once = normalize(s)
        assert normalize(once) == once


try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # pragma: no cover - hypothesis is a dev extra
    pass
else:
    _evasion_alphabet = st.sampled_from(
        list("abcdefghijklmnopqrstuvwxyzABC 0134578@$!|+.-_*")
        + ["\u200b", "\u00ad", "ѕ", "һ", "і", "о", "а", "ｆ", "\u0338", "é", "ß", "Я", "ﷺ"]
    )

    @settings(max_examples=300, deadline=None)
    @given(st.text())
    def test_never_raises_and_bounded(text: str) -> None:
        out = normalize(text)
        assert isinstance(out, str)
        # NFKC can expand one code point to at most 18 (U+FDFA); nothing else adds characters.
        assert len(out) <= 18 * len(text)

    @settings(max_examples=300, deadline=None)
    @given(st.text(alphabet=_evasion_alphabet, max_size=40))
    def test_idempotent_on_evasion_alphabet(text: str) -> None:
        once = normalize(text)
        assert normalize(once) == once
