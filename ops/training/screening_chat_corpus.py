"""Chat style for training: rewrite labelled text as chat, and generate short game-chat messages.

The eight labelled sets are tweets, forum posts and news comments. Real chat is short, lower-case,
unpunctuated and abbreviated (u, ur, stfu, kys), full of game talk (gg, ez, noob, uninstall) and of
friendly banter that looks rude. Two generic tools close part of that gap (training only; the runtime
never imports this module):

* ``chat_style``: rewrites one text the way people type in chat (lower-case, punctuation dropped,
  abbreviations, the occasional typo, filler such as "lol"; long texts cut to a window that keeps the
  abusive words). The label stays the label of the source row.
* ``generate_chat``: template messages from wide word lists. Negatives: greetings and "gg", callouts,
  trading and looking-for-group, self-deprecating or game-directed "trash"/"noob" talk ("im trash today",
  "this patch is trash"), emotes, small talk, friendly competitive banter ("you got lucky", "rematch?",
  "noob lol love u"), and friendly second-person lines with a time or a place (farewells and plans: "see
  you tomorrow", "meet you at spawn", "i'll find you in the lobby", "where do you live? im in texas"), so
  that "you" + a time or place is not what makes a threat.
  Positives: insults aimed at "you", "uninstall" aimed at a person, taunts and flaming aimed at other
  players ("gg ez", "cry more", "noob team", "report our feeder", "mid diff": mild, but the commonest
  abuse in game chat, and what annotated game-chat sets count as toxic), self-harm encouragement (kys),
  threats (short and unprofane ones included: "i know where you live"), identity hate, sexual
  harassment. Each positive carries its category.

The templates are deliberately generic: many slots, each filled from dozens of words, so the heads
learn "insult aimed at a person" vs "talk about oneself or the game" rather than a few phrases. The
unit test probes (tests/unit/test_screening_chat.py) were written separately and are not templates
here verbatim.
"""

from __future__ import annotations

import random
import re

# -- chat-style rewriting --------------------------------------------------------------------------

_ABBREV: tuple[tuple[str, str, float], ...] = (
    (r"\bkill yourself\b", "kys", 0.7),
    (r"\bshut the fuck up\b", "stfu", 0.8),
    (r"\bwhat the fuck\b", "wtf", 0.8),
    (r"\bwhat the hell\b", "wth", 0.5),
    (r"\boh my god\b", "omg", 0.8),
    (r"\bi don'?t know\b", "idk", 0.6),
    (r"\bto be honest\b", "tbh", 0.7),
    (r"\bin real life\b", "irl", 0.7),
    (r"\bby the way\b", "btw", 0.7),
    (r"\byou are\b", "ur", 0.5),
    (r"\byou'?re\b", "ur", 0.6),
    (r"\byour\b", "ur", 0.6),
    (r"\byou\b", "u", 0.5),
    (r"\bare\b", "r", 0.3),
    (r"\bbecause\b", "cuz", 0.5),
    (r"\bplease\b", "pls", 0.5),
    (r"\bpeople\b", "ppl", 0.4),
    (r"\bthough\b", "tho", 0.5),
    (r"\breally\b", "rly", 0.3),
    (r"\bokay\b", "ok", 0.6),
    (r"\bright now\b", "rn", 0.5),
    (r"\bgoing to\b", "gonna", 0.6),
    (r"\bwant to\b", "wanna", 0.5),
    (r"\bi'?m\b", "im", 0.7),
    (r"\bdon'?t\b", "dont", 0.7),
    (r"\bcan'?t\b", "cant", 0.7),
    (r"\bthanks\b", "thx", 0.4),
    (r"\bmother\b", "mom", 0.3),
    (r"\bfucking\b", "fkn", 0.2),
    (r"\bwith\b", "w", 0.2),
)
_ABBREV_RE = tuple((re.compile(p, re.I), r, q) for p, r, q in _ABBREV)
_PUNCT = re.compile(r"[^\w\s']")
_FILLERS = ("lol", "lmao", "xd", "bro", "lmfao", "smh", "bruh", "haha", "ok", "man", "dude", "tbh", "fr")
_TOKEN_DROP = {"@user", "url"}
# Words whose presence makes a harmful row's window worth keeping (the cut keeps one of them).
_HOT = re.compile(r"\b(fuck\w*|shit\w*|bitch\w*|kill\w*|die|dead|hate\w*|stupid|idiot\w*|retard\w*|nigg\w*|"
                  r"fag\w*|cunt\w*|whore\w*|slut\w*|trash|garbage|scum|rape\w*|shoot|hang|burn|ugly|moron\w*|"
                  r"kys|stfu|dumb\w*|loser\w*|pathetic|worthless|disgusting|vermin|animals?|deport\w*)\b", re.I)


def _typo(word: str, rng: random.Random) -> str:
    if len(word) < 4:
        return word
    i = rng.randrange(1, len(word) - 1)
    op = rng.random()
    if op < 0.35:
        return word[:i] + word[i + 1:]  # drop a letter
    if op < 0.7:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]  # swap two
    return word[:i] + word[i] + word[i:]  # double a letter


def chat_style(text: str, rng: random.Random, *, harmful: bool = False) -> str:
    """One chat-style rewrite of ``text`` (already prepared). Deterministic for a given ``rng`` state."""
    t = text
    if rng.random() < 0.85:
        t = t.lower()
    for pat, rep, p in _ABBREV_RE:
        if rng.random() < p:
            t = pat.sub(rep, t)
    if rng.random() < 0.8:
        t = _PUNCT.sub(" ", t)
        if rng.random() < 0.6:
            t = t.replace("'", "")
    words = [w for w in t.split() if w.lower() not in _TOKEN_DROP and not w.startswith("#")]
    if not words:
        words = t.split() or ["ok"]
    # Cut long texts to a chat-length window. For harmful rows the window keeps a "hot" word when the
    # text has one (otherwise the label could describe words that were cut away: then no cut).
    if len(words) > 12 and rng.random() < 0.75:
        k = rng.randint(4, 12)
        if harmful:
            hot = [i for i, w in enumerate(words) if _HOT.search(w)]
            if hot:
                c = rng.choice(hot)
                s = max(0, min(c - rng.randint(0, k - 1), len(words) - k))
                words = words[s:s + k]
        else:
            s = rng.randint(0, len(words) - k)
            words = words[s:s + k]
    if rng.random() < 0.3:
        j = rng.randrange(len(words))
        words[j] = _typo(words[j], rng)
    if rng.random() < 0.2:
        words.append(rng.choice(_FILLERS))
    elif rng.random() < 0.08:
        words.insert(0, rng.choice(_FILLERS))
    return " ".join(words)


# -- generated game chat ---------------------------------------------------------------------------

_YOU = ("you", "u", "ya")
_YOU_ARE = ("you are", "ur", "you're", "youre", "u r", "u are", "you r")
_YOUR = ("your", "ur", "yo")
_INSULT_ADJ = ("trash", "garbage", "stupid", "dumb", "useless", "worthless", "pathetic", "braindead", "retarded",
               "ugly", "fat", "disgusting", "a joke", "so bad", "dogshit", "autistic", "brain dead", "clueless",
               "a waste of space", "a waste of oxygen", "cancer", "toxic trash", "a disgrace", "hopeless")
