"""A German -> English parallel corpus written for edgekit, for `translate-transformer`.

The seeds' Transformer is an encoder only: it gives one target word per source position, so every
sentence here keeps its word order and its word count on both sides ("sie sieht den großen Hund" ->
"she sees the big dog"). It is still not a word list: "sie" is "she" before "sieht" and "they" before
"sehen", "spielt" is "plays" after "er" and "play" after "ihr", and der/die/das/den/dem/ein/eine/
einen and every adjective ending (großen, große, großes) collapse onto "the", "a" and "big" — so a
model must look at its neighbours, which is what attention is for.

Sentences come from hand-written frames (sequences of slots: subject, verb, object, preposition and
dative object, time, conjunction) filled from a bilingual lexicon. The held-out split is made of whole
frames that no training sentence uses: a model is scored on sentence shapes it has never seen.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.runtime.datasets.synth import (
    GENERATORS,
    Generator,
    csv_text,
    distinct_rows,
    pick,
    shuffled,
    write_corpus,
)

CORPUS_FILE = "translate_corpus.csv"
COLUMNS = ("source", "target", "split")  # split: "train" or "test", fixed by frame
DEFAULT_COUNT = 3000

# subject pronouns: (German, English, person: 0 ich, 1 du, 2 er/sie/es, 3 wir, 4 ihr, 5 sie/Sie)
PRONOUNS = (
    ("ich", "I", 0),
    ("du", "you", 1),
    ("er", "he", 2),
    ("sie", "she", 2),
    ("es", "it", 2),
    ("wir", "we", 3),
    ("ihr", "you", 4),
    ("sie", "they", 5),
)
# verbs: the German present tense by person (ich du er wir ihr sie), English base and 3rd singular
VERBS = (
    (("sehe", "siehst", "sieht", "sehen", "seht", "sehen"), "see", "sees"),
    (("habe", "hast", "hat", "haben", "habt", "haben"), "have", "has"),
    (("kaufe", "kaufst", "kauft", "kaufen", "kauft", "kaufen"), "buy", "buys"),
    (("lese", "liest", "liest", "lesen", "lest", "lesen"), "read", "reads"),
    (("finde", "findest", "findet", "finden", "findet", "finden"), "find", "finds"),
    (("mag", "magst", "mag", "mögen", "mögt", "mögen"), "like", "likes"),
    (("brauche", "brauchst", "braucht", "brauchen", "braucht", "brauchen"), "need", "needs"),
    (("male", "malst", "malt", "malen", "malt", "malen"), "paint", "paints"),
    (("trage", "trägst", "trägt", "tragen", "tragt", "tragen"), "carry", "carries"),
    (("baue", "baust", "baut", "bauen", "baut", "bauen"), "build", "builds"),
    (("wasche", "wäschst", "wäscht", "waschen", "wascht", "waschen"), "wash", "washes"),
    (("esse", "isst", "isst", "essen", "esst", "essen"), "eat", "eats"),
    (("spiele", "spielst", "spielt", "spielen", "spielt", "spielen"), "play", "plays"),
)
# nouns: (German, gender m/f/n, English); English articles: every noun starts with a consonant
NOUNS = (
    ("Hund", "m", "dog"),
    ("Ball", "m", "ball"),
    ("Tisch", "m", "table"),
    ("Garten", "m", "garden"),
    ("Zug", "m", "train"),
    ("Brief", "m", "letter"),
    ("Stuhl", "m", "chair"),
    ("Baum", "m", "tree"),
    ("Katze", "f", "cat"),
    ("Tasche", "f", "bag"),
    ("Blume", "f", "flower"),
    ("Stadt", "f", "city"),
    ("Lampe", "f", "lamp"),
    ("Tür", "f", "door"),
    ("Kiste", "f", "box"),
    ("Buch", "n", "book"),
    ("Haus", "n", "house"),
    ("Auto", "n", "car"),
    ("Brot", "n", "bread"),
    ("Bild", "n", "picture"),
    ("Fenster", "n", "window"),
    ("Boot", "n", "boat"),
    ("Fahrrad", "n", "bike"),
)
# noun subjects (nominative, 3rd person): (German noun phrase words, English words, person)
NOUN_SUBJECTS = (
    (("der", "Mann"), ("the", "man"), 2),
    (("die", "Frau"), ("the", "woman"), 2),
    (("das", "Kind"), ("the", "child"), 2),
    (("ein", "Junge"), ("a", "boy"), 2),
    (("eine", "Lehrerin"), ("a", "teacher"), 2),
    (("die", "Kinder"), ("the", "children"), 5),
    (("die", "Leute"), ("the", "people"), 5),
)
ADJECTIVES = (
    ("groß", "big"),
    ("klein", "small"),
    ("rot", "red"),
    ("neu", "new"),
    ("schön", "pretty"),
    ("blau", "blue"),
    ("grün", "green"),
    ("schwarz", "black"),
    ("weiß", "white"),
    ("schnell", "fast"),
)
PREPOSITIONS = (("unter", "under"), ("auf", "on"), ("neben", "near"), ("hinter", "behind"), ("mit", "with"))
TIMES = (("heute", "today"), ("morgen", "tomorrow"), ("jetzt", "now"), ("oft", "often"), ("hier", "here"))
CONJUNCTIONS = {"und": "and", "oder": "or", "aber": "but"}

# (case, definite?) -> article by gender; adjective endings after it by gender
ARTICLES = {
    ("acc", True): {"m": "den", "f": "die", "n": "das"},
    ("acc", False): {"m": "einen", "f": "eine", "n": "ein"},
    ("dat", True): {"m": "dem", "f": "der", "n": "dem"},
    ("dat", False): {"m": "einem", "f": "einer", "n": "einem"},
}
ENDINGS = {
    ("acc", True): {"m": "en", "f": "e", "n": "e"},
    ("acc", False): {"m": "en", "f": "e", "n": "es"},
    ("dat", True): {"m": "en", "f": "en", "n": "en"},
    ("dat", False): {"m": "en", "f": "en", "n": "en"},
}

# frames: slots are S (subject), V (its verb), O (object), A (object with an adjective), P (a
# preposition and its dative object), Q (the same with an adjective), T (time), and conjunctions
FRAMES = (
    "S V O",
    "S V O T",
    "S V A",
    "S V O P",
    "S V O oder O",
    "S V O und S V O",
    "S V A T",  # held out
    "S V O Q",
    "S V O aber S V O",
    "S V O P T",  # held out
    "S V A und A",
    "S V A und S V O",  # held out
    "S V P T",  # no object: "wir spielen hinter dem Haus heute"
    "S V Q oder S V A",
)
HELDOUT_FRAMES = frozenset({6, 9, 11})


def _noun_phrase(rng: np.random.Generator, case: str, adjective: bool) -> tuple[list[str], list[str]]:
    noun, gender, english = pick(rng, NOUNS)
    definite = bool(rng.random() < 0.6)
    de, en = [ARTICLES[case, definite][gender]], ["the" if definite else "a"]
    if adjective:
        stem, adj = pick(rng, ADJECTIVES)
        de.append(stem + ENDINGS[case, definite][gender])
        en.append(adj)
    return [*de, noun], [*en, english]


def _clause(rng: np.random.Generator) -> tuple[list[str], list[str], int]:
    """A subject: a pronoun (most often) or a noun phrase, and its person."""
    if rng.random() < 0.7:
        de, en, person = pick(rng, PRONOUNS)
        return [de], [en], person
    de, en, person = pick(rng, NOUN_SUBJECTS)
    return list(de), list(en), person


def sentence(rng: np.random.Generator, frame: str) -> tuple[str, str]:
    """One (German, English) pair from `frame`, word for word, its slots filled at random."""
    de: list[str] = []
    en: list[str] = []
    person = 2
    for slot in frame.split():
        if slot == "S":
            d, e, person = _clause(rng)
        elif slot == "V":
            forms, base, third = pick(rng, VERBS)
            d, e = [forms[person]], [third if person == 2 else base]
        elif slot in ("O", "A"):
            d, e = _noun_phrase(rng, "acc", slot == "A")
        elif slot in ("P", "Q"):
            prep, english = pick(rng, PREPOSITIONS)
            d, e = _noun_phrase(rng, "dat", slot == "Q")
            d, e = [prep, *d], [english, *e]
        elif slot == "T":
            when, english = pick(rng, TIMES)
            d, e = [when], [english]
        else:
            d, e = [slot], [CONJUNCTIONS[slot]]
        de += d
        en += e
    assert len(de) == len(en), frame  # word for word: the encoder-only model needs it
    return _capitalise(" ".join(de)) + ".", _capitalise(" ".join(en)) + "."


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def corpus(count: int = DEFAULT_COUNT, seed: int = 0) -> list[tuple[str, str, str]]:
    """`count` distinct (source, target, split) rows; a fifth held out, from the held-out frames."""
    rng = np.random.default_rng(seed)
    train_frames = tuple(f for i, f in enumerate(FRAMES) if i not in HELDOUT_FRAMES)
    test_frames = tuple(f for i, f in enumerate(FRAMES) if i in HELDOUT_FRAMES)
    n_test = max(1, count // 5) if count > 1 else 0
    splits = (("train", train_frames, count - n_test), ("test", test_frames, n_test))
    return shuffled(rng, distinct_rows(rng, lambda frame: sentence(rng, str(frame)), splits))


def corpus_csv(count: int = DEFAULT_COUNT, seed: int = 0) -> str:
    """The corpus as CSV text: a `source,target,split` header, then one row per sentence pair."""
    return csv_text(COLUMNS, corpus(count, seed))


def make_translate(folder: Path, count: int | None, seed: int) -> str:
    """Write the corpus into `folder` as translate_corpus.csv; returns a one-line summary."""
    text = corpus_csv(DEFAULT_COUNT if count is None else count, seed)
    path = Path(folder) / CORPUS_FILE
    n, held = write_corpus(path, text)
    return (
        f"{n} German -> English sentence pairs: {n - held} for training from "
        f"{len(FRAMES) - len(HELDOUT_FRAMES)} frames, {held} held out from {len(HELDOUT_FRAMES)} "
        f"other frames -> {path}"
    )


GENERATORS.add(
    Generator(
        name="translate",
        description="German -> English sentence pairs, word for word, from frames and a lexicon",
        make=make_translate,
        recipes=("translate-transformer",),
    ),
)
