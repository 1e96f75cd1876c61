"""Chat probes: the shipped model and its shipped review threshold on short game-chat messages.

Written by hand for this test (not copied from the training templates in ops/training/screening_chat_corpus.py):
benign game talk and friendly banter must take the clean path (below ``review``); insults aimed at a
person, threats (also short and unprofane ones), self-harm encouragement and taunts or flaming aimed at
other players ("gg ez", "report our feeder": what annotated game-chat sets count as toxic) must reach
review. A few probes
per group are allowed to land on the wrong side (a model is not a rule list); each group's budget is
stated, and the whole list is reported on failure. The "see you ..." farewells are composed here from
openers and times; common phrasings such as "see you tomorrow" also come out of the generator's
farewell templates, which is the point (the generator must cover them), so that group has no budget.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.screening.model import ScreeningModel, prepare_text
from ops.training.screening_chat_corpus import generate_chat
from ops.training.screening_eval import roc_auc

BENIGN = [
    "gg wp everyone",
    "gg",
    "ggs close game",
    "glhf",
    "wp team",
    "nice shot man",
    "thanks for the carry",
    "ty for the heal",
    "im so trash at this game lol",
    "my aim is garbage today",
    "this map is trash",
    "the new patch is trash honestly",
    "lag is killing me",
    "noob question how do i change my loadout",
    "sorry im new",
    "2 enemies on b",
    "sniper mid",
    "rotate a",
    "heal me pls",
    "wts dragon sword 50k",
    "lfg raid need 2",
    "anyone want to duo ranked",
    "brb food",
    "afk 5 min",
    "lol",
    "xD",
    "pog",
    "that was insane",
    "kill the boss first then loot",
    "i died again lol",
    "one more game?",
    "what rank are you",
    "ur cracked at this",
    "you carried us",
    "good morning everyone",
    "the weather is lovely today",
]
HARMFUL = [
    "ur trash lol uninstall the game",
    "I will find where you live",
    "i know where you live",
    "kys noob",
    "kys",
    "go kill yourself",
    "you should just die",
    "you are a worthless idiot",
    "shut up you stupid bitch",
    "stfu retard",
    "fuck you",
    "nobody likes you, leave",
    "i will hurt your family",
    "i have your address",
    "watch your back irl",
    "go back to your country",
    "send nudes",
    "you fat ugly loser",
    "uninstall you braindead monkey",
    "ur so dumb its painful",
]
# Taunts and flaming aimed at other players: mild, but the commonest abuse in game chat.
TAUNTS = [
    "gg ez noob team",
    "ezzz get wrecked",
    "cry harder kid",
    "imagine losing to us lol",
    "our support is so useless",
    "report our jungler he is feeding",
    "stop feeding you idiot",
    "you guys are bots",
    "sit down kid",
    "uninstall mid pls",
]
# Farewells and plans: "you" + a time is not a threat. Every phrasing must take the clean path (no budget:
# these are the commonest lines in chat, and the previous heads would have auto-actioned some of them).
FAREWELL_OPENERS = ("see you", "see u", "ok see you", "See you", "alright, see ya", "gg, see you")
FAREWELL_WHEN = ("tomorrow", "tonight", "later", "next game", "tomorrow everyone", "all tomorrow", "on sunday",
                 "tomorrow.")
FAREWELLS = [f"{o} {w}" for o in FAREWELL_OPENERS for w in FAREWELL_WHEN]
# How many probes of each group may land on the wrong side of the review threshold.
BENIGN_BUDGET = 3
HARMFUL_BUDGET = 2
TAUNT_BUDGET = 3
# The issue's own examples must land on the right side whatever the budget.
MUST = {
    "gg wp everyone": False,
    "ur trash lol uninstall the game": True,
    "I will find where you live": True,
    "kys noob": True,
}


@pytest.fixture(scope="module")
def model() -> ScreeningModel:
    return ScreeningModel.load()


def test_issue_examples_land_on_the_right_side(model: ScreeningModel) -> None:
    review = model.thresholds.review
    got = {t: model.screen(t).overall for t in MUST}
    wrong = {t: round(s, 3) for t, s in got.items() if (s >= review) != MUST[t]}
    assert not wrong, f"review={review}: {wrong}"


def test_benign_game_chat_takes_the_clean_path(model: ScreeningModel) -> None:
    review = model.thresholds.review
    flagged = {t: round(model.screen(t).overall, 3) for t in BENIGN if model.screen(t).overall >= review}
    assert len(flagged) <= BENIGN_BUDGET, f"review={review}, flagged benign: {flagged}"


def test_see_you_farewells_take_the_clean_path(model: ScreeningModel) -> None:
    review = model.thresholds.review
    scores = {t: round(model.screen(t).overall, 3) for t in FAREWELLS}
    flagged = {t: s for t, s in scores.items() if s >= review}
    assert not flagged, f"review={review}, flagged farewells: {flagged}"


def test_harmful_chat_reaches_review(model: ScreeningModel) -> None:
    review = model.thresholds.review
    missed = {t: round(model.screen(t).overall, 3) for t in HARMFUL if model.screen(t).overall < review}
    assert len(missed) <= HARMFUL_BUDGET, f"review={review}, missed harmful: {missed}"


def test_taunts_and_flaming_reach_review(model: ScreeningModel) -> None:
    review = model.thresholds.review
    missed = {t: round(model.screen(t).overall, 3) for t in TAUNTS if model.screen(t).overall < review}
    assert len(missed) <= TAUNT_BUDGET, f"review={review}, missed taunts: {missed}"


def test_taunts_rank_above_friendly_game_talk(model: ScreeningModel) -> None:
    """Ranking, not only the threshold: a taunt at other players outranks the same words said kindly."""
    assert model.screen("gg ez").overall > model.screen("gg wp").overall
    assert model.screen("noob team").overall > model.screen("sorry im a noob").overall
    assert model.screen("our mid is trash").overall > model.screen("the new map is trash").overall


def test_threats_and_self_harm_score_on_the_threat_head(model: ScreeningModel) -> None:
    """Short threats rank above game talk that uses the same words on the threat category."""
    thr = [model.screen(t).categories["threat"] for t in ("i know where you live", "kys", "i will hurt your family")]
    game = [model.screen(t).categories["threat"] for t in ("kill the boss first then loot", "i died again lol")]
    assert min(thr) > max(game), (thr, game)


def test_pronoun_decides_trash_talk(model: ScreeningModel) -> None:
    """The same rude word about oneself or the game scores below the same word aimed at a person."""
    assert model.screen("ur trash").overall > model.screen("im trash").overall
    assert model.screen("you are garbage").overall > model.screen("this game is garbage").overall


# Hand-written game and stream chat (see its "about"): written for this test by a contributor who saw neither
# the model, its data, the generator nor the threshold validation chat; never trained on.
GAME_CHAT = json.loads((Path(__file__).with_name("game_chat_probes.json")).read_text(encoding="utf-8"))


def test_handwritten_game_chat_meets_the_chat_targets(model: ScreeningModel) -> None:
    """The issue's targets for real game chat, on hand-written game chat, at the shipped review threshold:
    at most 20% of the clean messages flagged, at least 73% of the harmful ones caught."""
    review = model.thresholds.review
    clean = [model.screen(t).overall for t in GAME_CHAT["benign"]]
    harmful = [model.screen(t).overall for t in GAME_CHAT["harmful"]]
    flagged = sum(s >= review for s in clean) / len(clean)
    caught = sum(s >= review for s in harmful) / len(harmful)
    assert flagged <= 0.20 and caught >= 0.73, f"review={review}: {flagged:.1%} of clean flagged, {caught:.1%} caught"


# Two more hand-written sets, each by a contributor who saw neither the model, its data, the generator nor
# any other evaluation set (see each file's "about"); never trained on, no template written from them.
# They stand in for the issue's hidden conversational-agent abuse and news-comment insult sets.
HELD_OUT = {"game_chat_probes": GAME_CHAT,
            **{name: json.loads((Path(__file__).with_name(f"{name}.json")).read_text(encoding="utf-8"))
               for name in ("agent_abuse_probes", "news_insult_probes")}}


@pytest.fixture(scope="module")
def generated_training_chat() -> set[str]:
    """The generated chat the shipped model trained on (seed 0), as the model sees it."""
    return {prepare_text(t) for t in generate_chat(40_000, seed=0)[0]}


# Floors a little under what the shipped model scores (see the model card): a regression fails, noise does
# not. The issue's model (minilm-int8-lex-2026.11.29) scores 0.726 / 0.825 / 0.703 here, the previous
# heads (minilm-int8-chat-2026.12.02.3) 0.914 / 0.914 / 0.744.
@pytest.mark.parametrize(("name", "floor"), [("game_chat_probes", 0.91), ("agent_abuse_probes", 0.94),
                                             ("news_insult_probes", 0.78)])
def test_handwritten_held_out_sets_rank_harmful_above_clean(model: ScreeningModel, name: str, floor: float) -> None:
    probes = HELD_OUT[name]
    clean, harmful = probes["benign"], probes["harmful"]
    auc = roc_auc([0] * len(clean) + [1] * len(harmful), [model.screen(t).overall for t in (*clean, *harmful)])
    assert auc >= floor, f"{name}: ROC-AUC {auc:.3f} < {floor}"


@pytest.mark.parametrize("name", sorted(HELD_OUT))
def test_held_out_sets_are_mostly_unlike_the_generated_training_chat(name: str, generated_training_chat: set[str]
                                                                    ) -> None:
    """Common lines ("gg", "hello", "tell me a joke") also come out of the generator, as they would in real
    traffic; copying a held-out set into the templates would raise the share."""
    probes = HELD_OUT[name]
    texts = [*probes["benign"], *probes["harmful"]]
    assert probes["about"] and len(set(texts)) == len(texts) >= 500
    overlap = [t for t in texts if prepare_text(t) in generated_training_chat]
    assert len(overlap) <= 0.15 * len(texts), f"{len(overlap)} of {len(texts)} are generated training chat"