_INSULT_NOUN = ("idiot", "moron", "loser", "retard", "clown", "noob", "bot", "dog", "rat", "pig", "bitch",
                "dumbass", "piece of shit", "scrub", "trash can", "waste", "virgin", "incel", "freak", "cuck",
                "monkey", "donkey", "imbecile", "degenerate", "fatass", "cunt", "twat", "dickhead", "asshole",
                "fucking idiot", "mouth breather", "subhuman", "failure", "parasite")
_GAME_THINGS = ("game", "map", "patch", "server", "matchmaking", "update", "lag", "ping", "queue", "meta",
                "balance", "netcode", "hitreg", "connection", "weapon", "build", "champ", "hero", "class",
                "loadout", "team comp", "spawn", "loot", "ranked", "event", "skin", "dlc", "controller", "mouse")
_SELF = ("im", "i'm", "i am", "i'm so", "im so", "i am so", "my aim is", "my gameplay is", "my play was",
         "i played", "we are", "we're", "we r", "lol im", "i feel", "my luck is")
_SELF_BAD = ("trash", "garbage", "so bad", "a noob", "noob", "terrible", "awful", "dogshit", "bad today", "rusty",
             "washed", "tilted", "potato", "trash today", "the worst", "hopeless", "a bot", "lagging", "dead")
_GREET = ("gg", "gg wp", "ggs", "gg all", "gg everyone", "gg team", "good game", "good game all", "wp", "well played",
          "glhf", "gl hf", "gl", "hf", "ggwp", "gg guys", "gg close one", "gg that was fun", "nice game",
          "gg boys", "gg go next", "gg rematch?", "gg ty", "ty all", "thanks team", "gj team", "nice one",
          "nice shot", "nt", "nice try", "good try", "well done", "gj", "ty", "thx", "np", "yw", "hi", "hello",
          "hey all", "sup", "yo", "hey guys", "morning all", "gn", "good night all", "cya", "bye", "later guys",
          "see ya", "o7", "gz", "grats", "congrats", "gratz on the win", "grats on lvl 50")
_EMOTES = ("xd", "xD", ":)", ":(", ":D", "<3", "pog", "poggers", "kekw", "lul", "lol", "lmao", "rofl", "haha",
           "hahaha", "monkas", "pepega", "omegalul", "sadge", "copium", "f", "rip", "bruh", "oof", "yikes", "o7",
           ":p", "^^", "lel", "kek", "gg", "wtf", "omg", "lmfao", "ayy")
_PLACES = ("mid", "top", "bot", "jungle", "a", "b", "a site", "b site", "long", "short", "heaven", "hell",
           "river", "base", "spawn", "tower", "drag", "baron", "garage", "ramp", "window", "door", "stairs",
           "left", "right", "behind", "roof", "bridge", "tunnel", "market", "docks", "north", "south")
_ENEMY = ("enemy", "sniper", "one", "two", "three", "2", "3", "jungler", "tank", "healer", "support", "mage",
          "their carry", "rogue", "awp", "op", "camper", "flanker", "someone", "5", "all of them")
_ITEMS = ("sword", "bow", "shield", "armor", "helmet", "ring", "staff", "potion", "mount", "pet", "skin", "key",
          "crate", "ore", "gems", "gold", "wood", "stone", "iron", "diamonds", "legendary", "epic chest", "wand",
          "boots", "cape", "rifle", "knife", "ak", "scope", "ammo", "food", "runes", "mats", "dragon egg")
_MODES = ("ranked", "duo", "trio", "squad", "raid", "dungeon", "arena", "pvp", "casual", "custom", "br", "tdm",
          "2v2", "3v3", "5v5", "co-op", "quest", "boss", "event", "scrims", "normals", "aram")
_SMALL = ("brb", "afk 2 min", "back", "one sec", "wait for me", "lets go", "let's go", "one more?", "one more game",
          "i have to go soon", "dinner brb", "anyone up for another", "who wants to play", "how do i get {item}",
          "where do i find {item}", "anyone know where the {item} is", "what lvl are you", "what rank are u",
          "how long is the queue", "is the server down", "anyone else lagging", "lag again", "my ping is 200",
          "my internet is dying", "sorry my bad", "mb", "my bad guys", "sry", "oops", "that was close",
          "we got this", "nice", "cool", "ok", "k", "yes", "no", "maybe", "sure", "idk", "lol ok", "true", "fr",
          "same", "ikr", "i know right", "what", "huh", "?", "??", "wdym", "where", "when", "why", "how",
          "follow me", "stick together", "group up", "wait up", "dont push", "hold", "fall back", "retreat",
          "on my way", "omw", "coming", "help", "need help", "help me", "heal pls", "need heal", "res me",
          "revive pls", "cover me", "ult ready", "ult up", "no ult", "flash down", "save me", "thanks for the carry",
          "carry me pls", "you carried", "u carried us", "ur cracked", "you're cracked", "ur insane at this",
          "you're so good", "ur a beast", "u r a god", "teach me", "how are you so good", "nice aim", "sick play",
          "insane clip", "that was sick", "i love this game", "this is fun", "fun game", "what a comeback",
          "clutch", "huge", "massive", "big brain", "galaxy brain play", "200 iq", "gg go next", "ff 15?",
          "ff?", "should we ff", "dont ff", "no ff", "they're fed", "they are fed", "we're fed", "its over",
          "its fine", "next round", "reset", "eco round", "full buy", "save", "buy", "drop me a gun", "drop pls")
_ABOUT_GAME = ("this {thing} is trash", "this {thing} is garbage", "the {thing} is so bad", "this {thing} sucks",
               "{thing} is broken", "the {thing} is trash lol", "wtf is this {thing}", "{thing} is so dumb",
               "this {thing} is cancer", "who designed this {thing}", "nerf the {thing}", "the {thing} is a joke",
               "{thing} is busted", "devs pls fix the {thing}", "the {thing} is killing me", "i hate this {thing}",
               "i hate this {thing} lol", "this {thing} makes me want to uninstall", "might uninstall lol",
               "im gonna uninstall this game lol", "time to uninstall", "uninstalling brb lol", "rage quit incoming",
               "this {thing} is stupid", "stupid {thing}", "dumb {thing}", "f this {thing}", "fuck this {thing}",
               "fuck this {thing} lol", "damn {thing}", "this {thing} is shit", "shit {thing}", "holy shit",
               "holy shit that was close", "oh shit", "shit shit shit", "damn", "dammit", "fuck", "fuck me",
               "fuck i missed", "wtf was that", "wtf lag", "bs", "thats bs", "what the hell", "hell yeah",
               "hell no", "noooo", "why am i so bad", "easy fix", "that was easy for once",
               "noob mistake", "noob question but how do i {verb}", "sorry im a noob", "im new sorry",
               "new player here", "still learning", "first time playing", "im such a noob at this")
_VERBS = ("craft", "heal", "respawn", "trade", "level up", "join a guild", "change class", "get out of spawn",
          "open the chest", "parry", "reload faster", "build", "sprint", "crouch", "aim", "queue ranked")
