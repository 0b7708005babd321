"""A small labelled text corpus written for edgekit: short sentences in four topics, for `text-lstm`.

Sentences come from hand-written frames ("Did you hear that the {n1} {v}?") whose slots are filled
from per-topic word lists (nouns and verb phrases, some in French, Spanish, Russian, Chinese or
as emoji) and from neutral fillers shared by every topic (people, times, opinions, reactions), with
now and then a noun of another topic as a distractor. The held-out split is made of whole frames
that no training sentence uses, so a model is scored on sentence shapes it has never seen: it must
have learned the topic words, not memorised sentences. The shipped `runtime/datasets/data/text_corpus.csv`
is this generator's output with its defaults (`edgekit data make text --out DIR` makes it again).
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

CORPUS_FILE = "text_corpus.csv"
COLUMNS = ("text", "label", "split")  # split: "train" or "test", fixed by frame
DEFAULT_COUNT = 1600

# per topic: nouns (the subject of a frame), verb phrases (what it did), extras (an emoji or a
# foreign word that belongs to the topic)
TOPICS: dict[str, dict[str, tuple[str, ...]]] = {
    "food": {
        "nouns": (
            "soup",
            "pasta",
            "café",
            "crème brûlée",
            "croissant",
            "ramen",
            "sushi",
            "curry",
            "bakery",
            "chef",
            "recipe",
            "dessert",
            "menu",
            "jalapeño",
            "omelette",
            "dumplings",
            "sauce",
            "bread",
            "kitchen",
            "restaurant",
            "cheese",
            "smoothie",
            "кофе",
            "борщ",
            "咖啡",
            "拉面",
            "pâtisserie",
            "tiramisù",
            "pizza",
            "salad",
        ),
        "verbs": (
            "tasted amazing",
            "was too salty",
            "burned in the oven",
            "was served cold",
            "smelled of garlic",
            "needed more spice",
            "was baked fresh",
            "sold out by noon",
            "was cooked slowly",
            "came with extra cheese",
            "was full of butter",
            "had too much sugar",
        ),
        "extras": ("🍕", "🍜", "🥐", "🍣", "☕", "咖啡", "кофе", "bon appétit", "délicieux"),
    },
    "sport": {
        "nouns": (
            "match",
            "goal",
            "striker",
            "referee",
            "stadium",
            "tournament",
            "coach",
            "penalty",
            "league",
            "final",
            "team",
            "season",
            "marathon",
            "racket",
            "goalkeeper",
            "tennis",
            "football",
            "basketball",
            "rugby",
            "cricket",
            "hockey",
            "volleyball",
            "fútbol",
            "футбол",
            "足球",
            "derby",
            "medal",
            "sprint",
            "athlete",
            "cyclist",
        ),
        "verbs": (
            "won",
            "lost",
            "scored twice",
            "was sent off",
            "kicked off late",
            "went to extra time",
            "ended in a draw",
            "broke the record",
            "trained hard",
            "made the playoffs",
            "missed the penalty",
            "took the gold medal",
        ),
        "extras": ("⚽", "🏀", "🎾", "🏆", "🥇", "футбол", "足球", "¡golazo!", "allez les bleus"),
    },
    "tech": {
        "nouns": (
            "laptop",
            "phone",
            "software",
            "update",
            "battery",
            "processor",
            "app",
            "server",
            "keyboard",
            "browser",
            "router",
            "wifi",
            "database",
            "screen",
            "charger",
            "compiler",
            "algorithm",
            "smartwatch",
            "printer",
            "password",
            "компьютер",
            "电脑",
            "手机",
            "naïve Bayes model",
            "GPU",
            "firmware",
            "cloud backup",
            "Python script",
            "website",
            "operating system",
        ),
        "verbs": (
            "crashed again",
            "installed overnight",
            "needed a reboot",
            "ran out of memory",
            "lost the connection",
            "downloaded slowly",
            "was hacked",
            "froze during the upload",
            "synced all the files",
            "got a security patch",
            "overheated",
            "deleted my settings",
        ),
        "extras": ("💻", "📱", "🖥️", "⌨️", "компьютер", "电脑", "🔋", "🤖", "mise à jour"),
    },
    "weather": {
        "nouns": (
            "rain",
            "snow",
            "storm",
            "fog",
            "thunder",
            "drizzle",
            "heatwave",
            "breeze",
            "forecast",
            "sky",
            "clouds",
            "temperature",
            "umbrella",
            "wind",
            "humidity",
            "frost",
            "hail",
            "sunshine",
            "rainbow",
            "blizzard",
            "дождь",
            "снег",
            "雨",
            "台风",
            "météo",
            "tornado",
            "monsoon",
            "ice",
            "flood",
            "weather",
        ),
        "verbs": (
            "poured all day",
            "cleared up by noon",
            "froze the roads",
            "blew the fences down",
            "kept everyone indoors",
            "flooded the streets",
            "melted by lunch",
            "was warmer than expected",
            "turned the sky grey",
            "lasted all night",
            "dropped below zero",
            "soaked the garden",
        ),
        "extras": ("🌧️", "☀️", "⛈️", "❄️", "🌈", "дождь", "雨", "🌪️", "quel temps"),
    },
}
LABELS = tuple(sorted(TOPICS))

# neutral fillers, shared by every topic: they carry no label
WHO = (
    "my neighbour",
    "our teacher",
    "Zoë",
    "José",
    "my sister",
    "the new intern",
    "Dmitri",
    "Chloé",
    "my grandmother",
    "a naïve tourist",
    "everyone at work",
    "Сергей",
    "小明",
    "Björn",
)
WHEN = (
    "yesterday",
    "last weekend",
    "this morning",
    "on Sunday",
    "after lunch",
    "tonight",
    "earlier today",
    "last night",
    "in the summer",
    "every Friday",
    "à midi",
    "вчера",
)
FEEL = (
    "amazing",
    "strange",
    "boring",
    "wonderful",
    "awful",
    "unbelievable",
    "perfect",
    "disappointing",
    "weird",
    "fantastic",
    "très bizarre",
    "странно",
)
REACT = ("😀", "🙂", "😅", "😱", "🙃", "!!", "", "...", "lol", "😂")

# sentence frames; the ones at HELDOUT_FRAMES make the held-out split, and only it
FRAMES = (
    "{When}, the {n1} {v}.",
    "{Who} told me the {n1} {v} {when}.",
    "I can't believe the {n1} {v} again {react}",
    "Did you hear that the {n1} {v}? {Who} was there.",
    "The {n1} and the {n2} were {feel} {when}.",
    "Honestly, the {n1} {v}, and {who} just laughed.",
    "Nobody expected the {n1} to be so {feel} {x}",
    "{Who} keeps talking about the {n1}, even while holding a {d}.",
    "What a {feel} {n1} {x}",
    "My {d} was fine, but the {n1} {v}.",
    "According to {who}, the {n1} matters more than any {d}.",
    "We spent the whole evening on the {n1} {x}",
    "{x} {Who} says the {n1} {v}.",
    "Is the {n1} always this {feel}? Asking for {who}.",
    "First the {n1}, then the {n2}: {feel} day {react}",
    "The {n1} {v} while I was looking for my {d}.",
    "Breaking news: the {n1} {v} {when}!",
    "I wrote a long post about the {n1} and the {n2}.",
    "{When} I learned that the {n1} {v}, {feel}.",
    "Can someone explain why the {n1} {v}? {x}",
    "Ten minutes in, the {n1} {v} and {who} gave up on the {n2}.",
    "Forget the {d}, the {n1} is what everyone remembers.",
    "Le {n1}? {Feel}. The {n2} too {x}",
    "Still thinking about how the {n1} {v} {react}",
)
HELDOUT_FRAMES = frozenset(range(2, len(FRAMES), 4))  # 6 of 24 frames, spread over the list


def sentence(rng: np.random.Generator, topic: str, frame: str) -> str:
    """One sentence of `topic` from `frame`, its slots filled at random."""
    words = TOPICS[topic]
    n1 = pick(rng, words["nouns"])
    n2 = pick(rng, tuple(n for n in words["nouns"] if n != n1))
    other = pick(rng, tuple(t for t in LABELS if t != topic))
    fill = {
        "n1": n1,
        "n2": n2,
        "v": pick(rng, words["verbs"]),
        "x": pick(rng, words["extras"]),
        "d": pick(rng, TOPICS[other]["nouns"]),  # a distractor from another topic
        "who": pick(rng, WHO),
        "when": pick(rng, WHEN),
        "feel": pick(rng, FEEL),
        "react": pick(rng, REACT),
    }
    fill.update({k.capitalize(): v[:1].upper() + v[1:] for k, v in list(fill.items())})
    text = " ".join(frame.format(**fill).split())  # an empty {react} leaves no double space
    roll = rng.random()
    if roll < 0.1:
        text = text.lower()
    elif roll < 0.15:
        text = text.replace(n1, n1.upper(), 1)
    return text


def corpus(count: int = DEFAULT_COUNT, seed: int = 0) -> list[tuple[str, str, str]]:
    """`count` distinct (text, label, split) rows, balanced over the topics; a quarter held out."""
    rng = np.random.default_rng(seed)
    train_frames = [f for i, f in enumerate(FRAMES) if i not in HELDOUT_FRAMES]
    test_frames = [f for i, f in enumerate(FRAMES) if i in HELDOUT_FRAMES]
    rows: list[tuple[str, ...]] = []
    seen: set[str] = set()
    per_topic = [count // len(LABELS) + (i < count % len(LABELS)) for i in range(len(LABELS))]
    for topic, n in zip(LABELS, per_topic):
        n_test = n // 4
        splits = (("train", train_frames, n - n_test), ("test", test_frames, n_test))
        rows += distinct_rows(rng, lambda frame, t=topic: (sentence(rng, t, frame), t), splits, seen)
    return shuffled(rng, rows)


def corpus_csv(count: int = DEFAULT_COUNT, seed: int = 0) -> str:
    """The corpus as CSV text: a `text,label,split` header, then one row per sentence."""
    return csv_text(COLUMNS, corpus(count, seed))


def make_text(folder: Path, count: int | None, seed: int) -> str:
    """Write the corpus into `folder` as text_corpus.csv; returns a one-line summary."""
    text = corpus_csv(DEFAULT_COUNT if count is None else count, seed)
    path = Path(folder) / CORPUS_FILE
    n, held = write_corpus(path, text)
    return (
        f"{n} sentences in {len(LABELS)} topics ({', '.join(LABELS)}): {n - held} "
        f"for training from {len(FRAMES) - len(HELDOUT_FRAMES)} frames, {held} held out from "
        f"{len(HELDOUT_FRAMES)} other frames -> {path}"
    )


GENERATORS.add(
    Generator(
        name="text",
        description="short sentences in four topics (food, sport, tech, weather), some non-ASCII",
        make=make_text,
        recipes=("text-lstm",),
    ),
)
