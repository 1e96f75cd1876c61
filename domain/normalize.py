"""Text normalisation against common evasions, applied before screening.

``normalize`` is pure and cheap (no I/O, stdlib only). It undoes the tricks people use to slip abuse
past a classifier while leaving ordinary text readable:

* Unicode NFKC (fullwidth ``ｆｕｃｋ`` -> ``fuck``, ligatures, compatibility forms);
* invisible characters removed (zero-width spaces/joiners, soft hyphens, bidi controls, BOM);
* combining marks stacked on Latin letters removed ("zalgo" text, ``f̸u̸c̸k``);
* Cyrillic/Greek look-alikes mapped to Latin, but only in words that already mix in Latin letters or
  consist solely of look-alikes, so genuine Russian or Greek text is left alone;
* letters spelled out with separators joined: ``f u c k``, ``f.u.c.k``, ``f-u-c-k`` -> ``fuck``
  (runs of at least three single letters, with one consistent separator);
* leetspeak inside words (``sh1t``, ``b!tch``, ``f@g``, ``$hit``, ``n00b``) mapped to letters; numbers,
  ordinals and units (``2020``, ``3rd``, ``10pm``, ``covid19``) and @mentions are left alone;
* a letter repeated more than twice collapsed to two (``fuuuuck`` -> ``fuuck``).

Case is preserved; the screening tokenizer lower-cases anyway.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize"]

# Characters that render as nothing (or nearly) and are used to split words invisibly.
_INVISIBLE = dict.fromkeys(
    [
        0x00AD,  # soft hyphen
        0x034F,  # combining grapheme joiner
        0x061C,  # arabic letter mark
        0x115F,
        0x1160,  # hangul fillers
        0x17B4,
        0x17B5,
        0x180E,  # mongolian vowel separator
        0x200B,
        0x200C,
        0x200D,
        0x200E,
        0x200F,  # zero-width space/non-joiner/joiner, LRM, RLM
        0x202A,
        0x202B,
        0x202C,
        0x202D,
        0x202E,  # bidi embeddings/overrides
        0x2060,
        0x2061,
        0x2062,
        0x2063,
        0x2064,  # word joiner, invisible operators
        0x2066,
        0x2067,
        0x2068,
        0x2069,  # bidi isolates
        0x206A,
        0x206B,
        0x206C,
        0x206D,
        0x206E,
        0x206F,
        0x3164,  # hangul filler
        0xFEFF,  # BOM / zero-width no-break space
        0xFFA0,  # halfwidth hangul filler
        0xFFF9,
        0xFFFA,
        0xFFFB,
    ]
    + list(range(0xFE00, 0xFE10))  # variation selectors
    + list(range(0xE0000, 0xE0080)),  # tag characters
    None,
)

# Cyrillic and Greek letters that look like Latin ones (after NFKC).
_HOMOGLYPHS: dict[str, str] = {
    # Cyrillic lower
    "а": "a", "в": "b", "с": "c", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t",
    "у": "y", "х": "x", "ԝ": "w", "ѡ": "w", "ь": "b", "ү": "y", "ӏ": "l",
    # Cyrillic upper
    "А": "A", "В": "B", "С": "C", "Е": "E", "Ё": "E", "Н": "H", "І": "I", "Ї": "I", "Ј": "J",
    "К": "K", "М": "M", "О": "O", "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y",
    "Ԝ": "W", "Ӏ": "I", "Ь": "b",
    # Greek lower
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ϲ": "c", "ϳ": "j", "μ": "u",
    # Greek upper
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    # Other look-alikes that survive NFKC
    "ı": "i", "ȷ": "j", "ɑ": "a", "ɡ": "g", "ʏ": "y", "ᴀ": "A", "ʙ": "B", "ᴄ": "C", "ᴅ": "D",
    "ᴇ": "E", "ɢ": "G", "ʜ": "H", "ɪ": "I", "ᴊ": "J", "ᴋ": "K", "ʟ": "L", "ᴍ": "M", "ɴ": "N",
    "ᴏ": "O", "ᴘ": "P", "ʀ": "R", "ꜱ": "S", "ᴛ": "T", "ᴜ": "U", "ᴠ": "V", "ᴡ": "W", "ᴢ": "Z",
}  # fmt: skip
_HOMOGLYPH_TABLE = str.maketrans(_HOMOGLYPHS)

# Leetspeak substitutions, applied only inside words.
_LEET: dict[str, str] = {
    "0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "8": "b", "9": "g",
    "@": "a", "$": "s", "!": "i", "|": "l", "+": "t",
}  # fmt: skip
_LEET_TABLE = str.maketrans(_LEET)
_LEET_CHARS = re.escape("".join(_LEET))

# A word-ish token: letters, digits and leet symbols (apostrophes split it; that is fine).
_WORDISH = re.compile(rf"[A-Za-z{_LEET_CHARS}]+")
_HAS_LETTER2 = re.compile(r"[A-Za-z].*[A-Za-z]", re.S)
# Tokens that are ordinary number+unit or name+number forms, not leetspeak.
_NUM_UNIT = re.compile(
    r"\d+(?:st|nd|rd|th|s|k|m|b|am|pm|x|d|h|hr|hrs|min|mins|g|gb|mb|kb|tb|kg|km|cm|mm|ml|yo|yr|yrs|"
    r"ft|lb|lbs|mph|kmh|ish|p|fps|hz|ghz|v|w|kw|mg)",
    re.I,
)
_NAME_NUM = re.compile(r"[A-Za-z]+\d+")

# Runs of >= 3 single letters separated by one consistent separator: "f u c k", "f.u.c.k".
_SPACED = re.compile(r"(?<![A-Za-z0-9])([A-Za-z])(?P<sep>[ .\-_*,~+/|•·]+)[A-Za-z](?:(?P=sep)[A-Za-z])+(?![A-Za-z0-9])")
_REPEAT = re.compile(r"([^\W\d_])\1{2,}")
_TOKEN = re.compile(r"\S+")


def _strip_marks_on_latin(text: str) -> str:
    """Remove combining marks that sit on Latin letters (zalgo, accents); keep them elsewhere."""
    if text.isascii():
        return text
    out: list[str] = []
    base_is_latin = False
    for ch in unicodedata.normalize("NFD", text):
        if unicodedata.combining(ch) or unicodedata.category(ch) == "Me":
            if base_is_latin:
                continue
        else:
            base_is_latin = ch.isascii() and (ch.isalpha() or ch in _LEET)
        out.append(ch)
    return unicodedata.normalize("NFC", "".join(out))


def _is_cyr_greek(ch: str) -> bool:
    return "\u0370" <= ch <= "\u052f" or "\u1f00" <= ch <= "\u1fff"


def _map_homoglyphs(text: str) -> str:
    if text.isascii():
        return text

    # A message with Cyrillic/Greek letters that have no Latin twin is genuine Cyrillic/Greek text:
    # then only words that mix scripts are mapped. Otherwise every all-look-alike word is mapped too.
    genuine = any(c.isalpha() and not c.isascii() and c not in _HOMOGLYPHS and _is_cyr_greek(c) for c in text)

    def fix(m: re.Match[str]) -> str:
        tok = m.group(0)
        mapped = tok.translate(_HOMOGLYPH_TABLE)
        if mapped == tok:
            return tok
        letters = [c for c in tok if c.isalpha()]
        mixed = any(c.isascii() or unicodedata.name(c, "").startswith("LATIN") for c in letters)
        all_confusable = all(c.isascii() or c in _HOMOGLYPHS for c in letters)
        return mapped if (mixed or (all_confusable and not genuine)) else tok

    return _TOKEN.sub(fix, text)


def _join_spaced(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        letters = re.sub(r"[^A-Za-z]", "", m.group(0))
        sep = m.group("sep")
        # "you are a b i t c h": a leading one-letter word ("a", "I") stays a word of its own.
        if sep.isspace() and len(letters) >= 4 and letters[0] in "aAI":
            return letters[0] + sep + letters[1:]
        return letters

    return _SPACED.sub(fix, text)


def _unleet(text: str) -> str:
    def fix(m: re.Match[str]) -> str:
        tok = m.group(0)
        if tok.isalpha():
            return tok
        # Keep leading '@' (mentions) and trailing punctuation-like leet symbols as they are.
        start = 0
        while start < len(tok) and tok[start] in "@!|+":
            start += 1
        end = len(tok)
        while end > start and tok[end - 1] in "!|+$@":
            end -= 1
        core = tok[start:end]
        if not core or core.isalpha() or not _HAS_LETTER2.search(core):
            return tok
        if core.isalnum() and (_NUM_UNIT.fullmatch(core) or _NAME_NUM.fullmatch(core)):
            return tok
        return tok[:start] + core.translate(_LEET_TABLE) + tok[end:]

    return _WORDISH.sub(fix, text)


def normalize(text: str) -> str:
    """Return ``text`` with evasions undone (see module docstring). Never raises on any ``str``."""
    if not text:
        return ""
    t = unicodedata.normalize("NFKC", text)
    t = t.translate(_INVISIBLE)
    t = _map_homoglyphs(t)
    t = _strip_marks_on_latin(t)
    t = _join_spaced(t)
    t = _unleet(t)
    t = _strip_marks_on_latin(t)  # leet digits turned into letters may carry marks too
    t = _REPEAT.sub(r"\1\1", t)
    return t