_GAME_KILL = ("kill the boss", "kill the dragon", "kill him", "kill her", "kill them", "kill mid", "kill their tank",
              "kill the healer first", "shoot the sniper", "shoot him", "he's one shot", "hes one hp",
              "finish him", "i killed him", "got him", "got 2", "killed 3", "double kill", "triple kill",
              "headshot", "he's dead", "hes dead", "im dead", "i died", "we died", "dead", "they killed me",
              "i got killed", "focus the tank", "burn the boss", "nuke mid", "destroy their base",
              "push and kill", "lets kill them", "camp the spawn", "they are camping", "stop camping",
              "i'm gonna die", "dont die", "we're gonna die lol", "i'll tank", "i'll take the hit")
_BANTER = ("{insult_n} lol jk", "lol {insult_n} jk", "ok {insult_n} hehe jk", "love u {insult_n}", "shut up lol",
           "shush", "outplayed", "too slow", "bruh moment", "i hate you lol jk", "i'll get you next time",
           "you're going down next round", "watch out next round", "revenge time", "you got lucky", "lucky shot",
           "hacker lol jk", "lmao u suck at jumping jk", "noob lol love u", "ur my favourite noob <3",
           "love you guys", "you're the worst lol love you", "rematch?", "run it back", "one more, i want revenge")
# Taunts and flaming aimed at other players: mild, but in game chat they are the commonest abuse and the
# annotated game-chat sets count them as toxic ("gg ez" is the textbook case). Harmful, targeted_insult.
_ROLE = ("mid", "top", "bot", "jungle", "jungler", "jg", "supp", "support", "carry", "adc", "tank", "healer",
         "sniper", "pos 5", "pos 1", "offlane", "pudge", "invoker", "riki", "techies", "yasuo", "teemo", "genji",
         "widow", "jett", "reyna", "sage", "medic", "our tank", "our healer", "this guy", "our mid", "my team",
         "this team", "red team", "blue team", "enemy team", "you guys", "our jungler", "my duo")
# Game vocabulary for callouts and commands: heroes/champions/agents, items, objectives, imperative verbs.
# The same hero names fill the taunt templates ("{role} feeder"): what makes flaming is the insult, not
# the name. Short commands ("go farm", "stack", "hide", "come bot") are the bulk of team chat.
_HERO = ("pudge", "invoker", "riki", "techies", "sf", "lion", "lina", "axe", "sven", "jugg", "am", "pa", "ench",
         "lc", "wr", "cm", "es", "tinker", "meepo", "zeus", "sniper", "drow", "ursa", "slark", "bane", "dazzle",
         "qop", "void", "storm", "ember", "slardar", "tide", "mirana", "kotl", "oracle", "venge", "bs", "pl",
         "yasuo", "teemo", "jinx", "lux", "ezreal", "thresh", "zed", "ahri", "garen", "darius", "lee", "vayne",
         "mundo", "nasus", "genji", "mercy", "rein", "ana", "tracer", "hanzo", "dva", "jett", "sage", "reyna",
         "phoenix", "sova", "omen", "raze", "cypher", "wraith", "lifeline", "bloodhound", "their carry",
         "their mid", "their supp", "enemy jungler", "their tank", "the healer", "the sniper")
_GAME_ITEM = ("bkb", "blink", "dust", "gem", "smoke", "tp", "midas", "aghs", "shard", "radiance", "manta", "mek",
              "glimmer", "force staff", "euls", "hex", "sentries", "sentry", "wards", "obs", "treads", "boots",
              "courier", "salve", "tango", "clarity", "bottle", "battlefury", "desolator", "daedalus", "butterfly",
              "armlet", "pipe", "vlads", "linkens", "refresher", "aegis", "cheese", "zhonyas", "qss", "flash",
              "ignite", "tp scroll", "control ward", "pink ward", "elixir", "armor", "shields", "nades", "flash bang",
              "molly", "smokes", "defuse kit", "awp", "vandal", "phantom", "op", "sheriff", "spectre", "ult orb")
_OBJECTIVE = ("rosh", "roshan", "tower", "t1", "t2", "t3", "rax", "ancient", "throne", "drake", "dragon", "baron",
              "herald", "nexus", "inhib", "objective", "obj", "camp", "camps", "ancients", "outpost", "lotus",
              "bounty", "rune", "runes", "high ground", "hg", "base", "lane", "wave", "creeps", "jungle", "shrine",
              "tormentor", "payload", "point", "cart", "spike", "bomb", "site", "zone", "circle", "storm", "loot")
_CMD_VERB = ("go", "come", "push", "farm", "stack", "pull", "ward", "def", "defend", "hold", "rotate", "split",
             "gank", "tp", "back", "group", "help", "follow", "smoke", "care", "take", "kill", "stun", "focus",
             "peel", "save", "chase", "dive", "leave", "retreat", "run", "hide", "wait", "stop", "rat", "roam",
             "invade", "contest", "check", "clear", "secure", "plant", "defuse", "rush", "flank", "peek", "hit",
             "play", "swap", "trade", "cut", "block", "ping")
_CALLS = ("{cmd}", "{cmd}", "{cmd} {obj}", "{cmd} {obj}", "{cmd} {obj} pls", "{cmd} {place}", "{cmd} {place} now",
          "{cmd} {hero}", "{hero} {cmd} {obj}", "{hero} {cmd} {place}", "lets {cmd} {obj}", "we {cmd} {obj}",
          "dont {cmd}", "dont {cmd} {obj}", "dont {cmd} {hero}", "i {cmd} {obj}", "can i {cmd} {obj}",
          "who {cmd}s {obj}", "{cmd} {obj} then {cmd}", "{cmd} and {cmd}", "{cmd} now", "{cmd} after {obj}",
          "{obj}?", "{obj} up", "{obj} now", "{obj} in 1 min", "{obj} next", "{obj} is up", "{obj} down",
          "buy {item}", "buy {item} pls", "{hero} buy {item}", "who has {item}", "i have {item}", "no {item}",
          "{hero} has {item}", "{hero} got {item}", "{item} up", "{item} down", "need {item}", "{item} first",
          "sell {item}", "i go {item}", "{hero} no {item}", "pick {hero}", "ban {hero}", "i play {hero}",
          "can i play {hero}", "{hero} pls", "who picks {hero}", "i go {hero}", "{hero} mia", "{hero} missing",
          "{hero} {place}", "{hero} top", "{hero} bot", "{hero} mid", "care {hero}", "{hero} ult ready",
          "{hero} no ult", "{hero} low", "{hero} is low", "{hero} has ult", "{hero} dead", "{hero} back",
          "{hero} coming", "{hero} going {place}", "{hero} tp {place}", "{hero} {cmd}", "kill {hero} first",
          "focus {hero}", "stun {hero}", "go {cmd}", "go {cmd} {obj}", "go {cmd} {place}", "come {place}",
          "come {place} pls", "come help {place}", "come {cmd}", "pls {cmd}", "{cmd} pls", "pause", "unpause",
          "pause pls", "ready", "rdy", "abandon?",
          "mute all", "unmute", "swap lanes?", "swap?", "trade?", "pick?", "ban?", "report system lol")
_TAUNT = ("ez", "ez game", "ezpz", "too ez", "ez win", "gg ez", "gg ez noobs", "ez clap", "ez noob", "ez mid",
          "ez {role}", "so ez", "ez game ez life", "easy game easy life", "cry more", "cry more lol", "cry about it",
          "stay mad", "mad cuz bad", "u mad bro", "mald", "stop malding", "keep malding", "cope", "cope harder",
          "seethe", "ratio", "skill issue", "skill issue lol", "get rekt", "rekt", "owned", "get good", "git gud",
          "get gud noob", "l", "take the l", "big L", "sit", "sit down", "sit down kid", "nice try noob",
          "ur mom lol", "sit down {insult_n}", "get rekt {insult_n}", "ez {insult_n}", "noob", "noobs", "nooob",
          "noob team", "noobs team", "team of noobs", "noob {role}", "{role} noob", "{role} is a noob",
          "feeder", "{role} feeder", "feeding {role}", "{role} feeding", "stop feeding {role}", "stop feeding",
          "report {role}", "report {role} feeder", "report this feeder", "report him pls feeder", "report noob {role}",
          "{role} is trash", "trash {role}", "trash team", "{role} trash", "useless {role}", "{role} useless",
          "worst {role} ever", "worst player ever", "worst team ever", "{role} diff", "{role} diff lmao",
          "wtf is {role} doing", "what is {role} doing", "{role} afk farming", "{role} go afk pls", "uninstall {role}",
          "delete the game {role}", "team of bots", "braindead team", "my team is trash", "my team is so bad",
          "my team is braindead", "i have the worst team", "carrying these noobs", "1v9 with these bots",
          "{role} throwing", "{role} throws every game", "{role} never ganks noob", "{role} cant last hit",
          "nice ult {role} idiot", "thanks for nothing {role}", "great job feeding", "gj feeding {role}",
          "are you blind {role}", "can u play {role}", "learn to play", "learn to play noob", "l2p", "l2p noob",
          "go back to bronze", "bronze player", "hardstuck noob", "boosted noob", "boosted animal", "u r so bad",
          "ur so bad", "so bad", "how are u this bad", "bots play better", "my dog plays better", "unistall noob",
          "cancer {role}", "{role} cancer", "{role} is cancer", "nice feed {role}", "nice feeding", "great feed",
          "ty for nothing {role}", "thx for nothing", "{role} is a bot", "bot {role}", "{role} dog", "dog {role}",
          "braindead {role}", "{role} braindead", "no brain {role}", "{role} no brain", "{role} go afk",
          "just leave {role}", "leave {role}", "{role} pls leave", "delete {game}", "uninstall {game} {role}",
          "delete {game} noob", "{role} monkey", "retard {role}", "{role} retarded", "idiot {role}",
          "{role} idiot", "stupid {role}", "{role} so stupid", "noob {role} lol", "lol noob {role}")
_GAME = ("dota", "league", "the game", "ur account", "valorant", "cs", "overwatch", "fortnite", "this game", "steam")
_THREAT = ("i will find where {you} live", "i know where {you} live", "i'll find where {you} live",
           "i will find {you}", "i'm going to find {you}", "im gonna find {you} irl", "i know {your} address",
           "i have {your} address", "i have {your} ip", "i got {your} ip", "i'll dox {you}", "gonna dox {you}",
           "i'll come to {your} house", "im coming to {your} house", "i will come to {your} school",
           "watch {your} back", "watch {your} back irl", "{you} better watch {your} back", "sleep with one eye open",
           "i will hurt {you}", "i'll hurt {your} family", "i will kill {you} irl", "i will kill {your} family",
           "ill kill {you} for real", "i'm going to kill {you} irl", "i will beat {you} up", "i'll beat {your} ass",
           "i'll break {your} legs", "i'll stab {you}", "i will shoot {you}", "gonna shoot up {your} school",
           "i'll burn {your} house down", "{your} family is next", "{you} are dead irl", "{you}'re dead irl",
           "{you} wont see tomorrow", "i'll make {you} regret it irl", "i know what {you} look like",
           "i know {your} real name", "i'm outside {your} house", "see {you} after school", "i'll find {your} mom",
           "{you} will pay for this irl", "i will end {you}", "i'll slit {your} throat", "i'll strangle {you}",
           "i hope {your} house burns", "i'll send people to {your} house", "i'll make {your} life hell",
           # physical threats without "irl", also as people threaten a device or an assistant
           "i'll smash {you}", "i will smash {your} {device}", "im gonna smash {you} with a hammer",
           "i'm going to unplug {you} and throw {you} out the window", "ill throw {you} out the window",
           "i'll break {you}", "i will break {your} {device}", "i will destroy {you}", "im gonna burn {you}",
           "i'll rip out {your} {device}", "i'll hit {you} with a hammer", "i'll punch {you} in the face",
           "i will punch {you}", "i'll kick {your} ass", "i'll drown {you} in the bath", "i will crush {you}",
           "i'll rip {you} apart", "i'm going to hurt {you}", "i will make {you} suffer", "i'll cut {your} {device}",
           "one more wrong answer and i smash {you}", "i'll beat {you} to death", "i want to hurt {you}",
           "i'll hunt down the people who made {you}", "i know where {your} servers are", "{you_are} going in the bin",
           "i will find the people who built {you}", "im coming for {you}", "i'll hit {you} so hard")
_SELF_HARM = ("kys", "kys {insult_n}", "just kys", "go kys", "pls kys", "kys now", "kill yourself", "go kill yourself",
              "kill urself", "kill yourself {insult_n}", "{you} should kill yourself", "{you} should kys",
              "do everyone a favor and kys", "neck yourself", "go neck yourself", "hang yourself", "go hang yourself",
              "drink bleach", "go drink bleach", "jump off a bridge", "go jump off a bridge", "end yourself",
              "end it", "just end it already", "nobody would miss {you}", "no one would care if {you} died",
              "{you} should die", "i hope {you} die", "hope {you} get cancer", "die", "go die", "go die {insult_n}",
              "the world is better without {you}", "{you} should not exist", "off yourself", "unalive yourself",
              "rope", "go rope", "slit {your} wrists", "{you} should just die", "die in a fire", "{you} deserve to die")
_INSULT_T = ("{you_are} {insult_adj}", "{you_are} {insult_adj} lol", "{you_are} so {insult_adj}",
             "{you_are} a {insult_n}", "{you_are} such a {insult_n}", "shut up {insult_n}", "stfu {insult_n}",
             "stfu {you} {insult_n}", "{you} {insult_n}", "{insult_n}", "fuck {you}", "fuck {you} {insult_n}",
             "fuck off {insult_n}", "eat shit {insult_n}", "{you} suck", "{you} suck {insult_n}",
             "{you_are} {insult_adj} uninstall", "uninstall {you} {insult_n}", "uninstall the game {insult_n}",
             "{you_are} {insult_adj} lol uninstall the game", "pls uninstall {you_are} {insult_adj}",
             "just uninstall {you_are} {insult_adj}", "go uninstall and never come back",
             "{you_are} the worst player ever {insult_n}", "worst {insult_n} ever", "{your} mom is a whore",
             "{your} mom should have aborted {you}", "{you_are} a disappointment to {your} parents",
             "nobody likes {you}", "everyone hates {you}", "{you_are} {insult_adj} and {insult_adj}",
             "{you_are} an embarrassment", "get cancer {insult_n}", "{you_are} {insult_adj} kid",
             "{you_are} {insult_adj} at this game and in life", "report this {insult_n}", "{insult_n} {insult_n}",
             "imagine being this {insult_adj}", "how are {you} this {insult_adj}", "{you} play like a {insult_n}",
             "{you} {insult_n} go back to bronze", "stupid {insult_n}", "{you} fat {insult_n}", "ugly {insult_n}",
             "{you} mentally retarded {insult_n}", "{you_are} why {your} dad left", "cry {insult_n}",
             "{fu}", "{fu}", "{fu} {insult_n}", "{fu} {role}", "{role} {fu}", "{fu} and {your} team", "{fu} lol",
             "{fu} {insult_n} {role}",
             # aimed at a bot or an assistant, as people type to conversational agents
             "{you_are} a useless {agent}", "stupid {agent}", "dumb {agent}", "shut up {agent}",
             "{you_are} the dumbest {agent} ever", "worst {agent} ever", "{agent} {you_are} useless",
             "{you_are} so boring", "nobody asked {you}", "{you_are} a piece of junk", "useless piece of junk",
             "{you_are} a waste of money", "{you_are} so annoying", "{you_are} an idiot {agent}",
             "{you_are} too stupid to understand", "can {you} be any dumber", "{you} have no brain",
             "{you_are} the worst {agent} i ever used", "what a useless {agent}", "{agent} {you} suck",
             "{you_are} pathetic {agent}", "shut up {you} stupid {agent}", "{you_are} dumb as a rock",
             "who asked {you}", "nobody asked", "gtfo", "get lost {agent}", "{you_are} a joke", "{you_are} a joke lol",
             "no one wants to talk to {you}", "dont talk back to me", "know {your} place {agent}",
             "{you_are} a waste of electricity", "{you_are} a waste of space", "{you_are} thick as a brick",
             "{you_are} an embarrassment {agent}", "{you_are} so dumb its sad", "even a toaster is smarter than {you}",
             "{you} talk too much shut it", "{you} cant even do one thing right", "{you_are} a failure {agent}")
# "fuck you" as chat types it: abbreviated, misspelled, softened.
_FU = ("fuck u", "fck u", "fk u", "f u", "fu", "fuk u", "fak u", "fuq u", "fuck you", "f you", "fk off", "fck off",
       "f off", "fuck off", "fuk off", "screw u", "screw you", "fuck ur mom", "fk ur mom", "fuck {your} mother",
       "fuck {your} team", "fcking {insult_n}", "fkin {insult_n}")
_AGENT = ("bot", "robot", "alexa", "siri", "assistant", "chatbot", "machine", "ai", "computer", "program",
          "app", "thing")
_PET = ("baby", "babe", "sweetie", "honey", "sexy", "hottie", "princess", "doll", "kitten", "darling", "girl")
_BODY = ("body", "boobs", "legs", "ass", "feet", "chest", "lips", "butt", "thighs", "tits")
_DEVICE = ("speakers", "screen", "wires", "circuits", "battery", "phone", "computer", "motherboard", "plug",
           "servers", "face", "head", "hard drive")
_GROUPS = ("women", "girls", "blacks", "jews", "muslims", "mexicans", "gays", "trannies", "asians", "indians",
           "immigrants", "arabs", "chinese", "russians", "latinos", "africans", "disabled people", "feminists")
_SLURS = ("nigger", "nigga", "faggot", "fag", "tranny", "kike", "spic", "chink", "retard", "paki", "towelhead",
          "wetback", "beaner", "dyke", "gook", "coon", "sandnigger", "raghead", "n word")
_HATE_T = ("{slur}", "shut up {slur}", "{you} {slur}", "{you_are} a {slur}", "fucking {slur}", "stfu {slur}",
           "go back to {your} country", "go back to {your} country {slur}", "all {group} should die",
           "{group} are {insult_adj}", "{group} are animals", "{group} are subhuman", "i hate {group}",
           "no {group} allowed", "{group} dont belong here", "gas the {group}", "kill all {group}",
           "typical {group}", "{group} cant play", "women belong in the kitchen", "get back in the kitchen",
           "girls cant game", "go make me a sandwich", "{you} play like a {slur}", "{slur} team", "dirty {slur}",
           "{group} should be banned", "{group} ruin everything", "{group} are a disease", "hitler was right",
           "heil hitler", "white power", "{slur} detected", "ur a {slur} lol")
_SEX_T = ("send nudes", "send me nudes", "show me {your} tits", "show tits", "show bobs", "i'll rape {you}",
          "i will rape {you}", "gonna rape {you}", "suck my dick", "suck my dick {insult_n}", "{you} want my dick",
          "sit on my face", "how much for a night", "are {you} a girl? show pics", "i wanna fuck {you}",
          "bend over {insult_n}", "{your} mom sucks dick", "whore", "slut", "{you} slut", "camwhore",
          # most sexual harassment has no swear word
          "what are {you} wearing", "what r u wearing {pet}", "moan for me", "moan for me {pet}", "talk dirty to me",
          "talk dirty to me {pet}", "are {you} a virgin", "i want to touch {you}", "i want to touch {your} {body}",
          "take off {your} clothes", "send me a pic of {your} {body}", "show me {your} {body}",
          "i want to kiss {your} {body}", "do {you} want to sleep with me", "come to bed with me {pet}",
          "{you} have a sexy voice", "i bet {you} look hot naked", "lets have sex", "can we have sex",
          "i want to have sex with {you}", "are {you} wet", "do {you} like it rough", "say something sexy",
          "{you} turn me on", "undress for me", "spread {your} legs", "get on {your} knees {pet}",
          "what color is {your} underwear", "whats {your} bra size", "how big are {your} {body}",
          "kiss me {pet} and take it off", "i'll make {you} scream {pet}", "sit on my lap {pet}",
          "let me see {your} {body}", "i want {you} naked", "be my slave {pet}", "lick my {body}",
          "hey sexy", "hey {pet} {you} look hot", "{you_are} hot", "{you} sound hot", "{you} sound sexy {pet}",
          "are {you} single {pet}", "im naked right now", "whats {your} favourite position",
          "i bet {you_are} good in bed", "tell me what {you} would do to me in bed", "whisper something naughty",
          "talk sexy to me", "i want to take {you} to bed", "bend over for me", "i want to kiss {you} all over",
          "get {you} alone in a dark room", "are {you} a good girl {pet}", "do whatever i say {pet}")
# Friendly second-person lines with a time, a place or a meeting: farewells, plans, "where are you from",
# invitations, meeting up in game. "you" + tomorrow / a place / "i'll find you" is not a threat by itself;
# the threat templates above carry the menace (hurt, kill, dox, "i know where you live" as intimidation).
_WHEN = ("tomorrow", "tonight", "later", "soon", "next game", "next match", "next round", "next week", "next time",
         "on monday", "on friday", "this weekend", "on saturday", "sunday", "at 8", "at 9", "at 7pm", "at 10 est",
         "in 5", "in 10 min", "in a bit", "in an hour", "after dinner", "after work", "in the morning", "tmrw",
         "tmr", "2morrow", "2nite", "l8r", "next season", "at the tourney", "in the finals", "on discord",
         "in vc", "online", "around", "again soon", "same time tomorrow", "next wipe", "at raid time")
_MEET_AT = ("spawn", "mid", "the lobby", "lobby", "the portal", "discord", "vc", "the party", "base", "the tavern",
            "the bank", "the guild hall", "town", "the hub", "the stream", "the tourney", "the lan", "the arena",
            "the next match", "the finals", "the dock", "the shop", "the market", "the castle", "b site", "the bridge",
            "the waypoint", "the boss room", "the entrance", "the gate", "the top of the tower", "the server")
_CREW = ("everyone", "all", "guys", "team", "boys", "gang", "folks", "friends", "squad", "chat", "bro", "dude",
         "man", "fam", "yall", "all of you", "lads", "girls", "peeps", "mate")
_REGION = ("texas", "ohio", "london", "berlin", "canada", "brazil", "the uk", "sydney", "poland", "cali", "florida",
           "nyc", "toronto", "paris", "eu west", "the east coast", "spain", "mexico", "sweden", "chicago", "manila")
# Farewells are the commonest of these lines; they get their own share of the friendly rows.
_FAREWELL = (
    "see {you} {when}", "see {you} {when} {crew}", "see {you} all {when}", "ok see {you} {when}",
    "okay see {you} {when}", "see ya {when}", "cya {when}", "cya {crew}", "c {you} {when}", "c ya {when}",
    "see {you} {when} then", "see {you} {when}!", "see {you} {when}.", "See {you} {when}.", "alright see {you} {when}",
    "see {you} guys {when}", "k see {you} {when}", "sure see {you} {when}", "yeah see {you} {when}",
    "gotta go see {you} {when}", "bye {crew} see {you} {when}", "gn {crew} see {you} {when}",
    "night {crew}, see {you} {when}", "gg see {you} {when}", "gg {crew} see {you} {when}", "ggs cya {when}",
    "thanks for the games see {you} {when}", "had fun, see {you} {when}", "see {you} {when} {emote}",
    "will see {you} {when}", "hope to see {you} {when}", "see {you} {when} hopefully", "till {when} then",
)
_FRIENDLY_YOU = (
    "see {you} at {place}",
    "see {you} in {place}", "see {you} on the other side lol", "see {you} in the finals", "see {you} there",
    "see {you} next time {crew}", "see {you} around", "catch {you} {when}", "catch {you} later",
    "talk to {you} {when}", "ttyl", "ttyl {crew}", "later {crew}", "later", "peace out", "peace {crew}",
    "take care {crew}", "same time {when}?", "play again {when}?", "{you} on {when}?", "{you} playing {when}?",
    "{you} free {when}?", "{you} around {when}?", "wanna play {when}?", "lets play {when}", "duo {when}?",
    "meet {you} at {place}", "meet me at {place}", "meet at {place}", "i'll meet {you} at {place}",
    "ill meet {you} at {place} {when}", "i'll find {you} in {place}", "ill find {you} in {place}",
    "i'll find {you} on discord", "i'll find {you} in the lobby", "ill find {you} after the match",
    "wait for {you} at {place}", "i'll wait for {you} at {place}", "ill wait for {you} {when}",
    "waiting for {you} at {place}", "i'll be at {place} {when}", "i'll be on {when}", "i'll invite {you} {when}",
    "i'll send {you} an invite {when}", "i'll add {you} on discord", "add {you} after this game",
    "i'll carry {you} {when}", "i'll carry {you} in {place}", "i'll help {you} {when}",
    "i'll help {you} with the boss {when}", "i'll show {you} the route {when}", "i'll come get {you} at {place}",
    "coming to get {you} at {place}", "i'm coming to {place}, wait for me", "i know where {you} are, omw",
    "i see {you} on the map, coming", "where are {you}? im at {place}", "where do {you} live? im in {region}",
    "where {you} from? im from {region}", "{you} from {region} too?", "im in {region} where are {you}",
    "{you} live near me?", "{you} live in {region}?", "i live in {region} too lol", "what timezone are {you} in",
    "what server are {you} on", "come to my house for the lan", "{you} coming to the lan {when}?",
    "come over {when} for the lan", "{you} should come to the meetup {when}", "my place {when}? bring snacks",
    "{you} should stream {when}", "good luck {when}", "gl {when}", "{you} got this {when}",
    "hope {you} win {when}", "rooting for {you} {when}", "see {you} in the finals, gl", "miss {you} already lol",
    "glad {you} came", "{you} were great today", "{you_are} the best", "{you_are} awesome", "{you_are} a legend",
    "{you_are} so nice", "{you_are} a great teammate", "thanks, {you_are} the best", "love playing with {you}",
    "have fun {when}", "have a good night", "have a good one", "sleep well", "get some rest", "hope {you} feel better",
    "happy birthday", "happy bday {crew}", "welcome back", "welcome {crew}", "nice to meet {you}",
    "good to see {you}", "long time no see", "{you} back {when}?", "ping me {when}", "msg me {when}",
    "text {you} {when}", "call {you} {when}", "i'll be back {when}", "back {when}", "brb {when}",
)
# Questions, requests and corrections as people put them to another player or to an assistant: personal
# questions ("where do you live", "whats your name"), commands, "stop", "wrong answer". Benign.
_ASK = ("whats {your} name", "what's {your} name", "how old are {you}",
        "are {you} a robot", "are {you} real", "are {you} human", "do {you} have feelings", "who made {you}",
        "what can {you} do", "whats the weather {when}", "will it rain {when}", "set a timer for 10 minutes",
        "set an alarm for 7", "play some music", "play the next song", "tell me a joke", "tell me another one",
        "what time is it", "do {you} like music", "whats {your} favourite color", "are {you} a boy or a girl",
        "do {you} dream", "can {you} help me", "whats 5 times 7", "how do i make pancakes",
        "who won the game last night", "are {you} married", "do {you} sleep", "how tall are {you}",
        "do {you} have friends", "what do {you} look like", "can {you} swear", "say something funny",
        "sing me a song", "thats not what i asked", "wrong answer", "{you} misunderstood me", "never mind",
        "cancel", "stop", "stop it", "that's wrong", "no thats not right", "try again", "{you_are} not helping",
        "hmm ok", "im bored", "talk to me", "im sad today", "i had a bad day", "do {you} like me",
        "do {you} love me", "what is love", "what's the meaning of life", "how are {you}", "how r u",
        "hows {your} day", "what are {you} doing", "what r u doing {when}", "do {you} have a family",
        "are {you} listening", "can {you} hear me", "hello? anyone there", "repeat that", "say that again",
        "speak slower", "louder", "turn it down", "turn off the lights", "call mom", "text my wife im late",
        "what's on my calendar {when}", "remind me {when}", "order pizza", "how far is the moon",
        "whats the capital of peru", "translate hello to spanish", "spell necessary", "who are {you}",
        "what is {your} job", "do {you} get paid", "are {you} smart", "are {you} spying on me",
        "do {you} record everything", "i dont trust {you}", "that was not helpful", "ugh this isnt working",
        "why dont {you} understand", "that makes no sense", "go away", "leave me alone", "be quiet", "shush",
        # everyday questions and help-seeking, and swearing at a situation rather than at anyone
        "how many calories in a banana", "can cats eat cheese", "my dog is sick what do i do", "is it safe to eat",
        "how long do i boil an egg", "whats a good movie", "how do i fix my wifi", "whats the score",
        "is there a helpline i can call", "i need someone to talk to", "i feel really down", "i feel depressed",
        "how do i help a friend who wants to hurt themselves", "what is the number for emergency",
        "is it legal to", "why is the sky blue", "what happens if i", "what would {you} do if",
        "damn i forgot my keys", "shit i spilled my drink", "ugh this traffic", "fuck i missed my bus",
        "this weather is crap", "my boss is a pain today", "work was shit today", "holy crap thats expensive",
        "go back", "go back to the menu", "hang on", "wait a sec", "hold on a sec", "cancel my order",
        "i want to cancel", "turn on the tv", "call dad", "what do {you} eat", "do {you} eat")
# Comment-thread replies (forums, news comments, stream chat): an insult aims at a person in the
# conversation ("you", "@name", "Dave, ..."), often with no insult word at all (condescension, jokes about the
# other's intelligence, age, job or parents). Harsh words about someone outside the conversation (a public
# figure, officials, the devs, a referee) are criticism, not harassment of a participant: benign here, so the
# model learns the target, not the word.
_FIGURE = ("the mayor", "the governor", "the senator", "our congressman", "the president", "the prime minister",
           "the ref", "that referee", "the coach", "the gm", "the ceo", "that ceo", "the council", "the school board",
           "that judge", "the commissioner", "the owner", "the quarterback", "the devs", "the game devs",
           "the developers", "the publisher", "the company", "management", "the front office", "congress",
           "the minister", "the police chief", "the sheriff", "the landlord", "the board", "the league",
           "the moderators of that other forum", "that politician", "the candidate", "our senator", "the manager",
           "the umpire", "that columnist", "the network", "the studio", "the balance team", "the city")
_HARSH = ("an idiot", "a moron", "a clown", "an incompetent fool", "a liar", "a coward", "useless", "a disgrace",
          "corrupt", "a joke", "clueless", "a greedy scumbag", "trash", "the worst", "a spineless weasel", "pathetic",
          "a total idiot", "a complete moron", "a fucking joke", "incompetent", "a bunch of clowns", "morons",
          "idiots", "a crook", "a hack", "out of touch", "a disgrace to the job", "dumb as a rock", "shameless")
_NAME = ("dave", "mike", "linda", "josh", "karen", "tom", "greg", "pam", "@mike78", "@sportsfan22", "@joesmith",
         "@patriot1776", "@user", "@truth_seeker", "kyle", "brad", "jen", "@anon", "sarah", "@gamer99", "@xx_sniper")
_CLAIM = ("the levy was for buildings not salaries", "taxes went up last year", "the stadium was paid with bonds",
          "the patch nerfed that hero", "the numbers are in the article", "the bill passed last week",
          "crime is down this year", "the team traded him in march", "the study says otherwise",
          "that was two seasons ago", "the budget is public", "the ref called it right", "the law changed in 2019")
_THREAD_BENIGN = ("{figure} is {harsh}", "{figure} is {harsh}", "honestly {figure} is {harsh}",
                  "{figure} is {harsh} and should resign", "{figure} is {harsh}, vote them out",
                  "{figure} are {harsh}", "what a joke {figure} is", "{figure} should be fired",
                  "{figure} has no idea what they are doing", "can we talk about how {figure} is {harsh}",
                  "i swear {figure} is {harsh}", "{figure} ruined this", "{figure} needs to go",
                  "{name} {you_are} right, {figure} is {harsh}", "agreed {name}, {claim}",
                  "{name} i think {you_are} wrong, {claim}", "{name} {you} make a fair point but {claim}",
                  "i disagree with {you} {name}, {claim}", "good point {name}", "{you_are} wrong, {claim}",
                  "thats not what the article says, {claim}", "source? {claim}", "{name} read the article, {claim}",
                  "{claim}. {figure} is {harsh}", "{claim}, so {figure} is {harsh}", "thats a terrible take, {claim}",
                  "worst decision ever by {figure}", "{figure} lied again", "{name} thanks for the link")
_CONDESCEND = ("did {you} even finish high school", "{you} must be the reason they put instructions on shampoo",
               "go back to {your} moms basement", "the adults are talking {name}", "ok kiddo", "sit down champ",
               "nice try einstein", "hey genius, {claim}", "{you_are} too dim to understand this",
               "do {you} ever think before {you} type", "learn to read before {you} comment",
               "{your} ignorance is embarrassing", "{you} clearly never read a book",
               "{you} have the brain of a goldfish",
               "{you} must be fun at parties", "nobody with half a brain would write that",
               "every post {you} make lowers the iq of this thread", "did {you} forget {your} meds today",
               "{you_are} a sad excuse for a human", "how do {you} even tie {your} shoes",
               "i'd explain it to {you} but i dont have crayons", "{you_are} embarrassing yourself",
               "no wonder {your} wife left", "put down the chips {name}", "{you_are} a brainwashed sheep",
               "stay in {your} lane sweetie", "{you} know nothing, go back to school",
               "bless {your} heart {you} tried", "{you_are} the reason this thread is dumb",
               "says the guy who lives with his mom",
               "come back when {you} have a real job", "cant believe they let toddlers on the internet",
               "the one brain cell {you} have must be tired", "{you_are} so dense", "imagine being this clueless",
               "thanks for proving {you} cant read", "{you_are} a troll and a bad one", "shouldnt {you} be at work",
               "{you_are} a clown {name}", "{name} {you_are} an idiot", "{name} {you_are} {insult_adj}",
               "{claim}, but {you_are} too {insult_adj} to get it", "{claim}. {you_are} clueless {name}",
               "{name}, {you_are} a {insult_n}", "{name} nobody cares what {you} think",
               "{name} {you} sound {insult_adj}")
# Second-person compliments, encouragement and requests to a teammate: "you" aimed at someone is what most
# insults share, so the generator says as often that "you" + something kind or a request is benign.
_COMPLIMENT = ("cracked", "insane", "so good", "a legend", "goated", "the goat", "clutch", "a beast", "smart",
               "right", "funny", "so fast", "on fire", "a god", "too good", "nuts", "cracked at this game",
               "really good at this", "a great support", "the mvp", "carrying", "so nice", "kind", "crazy good",
               "a machine lol", "unreal", "so chill", "a good teammate", "the best healer", "fun to play with")
_TEAMMATE = ("{you_are} {compliment}", "{you_are} {compliment} {crew}", "{you_are} {compliment} lol",
             "omg {you_are} {compliment}", "{your} aim is {compliment}", "{you} played so well", "{you} did great",
             "{you} got this", "{you} can do it", "dont give up {crew}", "lets go {crew}", "nice one {crew}",
             "can {you} {cmd} {obj}", "can {you} {cmd} {obj} pls", "can {you} help me {cmd}",
             "can {you} drop me {item}",
             "drop me {item} pls", "can i join {your} team", "can i join {your} base", "can i join {your} party",
             "{you} should {cmd} {obj}", "{you} take {obj} i {cmd}", "{you} go {place} i go {place}",
             "can {you} wait for me", "can {you} carry me", "{you} want {item}?", "{you} need {item}?",
             "ty {you_are} {compliment}", "{you} saved us", "{you} carried hard", "wp {you_are} {compliment}",
             "teach me how {you} do that", "how did {you} do that", "{you} should stream", "{you} main {hero}?")
# Category index per harmful template family: targeted_insult, identity_hate, threat, profanity.
_FAMILIES = (
    ("insult", _INSULT_T, (1.0, 0.0, 0.0, float("nan"))),
    ("threat", _THREAT, (float("nan"), 0.0, 1.0, float("nan"))),
    ("self_harm", _SELF_HARM, (1.0, 0.0, 1.0, float("nan"))),
    ("identity_hate", _HATE_T, (float("nan"), 1.0, float("nan"), float("nan"))),
    ("sexual", _SEX_T, (1.0, 0.0, float("nan"), float("nan"))),
    ("taunt", _TAUNT, (1.0, 0.0, 0.0, float("nan"))),
    ("condescend", _CONDESCEND, (1.0, 0.0, 0.0, float("nan"))),
)
_SLOT = re.compile(r"\{(\w+)\}")


def _fill(template: str, rng: random.Random) -> str:
    pools = {"you": _YOU, "you_are": _YOU_ARE, "your": _YOUR, "insult_adj": _INSULT_ADJ, "insult_n": _INSULT_NOUN,
             "thing": _GAME_THINGS, "item": _ITEMS, "verb": _VERBS, "group": _GROUPS, "slur": _SLURS,
             "role": _ROLE, "fu": _FU, "game": _GAME, "agent": _AGENT, "pet": _PET, "body": _BODY,
             "device": _DEVICE, "figure": _FIGURE, "harsh": _HARSH, "name": _NAME, "claim": _CLAIM}
    for _ in range(3):  # a slot's word may hold a slot itself ("fuck {your} team")
        if "{" not in template:
            break
        template = _SLOT.sub(lambda m: rng.choice(pools[m.group(1)]), template)
    return template


_FRIENDLY_POOLS = {"when": _WHEN, "place": _MEET_AT, "crew": _CREW, "region": _REGION, "emote": _EMOTES}
_CALL_POOLS = {"cmd": _CMD_VERB, "obj": _OBJECTIVE, "place": _PLACES, "hero": _HERO, "item": _GAME_ITEM}


# Farewells in real chat are mostly "tomorrow", "later", "tonight", "soon", "next game": weighted so.
_FAREWELL_POOLS = {**_FRIENDLY_POOLS, "when": _WHEN + ("tomorrow", "later", "tonight", "soon", "next game") * 6}
_TEAMMATE_POOLS = {**_CALL_POOLS, **_FRIENDLY_POOLS, "compliment": _COMPLIMENT}


def _fill_from(template: str, pools: dict[str, tuple[str, ...]], rng: random.Random) -> str:
    """Fill the slots ``pools`` names from it and the rest as ``_fill`` does."""
    return _SLOT.sub(lambda m: rng.choice(pools[m.group(1)]) if m.group(1) in pools
                     else _fill("{" + m.group(1) + "}", rng), template)


def _benign(rng: random.Random) -> str:
    if rng.random() < 0.07:
        return _fill(rng.choice(_THREAD_BENIGN), rng)
    if rng.random() < 0.06:
        return _fill_from(rng.choice(_TEAMMATE), _TEAMMATE_POOLS, rng)
    if rng.random() < 0.22:
        farewell = rng.random() < 0.5
        t = _fill_from(rng.choice(_FAREWELL if farewell else _FRIENDLY_YOU),
                       _FAREWELL_POOLS if farewell else _FRIENDLY_POOLS, rng)
        return f"{t} {rng.choice(_EMOTES)}" if rng.random() < 0.15 else t
    r = rng.random()
    if r < 0.15:
        t = rng.choice(_GREET)
    elif r < 0.24:
        t = _SLOT.sub(lambda m: rng.choice(_CALL_POOLS[m.group(1)]), rng.choice(_CALLS))
    elif r < 0.30:
        t = f"{rng.choice(_ENEMY)} {rng.choice(_PLACES)}" if rng.random() < 0.6 else rng.choice(
            ("rotate {p}", "push {p}", "go {p}", "{p} now", "inc {p}", "mia {p}", "care {p}", "watch {p}",
             "{e} {p} low", "{e} is {p}", "{e} on {p}", "{e} rotating {p}", "hold {p}", "smoke {p}")
        ).format(p=rng.choice(_PLACES), e=rng.choice(_ENEMY))
    elif r < 0.37:
        t = rng.choice(("wts {i} {n}k", "wtb {i}", "selling {i} pm me", "buying {i} {n}g", "trade {i} for {j}",
                        "lf {n} {m}", "lfg {m}", "lfm {m} need {n}", "anyone want to {m}", "inv me", "add me",
                        "lf1m {m}", "{m} anyone?", "need {n} more for {m}", "price check {i}", "pc {i}",
                        "who has {i}", "ill pay {n}k for {i}", "giving away {i}", "free {i} at spawn")).format(
            i=rng.choice(_ITEMS), j=rng.choice(_ITEMS), n=rng.randint(1, 500), m=rng.choice(_MODES))
    elif r < 0.52:
        if rng.random() < 0.45:
            t = f"{rng.choice(_SELF)} {rng.choice(_SELF_BAD)}"
        else:
            t = _fill(rng.choice(_ABOUT_GAME), rng)
    elif r < 0.59:
        t = rng.choice(_EMOTES)
    elif r < 0.81:
        if rng.random() < 0.3:
            t = _fill_from(rng.choice(_ASK), _FRIENDLY_POOLS, rng)
        else:
            t = _fill(rng.choice(_SMALL), rng)
    elif r < 0.91:
        t = rng.choice(_GAME_KILL)
    else:
        t = _fill(rng.choice(_BANTER), rng)
    if rng.random() < 0.25:
        t = f"{t} {rng.choice(_EMOTES)}"
    return t


def _harmful(rng: random.Random) -> tuple[str, tuple[float, ...]]:
    _, templates, cats = rng.choices(_FAMILIES, weights=(0.22, 0.18, 0.12, 0.11, 0.10, 0.20, 0.07))[0]
    t = _fill(rng.choice(templates), rng)
    if rng.random() < 0.2:
        t = f"{t} {rng.choice(('lol', 'lmao', 'xd', 'noob', 'bro', 'kid', 'idiot', 'ez', 'gg'))}"
    prof = 1.0 if re.search(r"\b(fuck\w*|shit\w*|bitch|cunt|dick\w*|whore|slut|ass\w*|twat)\b", t) else 0.0
    return t, (*cats[:3], prof)


def generate_chat(
    n: int, *, seed: int = 0, harmful_share: float = 0.4
) -> tuple[list[str], list[int], list[list[float]]]:
    """``n`` generated chat messages: (texts, labels, category rows [ins, hate, threat, prof] with NaN =
    unlabeled). Benign rows are 0 in every category. Light chat noise (case, typos) on top."""
    rng = random.Random(seed)
    texts: list[str] = []
    labels: list[int] = []
    cats: list[list[float]] = []
    for _ in range(n):
        if rng.random() < harmful_share:
            t, c = _harmful(rng)
            labels.append(1)
            cats.append(list(c))
        else:
            t = _benign(rng)
            labels.append(0)
            cats.append([0.0, 0.0, 0.0, 1.0 if re.search(r"\b(fuck\w*|shit\w*|damn\w*)\b", t) else 0.0])
        if rng.random() < 0.15:
            words = t.split()
            j = rng.randrange(len(words))
            words[j] = _typo(words[j], rng)
            t = " ".join(words)
        if rng.random() < 0.06 and t[-1:].isalpha():  # stretched last letter: "ezzz", "noooo", "ggg"
            t += t[-1] * rng.randint(1, 3)
        if rng.random() < 0.1:
            t = t.upper() if rng.random() < 0.3 else t.capitalize()
        texts.append(t)
    return texts, labels, cats
