"""Deterministic synthetic sample data in the hub's own row formats.

The hubs are unreachable offline, so the embedded default runs on this data. It is built so that transfer is
possible and measurable: the sentences share names, digits, cities and organisations across languages (anchors, as
in real multilingual corpora) and an aligned lexicon; the English intermediate data has the same reasoning in other
wording, and SST-2-style data is unrelated single-sentence sentiment. `make sample-data` rewrites data/sample/ from
this module.

Tasks (English train/validation; `test` splits are multilingual and carry a `language` field):
  xnli (facebook/xnli), mnli (nyu-mll/glue mnli), sst2 (nyu-mll/glue sst2)  -- unchanged since the first version
  squad (rajpurkar/squad), xquad (google/xquad: parallel across languages, same ids, no title)
  panx (google/xtreme PAN-X.<lang>), ccg (CCGbank-style {"tokens", "tags"}, local-only)
  tatoeba (google/xtreme tatoeba.<iso3>), bucc18 (mining corpus rows + "test.pairs" gold (source id, target id))
  hellaswag (Rowan/hellaswag: label is a string "0".."3")
  code: codexglue_defect, codexglue_clone, codexglue_codesearch (CodeXGLUE), mbpp, humaneval, mbxp (python,
  javascript, typescript, java, cpp, go), humaneval_xl and humaneval_xl_<lang> (prompts in en/de/es/fr/ru) — see
  `code_tasks`; their texts are not in `corpus` (the tiny encoder's tokenizer), `code_corpus` lists them

`write_corpora` writes the tiny models' tokenizer corpora that ship in xstilts/models/corpus/ (`corpus` and
`causal_code_corpus`): the runtime reads those files and does not import this module.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from xstilts.io import atomic_dir


SAMPLE_LANGUAGES = ("en", "de", "es", "fr", "ru")
NAMES = ["Anna", "Ben", "Carla", "David", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas", "Kemal", "Lina",
         "Marco", "Nora", "Omar", "Paula", "Quentin", "Rosa", "Samir", "Tara"]
# Object and hobby words per language, aligned by index (a tiny bilingual lexicon).
OBJECTS = {
    "en": ["apples", "books", "cats", "cars", "chairs", "pens", "boxes", "cups", "shoes", "keys"],
    "de": ["Äpfel", "Bücher", "Katzen", "Autos", "Stühle", "Stifte", "Kisten", "Tassen", "Schuhe", "Schlüssel"],
    "es": ["manzanas", "libros", "gatos", "coches", "sillas", "bolígrafos", "cajas", "tazas", "zapatos", "llaves"],
    "fr": ["pommes", "livres", "chats", "voitures", "chaises", "stylos", "boîtes", "tasses", "chaussures", "clés"],
    "ru": ["яблок", "книг", "кошек", "машин", "стульев", "ручек", "коробок", "чашек", "туфель", "ключей"],
}
HOBBIES = {
    "en": ["music", "football", "chess", "painting", "cooking"],
    "de": ["Musik", "Fußball", "Schach", "Malerei", "Kochen"],
    "es": ["la música", "el fútbol", "el ajedrez", "la pintura", "la cocina"],
    "fr": ["la musique", "le football", "les échecs", "la peinture", "la cuisine"],
    "ru": ["музыку", "футбол", "шахматы", "живопись", "готовку"],
}
# Templates: has (n objects), owns (paraphrase of has), none (has no objects), likes (unrelated fact),
# has_place (has, with a place in front).
TEMPLATES = {
    "en": {"has": "{name} has {n} {obj}.", "owns": "{name} owns {n} {obj}.", "none": "{name} has no {obj}.",
           "likes": "{name} likes {hobby}.", "has_place": "In the {where}, {name} has {n} {obj}."},
    "de": {"has": "{name} hat {n} {obj}.", "owns": "{name} besitzt {n} {obj}.", "none": "{name} hat keine {obj}.",
           "likes": "{name} mag {hobby}.", "has_place": "Im {where} hat {name} {n} {obj}."},
    "es": {"has": "{name} tiene {n} {obj}.", "owns": "{name} posee {n} {obj}.", "none": "{name} no tiene {obj}.",
           "likes": "A {name} le gusta {hobby}.", "has_place": "En {where}, {name} tiene {n} {obj}."},
    "fr": {"has": "{name} a {n} {obj}.", "owns": "{name} possède {n} {obj}.", "none": "{name} n'a pas de {obj}.",
           "likes": "{name} aime {hobby}.", "has_place": "Dans {where}, {name} a {n} {obj}."},
    "ru": {"has": "У {name} есть {n} {obj}.", "owns": "{name} владеет {n} {obj}.", "none": "У {name} нет {obj}.",
           "likes": "{name} любит {hobby}.", "has_place": "В {where} у {name} есть {n} {obj}."},
}
PLACES = {"en": ["house", "office", "garden"], "de": ["Haus", "Büro", "Garten"],
          "es": ["la casa", "la oficina", "el jardín"], "fr": ["la maison", "le bureau", "le jardin"],
          "ru": ["доме", "офисе", "саду"]}

ENTAILMENT, NEUTRAL, CONTRADICTION = 0, 1, 2


def _nli_example(rng: random.Random, lang: str) -> tuple[str, str, int]:
    t = TEMPLATES[lang]
    name, other = rng.sample(NAMES, 2)
    k = rng.randrange(len(OBJECTS[lang]))
    obj = OBJECTS[lang][k]
    n = rng.randint(2, 9)
    if rng.random() < 0.4:  # some premises carry a place, so length and word order vary
        premise = t["has_place"].format(name=name, n=n, obj=obj, where=rng.choice(PLACES[lang]))
    else:
        premise = t["has"].format(name=name, n=n, obj=obj)
    label = rng.choice([ENTAILMENT, NEUTRAL, CONTRADICTION])
    if label == ENTAILMENT:
        hypothesis = t[rng.choice(["has", "owns"])].format(name=name, n=n, obj=obj)
    elif label == CONTRADICTION:
        if rng.random() < 0.5:
            hypothesis = t["none"].format(name=name, obj=obj)
        else:
            m = rng.choice([x for x in range(2, 10) if x != n])
            hypothesis = t[rng.choice(["has", "owns"])].format(name=name, n=m, obj=obj)
    else:
        if rng.random() < 0.5:
            hypothesis = t["likes"].format(name=name, hobby=rng.choice(HOBBIES[lang]))
        else:
            hypothesis = t["has"].format(name=other, n=n, obj=obj)
    return premise, hypothesis, label


MNLI_TEMPLATES = {
    "has": ["{name} bought {n} {obj} yesterday.", "Yesterday {name} picked up {n} {obj} at the market."],
    "hyp_same": ["{name} bought {n} {obj}.", "{name} got {n} {obj}."],
    "hyp_none": ["{name} bought no {obj}.", "{name} did not get any {obj}."],
    "hyp_other": ["{name} enjoys {hobby}.", "{other} bought {n} {obj}."],
}


def _mnli_example(rng: random.Random) -> tuple[str, str, int]:
    name, other = rng.sample(NAMES, 2)
    obj = rng.choice(OBJECTS["en"])
    n = rng.randint(2, 9)
    premise = rng.choice(MNLI_TEMPLATES["has"]).format(name=name, n=n, obj=obj)
    label = rng.choice([ENTAILMENT, NEUTRAL, CONTRADICTION])
    if label == ENTAILMENT:
        hyp = rng.choice(MNLI_TEMPLATES["hyp_same"]).format(name=name, n=n, obj=obj)
    elif label == CONTRADICTION:
        m = rng.choice([x for x in range(2, 10) if x != n])
        hyp = (rng.choice(MNLI_TEMPLATES["hyp_none"]).format(name=name, obj=obj) if rng.random() < 0.5
               else rng.choice(MNLI_TEMPLATES["hyp_same"]).format(name=name, n=m, obj=obj))
    else:
        hyp = rng.choice(MNLI_TEMPLATES["hyp_other"]).format(name=name, other=other, n=n, obj=obj,
                                                             hobby=rng.choice(HOBBIES["en"]))
    return premise, hyp, label


SST_POSITIVE = ["wonderful", "moving", "brilliant", "charming", "funny", "beautiful", "gripping", "delightful"]
SST_NEGATIVE = ["dull", "boring", "clumsy", "tedious", "awful", "bland", "messy", "forgettable"]
SST_TEMPLATES = ["the film is {adj} .", "a {adj} and {adj2} story .", "{name} gives a {adj} performance .",
                 "an often {adj} movie .", "the script feels {adj} from start to finish ."]


def _sst_example(rng: random.Random) -> tuple[str, int]:
    label = rng.randint(0, 1)
    words = SST_POSITIVE if label else SST_NEGATIVE
    adj, adj2 = rng.sample(words, 2)
    return rng.choice(SST_TEMPLATES).format(adj=adj, adj2=adj2, name=rng.choice(NAMES)), label


# ---- shared lexicon for the tasks added after XNLI/MNLI/SST-2 ---------------------------------------------------
# Names, surnames, cities and organisations are written the same way in every language: they are the anchors
# (as named entities and digits are in real multilingual corpora).
SURNAMES = ["Smith", "Weber", "Garcia", "Dubois", "Petrov", "Rossi", "Novak", "Silva", "Keller", "Moreau", "Berg",
            "Costa"]
CITIES = ["Berlin", "Madrid", "Paris", "Lisbon", "Vienna", "Oslo", "Prague", "Dublin", "New York", "San Diego",
          "Buenos Aires", "Los Angeles", "Hong Kong", "Tel Aviv", "Rio de Janeiro", "Santa Clara"]
ORGS = ["Blue Bank", "Nova Motors", "Atlas Group", "Green Foods", "Delta Air", "Orion Labs", "Polar Energy",
        "Sigma Media", "United Steel Company", "Red River Bank", "Apex Software", "Silver Line Railways"]
LIVES = {"en": "{name} lives in {city}.", "de": "{name} wohnt in {city}.", "es": "{name} vive en {city}.",
         "fr": "{name} habite à {city}.", "ru": "{name} живёт в {city}."}
LANGUAGE_CODES3 = {"en": "eng", "de": "deu", "es": "spa", "fr": "fra", "ru": "rus"}  # google/xtreme tatoeba.<iso3>
PANX_TAGS = ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC")  # google/xtreme PAN-X ClassLabel order
TATOEBA_SAMPLE_LANGUAGES = ("de", "es", "fr", "ru")
BUCC_SAMPLE_LANGUAGES = ("de", "fr", "ru")
# Languages of each multilingual test split (train/validation splits are English only).
# XQuAD has no French (its 11 languages are those of the real dataset), so its sample has none either.
TEST_LANGUAGES = {"xnli": SAMPLE_LANGUAGES, "xquad": tuple(x for x in SAMPLE_LANGUAGES if x != "fr"),
                  "panx": SAMPLE_LANGUAGES, "tatoeba": TATOEBA_SAMPLE_LANGUAGES, "bucc18": BUCC_SAMPLE_LANGUAGES}
# Default sizes of the added tasks (rows per split; per language for test splits). `generate(sizes=...)` overrides
# them per task ({"squad": {"train": 50}}) or scales them all ({"scale": 0.1}).
DEFAULT_SIZES = {
    "squad": {"train": 1000, "validation": 150},
    "xquad": {"test": 100},
    "panx": {"train": 1000, "validation": 150, "test": 100},
    "tatoeba": {"test": 100},
    "bucc18": {"source": 60, "target": 80, "gold": 40},  # per language
    "hellaswag": {"train": 800, "validation": 150},
    "ccg": {"train": 800, "validation": 150},
}


def _fill(template: str, **values) -> tuple[str, dict[str, int]]:
    """Format `template` and return the text with the character offset of each placeholder's value."""
    offsets = {}
    for key in values:
        marker = "{" + key + "}"
        if marker in template:
            offsets[key] = len(template[:template.index(marker)].format(**values))
    return template.format(**values), offsets


def _hex_id(rng: random.Random, seen: set) -> str:
    """A SQuAD-style 24-hex-digit id, unique within `seen`."""
    while True:
        key = f"{rng.getrandbits(96):024x}"
        if key not in seen:
            seen.add(key)
            return key


# ---- extractive QA: squad (English, varied wording) and xquad (parallel, five languages) -------------------------

QA_FACTS = {  # the xquad wording, one template per language and fact kind
    lang: {"has": TEMPLATES[lang]["has"], "likes": TEMPLATES[lang]["likes"], "lives": LIVES[lang]}
    for lang in SAMPLE_LANGUAGES
}
QA_QUESTIONS = {
    "en": {"count": "How many {obj} does {name} have?", "who_has": "Who has {n} {obj}?",
           "what_likes": "What does {name} like?", "who_likes": "Who likes {hobby}?",
           "where": "Where does {name} live?", "who_lives": "Who lives in {city}?"},
    "de": {"count": "Wie viele {obj} hat {name}?", "who_has": "Wer hat {n} {obj}?", "what_likes": "Was mag {name}?",
           "who_likes": "Wer mag {hobby}?", "where": "Wo wohnt {name}?", "who_lives": "Wer wohnt in {city}?"},
    "es": {"count": "¿Qué cantidad de {obj} tiene {name}?", "who_has": "¿Quién tiene {n} {obj}?",
           "what_likes": "¿Qué le gusta a {name}?", "who_likes": "¿A quién le gusta {hobby}?",
           "where": "¿Dónde vive {name}?", "who_lives": "¿Quién vive en {city}?"},
    "fr": {"count": "Combien de {obj} a {name} ?", "who_has": "Qui a {n} {obj} ?",
           "what_likes": "Qu'est-ce que {name} aime ?", "who_likes": "Qui aime {hobby} ?",
           "where": "Où habite {name} ?", "who_lives": "Qui habite à {city} ?"},
    "ru": {"count": "Сколько {obj} у {name}?", "who_has": "У кого есть {n} {obj}?", "what_likes": "Что любит {name}?",
           "who_likes": "Кто любит {hobby}?", "where": "Где живёт {name}?", "who_lives": "Кто живёт в {city}?"},
}
# SQuAD-style English: the same facts and questions in more varied wording (the intermediate/training data).
SQUAD_FACTS = {
    "has": ["{name} has {n} {obj}.", "{name} owns {n} {obj}.", "{name} bought {n} {obj} last week.",
            "There are {n} {obj} in the bag of {name}.", "{name} keeps {n} {obj} at home.",
            "After the trip, {name} had {n} {obj}.", "At the market, {name} picked up {n} {obj}."],
    "likes": ["{name} likes {hobby}.", "{name} is fond of {hobby}.", "{name} spends every weekend on {hobby}.",
              "The favourite hobby of {name} is {hobby}.", "{name} enjoys {hobby} a lot.",
              "Since childhood, {name} has loved {hobby}."],
    "lives": ["{name} lives in {city}.", "{name} moved to {city} two years ago.", "{name} has an apartment in {city}.",
              "The home of {name} is in {city}.", "These days {name} lives and works in {city}."],
}
SQUAD_QUESTIONS = {
    "count": ["How many {obj} does {name} have?", "How many {obj} does {name} own?",
              "What number of {obj} belongs to {name}?", "{name} has how many {obj}?"],
    "who_has": ["Who has {n} {obj}?", "Which person owns {n} {obj}?", "Whose are the {n} {obj}?"],
    "what_likes": ["What does {name} like?", "What is {name} fond of?", "Which hobby does {name} enjoy?"],
    "who_likes": ["Who likes {hobby}?", "Who enjoys {hobby}?", "Which person is fond of {hobby}?"],
    "where": ["Where does {name} live?", "In which city does {name} live?", "Where is the home of {name}?"],
    "who_lives": ["Who lives in {city}?", "Which person lives in {city}?", "Whose home is in {city}?"],
}
QUESTION_KINDS = {"has": (("count", "n"), ("who_has", "name")),  # fact kind -> (question kind, answer field)
                  "likes": (("what_likes", "hobby"), ("who_likes", "name")),
                  "lives": (("where", "city"), ("who_lives", "name"))}


def _qa_plan(rng: random.Random, long: bool) -> tuple[list[tuple], list[tuple]]:
    """A language-independent paragraph: facts (kind, name, value index) and questions (fact index, kind, field).

    Objects, hobbies and cities are drawn without replacement, so every question has exactly one answer."""
    people = rng.sample(NAMES, 6 if long else rng.randint(1, 3))
    objects = rng.sample(range(len(OBJECTS["en"])), len(OBJECTS["en"]))
    hobbies = rng.sample(range(len(HOBBIES["en"])), len(HOBBIES["en"]))
    cities = rng.sample(range(len(CITIES)), len(CITIES))
    facts = []
    for name in people:
        if long:
            kinds = rng.sample(["has", "has", "likes", "lives"], rng.randint(2, 3))
        else:
            kinds = rng.sample(["has", "likes", "lives"], rng.randint(1, 2))
        for kind in kinds:
            if kind == "has" and objects:
                facts.append(("has", name, objects.pop(), rng.randint(2, 9)))
            elif kind == "likes" and hobbies:
                facts.append(("likes", name, hobbies.pop(), None))
            elif kind == "lives" and cities:
                facts.append(("lives", name, cities.pop(), None))
    if not long:  # 2–4 sentences
        while len(facts) < 2:
            facts.append(("has", rng.choice(people), objects.pop(), rng.randint(2, 9)))
        facts = facts[:4]
    # Kinds are drawn without replacement per person, so each lives in one city and likes one hobby (else "Where
    # does X live?" would have two answers).
    rng.shuffle(facts)
    questions = [(i, *rng.choice(QUESTION_KINDS[fact[0]])) for i, fact in enumerate(facts)]
    # "How many apples does Anna have?" is unambiguous; "Who has 3 apples?" too (objects are unique per paragraph).
    rng.shuffle(questions)
    return facts, questions[:rng.randint(1, 3)]


def _fact_values(fact: tuple, lang: str) -> dict:
    kind, name, k, n = fact
    if kind == "has":
        return {"name": name, "obj": OBJECTS[lang][k], "n": n}
    if kind == "likes":
        return {"name": name, "hobby": HOBBIES[lang][k]}
    return {"name": name, "city": CITIES[k]}


def _render_paragraph(facts, questions, lang: str, rng: random.Random | None = None):
    """Context and (question, answer text, answer_start) triples; `rng` picks the varied SQuAD wording (English)."""
    sentences, starts, pos = [], [], 0
    for fact in facts:
        template = rng.choice(SQUAD_FACTS[fact[0]]) if rng else QA_FACTS[lang][fact[0]]
        text, offsets = _fill(template, **_fact_values(fact, lang))
        sentences.append(text)
        starts.append({key: pos + off for key, off in offsets.items()})
        pos += len(text) + 1
    context = " ".join(sentences)
    out = []
    for i, qkind, field in questions:
        values = _fact_values(facts[i], lang)
        template = rng.choice(SQUAD_QUESTIONS[qkind]) if rng else QA_QUESTIONS[lang][qkind]
        question = template.format(**values)
        answer, start = str(values[field]), starts[i][field]
        assert context[start:start + len(answer)] == answer
        out.append((question, answer, start, facts[i], starts[i]))
    return context, out


def _squad(rng: random.Random, n: int, split: str, seen: set) -> list[dict]:
    rows = []
    while len(rows) < n:
        facts, questions = _qa_plan(rng, long=rng.random() < 0.25)
        context, qas = _render_paragraph(facts, questions, "en", rng)
        title = "_".join(dict.fromkeys(f[1] for f in facts))
        for question, answer, start, fact, fact_starts in qas[:n - len(rows)]:
            texts, starts = [answer], [start]
            if split == "validation":  # the hub's dev set has several annotators' answers (often repeated)
                if fact[0] == "has" and answer == str(fact[3]):  # "3" and "3 apples" are both acceptable spans
                    longer = context[start:fact_starts["obj"] + len(OBJECTS["en"][fact[2]])]
                    texts, starts = [answer, longer, answer], [start, start, start]
                else:
                    texts, starts = [answer] * 3, [start] * 3
            rows.append({"id": _hex_id(rng, seen), "title": title, "context": context, "question": question,
                         "answers": {"text": texts, "answer_start": starts}})
    return rows


def _xquad(rng: random.Random, n: int) -> list[dict]:
    """Parallel across languages, as on the hub: the same paragraphs and question ids in every language."""
    plans, count, seen = [], 0, set()
    while count < n:
        facts, questions = _qa_plan(rng, long=rng.random() < 0.25)
        questions = questions[:n - count]
        plans.append((facts, questions, [_hex_id(rng, seen) for _ in questions]))
        count += len(questions)
    rows = []
    for lang in TEST_LANGUAGES["xquad"]:
        for facts, questions, ids in plans:
            context, qas = _render_paragraph(facts, questions, lang)
            for qid, (question, answer, start, _, _) in zip(ids, qas):
                rows.append({"id": qid, "context": context, "question": question,
                             "answers": {"text": [answer], "answer_start": [start]}, "language": lang})
    return rows


# ---- PAN-X named entities ---------------------------------------------------------------------------------------

PANX_TEMPLATES = {
    "en": ["{PER} works for {ORG} in {LOC} .", "{PER} lives in {LOC} .", "{ORG} opened an office in {LOC} .",
           "{PER} met {PER2} in {LOC} .", "{PER} founded {ORG} .", "{LOC}", "{ORG} ( {LOC} )",
           "The {ORG} team played in {LOC} yesterday .", "{PER} , born in {LOC} , joined {ORG} .",
           "According to {PER} , {ORG} will hire more people .", "{PER} and {PER2} moved from {LOC} to {LOC2} .",
           "'' {PER} '' is a manager at {ORG} .", "{ORG} bought a factory near {LOC} in 2009 ."],
    "de": ["{PER} arbeitet für {ORG} in {LOC} .", "{PER} wohnt in {LOC} .", "{ORG} eröffnete ein Büro in {LOC} .",
           "{PER} traf {PER2} in {LOC} .", "{PER} gründete {ORG} .", "{LOC}", "{ORG} ( {LOC} )",
           "{PER} und {PER2} zogen von {LOC} nach {LOC2} ."],
    "es": ["{PER} trabaja para {ORG} en {LOC} .", "{PER} vive en {LOC} .", "{ORG} abrió una oficina en {LOC} .",
           "{PER} conoció a {PER2} en {LOC} .", "{PER} fundó {ORG} .", "{LOC}", "{ORG} ( {LOC} )",
           "{PER} y {PER2} se mudaron de {LOC} a {LOC2} ."],
    "fr": ["{PER} travaille pour {ORG} à {LOC} .", "{PER} habite à {LOC} .", "{ORG} a ouvert un bureau à {LOC} .",
           "{PER} a rencontré {PER2} à {LOC} .", "{PER} a fondé {ORG} .", "{LOC}", "{ORG} ( {LOC} )",
           "{PER} et {PER2} ont déménagé de {LOC} à {LOC2} ."],
    "ru": ["{PER} работает в {ORG} в {LOC} .", "{PER} живёт в {LOC} .", "{ORG} открыла офис в {LOC} .",
           "{PER} встретил {PER2} в {LOC} .", "{PER} основал {ORG} .", "{LOC}", "{ORG} ( {LOC} )",
           "{PER} и {PER2} переехали из {LOC} в {LOC2} ."],
}


def _panx_example(rng: random.Random, lang: str) -> dict:
    template = rng.choice(PANX_TEMPLATES[lang])
    people = rng.sample(NAMES, 2)
    places = rng.sample(CITIES, 2)
    entities = {
        "PER": ("PER", people[0].split() + ([rng.choice(SURNAMES)] if rng.random() < 0.6 else [])),
        "PER2": ("PER", people[1].split() + ([rng.choice(SURNAMES)] if rng.random() < 0.6 else [])),
        "ORG": ("ORG", rng.choice(ORGS).split()),
        "LOC": ("LOC", places[0].split()),
        "LOC2": ("LOC", places[1].split()),
    }
    tokens, tags = [], []
    for word in template.split():
        if word.startswith("{") and word.endswith("}"):
            kind, words = entities[word[1:-1]]
            tokens += words
            tags += [PANX_TAGS.index(f"B-{kind}")] + [PANX_TAGS.index(f"I-{kind}")] * (len(words) - 1)
        else:
            tokens.append(word)
            tags.append(0)
    return {"tokens": tokens, "ner_tags": tags, "langs": [lang] * len(tokens)}


# ---- sentence retrieval: tatoeba and bucc18 ---------------------------------------------------------------------

def _fact(rng: random.Random, kinds=("has", "owns", "none", "likes", "lives", "has_place")) -> tuple:
    """A language-independent single-sentence fact; its key says which sentences are translations of each other."""
    kind = rng.choice(kinds)
    return (kind, rng.choice(NAMES), rng.randrange(len(OBJECTS["en"])), rng.randint(2, 9),
            rng.randrange(len(HOBBIES["en"])), rng.randrange(len(CITIES)), rng.randrange(len(PLACES["en"])))


def _fact_key(fact: tuple) -> tuple:
    kind, name, obj, n, hobby, city, place = fact
    return {"has": ("has", name, obj, n), "owns": ("has", name, obj, n), "none": ("none", name, obj),
            "likes": ("likes", name, hobby), "lives": ("lives", name, city),
            "has_place": ("has_place", name, obj, n, place)}[kind]


def _fact_sentence(fact: tuple, lang: str) -> str:
    kind, name, obj, n, hobby, city, place = fact
    if kind == "lives":
        return LIVES[lang].format(name=name, city=CITIES[city])
    return TEMPLATES[lang][kind].format(name=name, n=n, obj=OBJECTS[lang][obj], hobby=HOBBIES[lang][hobby],
                                        where=PLACES[lang][place])


def _perturb(rng: random.Random, fact: tuple) -> tuple:
    """A similar but non-parallel fact: one detail changed (the number, the person, the object, the place...)."""
    kind, name, obj, n, hobby, city, place = fact
    change = rng.choice(["name", "detail", "kind"])
    if change == "name":
        name = rng.choice([x for x in NAMES if x != name])
    elif change == "kind":
        kind = {"has": "has_place", "owns": "has_place", "has_place": "has", "none": "has", "likes": "lives",
                "lives": "likes"}[kind]
    elif kind in ("has", "owns", "has_place", "none"):
        obj = rng.choice([x for x in range(len(OBJECTS["en"])) if x != obj])
    elif kind == "likes":
        hobby = rng.choice([x for x in range(len(HOBBIES["en"])) if x != hobby])
    else:
        city = rng.choice([x for x in range(len(CITIES)) if x != city])
    return kind, name, obj, n, hobby, city, place


def _tatoeba(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for lang in TATOEBA_SAMPLE_LANGUAGES:
        seen = set()
        while len(seen) < n:
            facts = [_fact(rng)] + ([_fact(rng)] if rng.random() < 0.2 else [])
            key = tuple(_fact_key(f) for f in facts)
            if key in seen:
                continue
            seen.add(key)
            rows.append({"source_sentence": " ".join(_fact_sentence(f, lang) for f in facts),
                         "target_sentence": " ".join(_fact_sentence(f, "en") for f in facts),
                         "source_lang": LANGUAGE_CODES3[lang], "target_lang": "eng", "language": lang})
    return rows


def _bucc(rng: random.Random, n_source: int, n_target: int, n_gold: int) -> tuple[list[dict], list[tuple]]:
    if not 0 < n_gold <= min(n_source, n_target):
        raise ValueError(f"bucc18 sizes: need 0 < gold <= source, target (got {n_gold}, {n_source}, {n_target})")
    rows, pairs = [], []
    for lang in BUCC_SAMPLE_LANGUAGES:
        keys: set = set()

        def new(make):
            while True:
                fact = make()
                if _fact_key(fact) not in keys:
                    keys.add(_fact_key(fact))
                    return fact

        gold = [new(lambda: _fact(rng, ("has", "owns", "likes", "lives", "has_place"))) for _ in range(n_gold)]
        # Distractors: each a near copy of a gold fact with one detail changed, on one side only.
        src_only = [new(lambda: _perturb(rng, rng.choice(gold))) for _ in range(n_source - n_gold)]
        tgt_only = [new(lambda: _perturb(rng, rng.choice(gold))) for _ in range(n_target - n_gold)]
        # Ids are numbered in a shuffled order on each side, so a pair's two ids carry no shared number.
        src_num = rng.sample(range(n_source), n_source)
        tgt_num = rng.sample(range(n_target), n_target)
        sources = [(f"{lang}-{src_num[i]:06d}", _fact_sentence(f, lang)) for i, f in enumerate(gold + src_only)]
        targets = [(f"en-{tgt_num[i]:06d}-{lang}", _fact_sentence(f, "en")) for i, f in enumerate(gold + tgt_only)]
        pairs += sorted((sources[i][0], targets[i][0]) for i in range(n_gold))
        rows += [{"id": i, "language": lang, "side": "source", "sentence": s} for i, s in sorted(sources)]
        rows += [{"id": i, "language": lang, "side": "target", "sentence": s} for i, s in sorted(targets)]
    return rows, pairs


# ---- HellaSwag-style multiple choice ----------------------------------------------------------------------------

# (activity label, where, tool, actions with the tool). The right ending uses the context's activity and tool.
ACTIVITIES = [
    ("Making a cake", "in the kitchen", "mixing bowl", ["pours flour into the {tool} and stirs it.",
                                                         "whisks the eggs in the {tool} until smooth."]),
    ("Playing guitar", "in the living room", "guitar", ["strums a few chords on the {tool}.",
                                                        "tunes the strings of the {tool} carefully."]),
    ("Washing the car", "on the driveway", "hose", ["sprays water on the car with the {tool}.",
                                                   "rinses the soap off the car using the {tool}."]),
    ("Painting a wall", "in the hallway", "paint roller", ["rolls white paint onto the wall with the {tool}.",
                                                          "dips the {tool} into the paint tray."]),
    ("Shoveling snow", "in the front yard", "shovel", ["pushes the snow off the path with the {tool}.",
                                                      "throws a pile of snow aside with the {tool}."]),
    ("Brushing teeth", "in the bathroom", "toothbrush", ["puts toothpaste on the {tool} and brushes.",
                                                        "rinses the {tool} under the tap."]),
    ("Mowing the lawn", "in the garden", "lawn mower", ["pushes the {tool} across the grass.",
                                                       "starts the {tool} and cuts the grass in rows."]),
    ("Playing tennis", "on the tennis court", "racket", ["hits the ball over the net with the {tool}.",
                                                         "serves the ball with the {tool}."]),
    ("Ironing clothes", "in the bedroom", "iron", ["presses the {tool} onto the shirt.",
                                                  "moves the hot {tool} over the sleeves."]),
    ("Chopping wood", "in the backyard", "axe", ["splits a log in half with the {tool}.",
                                                "swings the {tool} down onto the wood."]),
    ("Fishing", "at the lake shore", "fishing rod", ["casts the line of the {tool} into the water.",
                                                    "reels in a fish with the {tool}."]),
    ("Vacuuming the floor", "in the apartment", "vacuum cleaner", ["runs the {tool} over the carpet.",
                                                                  "empties the dust bag of the {tool}."]),
    # Held out of train: the hub's "zeroshot" validation rows come from activities unseen in training.
    ("Sweeping the porch", "on the porch", "broom", ["sweeps the leaves off the steps with the {tool}.",
                                                    "leans the {tool} against the door after sweeping."]),
    ("Crocheting a scarf", "in the sitting room", "crochet hook", ["loops the yarn around the {tool}.",
                                                                  "pulls the wool through with the {tool}."]),
    ("Playing drums", "in the studio", "drumstick", ["taps a fast rhythm on the snare with the {tool}.",
                                                    "twirls the {tool} and hits the cymbal."]),
]
ZEROSHOT_ACTIVITIES = 3  # the last three
PERSONS = [("man", "he"), ("woman", "she"), ("boy", "he"), ("girl", "she"), ("young man", "he"),
           ("older woman", "she")]
HELLASWAG_CTX = ["{A} {person} is standing {place} holding a {tool}.", "{A} {person} arrives {place} carrying a "
                 "{tool}.", "We see {a} {person} {place} with a {tool}.", "{A} {person} picks up a {tool} {place}."]
HELLASWAG_CTX_NO_TOOL = ["{A} {person} is {place}, ready for {activity}.",
                         "{A} {person} explains {activity} to the camera {place}."]
HELLASWAG_CTX_B = ["the {person}", "{pronoun}", "then, the {person}", "after a moment, the {person}"]
ID_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-"


def _hellaswag_example(rng: random.Random, zeroshot: bool) -> dict:
    n_seen = len(ACTIVITIES) - ZEROSHOT_ACTIVITIES
    a = rng.randrange(n_seen, len(ACTIVITIES)) if zeroshot else rng.randrange(n_seen)
    label_text, place, tool, actions = ACTIVITIES[a]
    person, pronoun = rng.choice(PERSONS)
    with_tool = rng.random() < 0.7
    article = "an" if person[0] in "aeiou" else "a"
    ctx_a = rng.choice(HELLASWAG_CTX if with_tool else HELLASWAG_CTX_NO_TOOL).format(
        person=person, place=place, tool=tool, activity=label_text.lower(), a=article, A=article.capitalize())
    right = rng.choice(actions).format(tool=tool)
    # Training rows never mention the held-out activities, not even in wrong endings.
    others = [i for i in range(len(ACTIVITIES) if zeroshot else n_seen) if i != a]
    wrong = []
    if with_tool and rng.random() < 0.5:  # the context's tool with another activity's action
        o = ACTIVITIES[rng.choice(others)]
        wrong.append(rng.choice(o[3]).format(tool=tool))
    for o in rng.sample(others, 3 - len(wrong)):
        wrong.append(rng.choice(ACTIVITIES[o][3]).format(tool=ACTIVITIES[o][2]))
    endings = [right] + wrong
    rng.shuffle(endings)
    label = endings.index(right)
    if rng.random() < 0.15:  # some hub rows have an empty ctx_b and full-sentence endings
        ctx_b, endings = "", [f"{pronoun.capitalize()} {e}" for e in endings]
    else:
        ctx_b = rng.choice(HELLASWAG_CTX_B).format(person=person, pronoun=pronoun)
    return {"activity_label": label_text, "ctx_a": ctx_a, "ctx_b": ctx_b,
            "ctx": f"{ctx_a} {ctx_b}" if ctx_b else ctx_a, "endings": endings,
            "source_id": "activitynet~v_" + "".join(rng.choice(ID_CHARS) for _ in range(11)),
            "split_type": "zeroshot" if zeroshot else "indomain", "label": str(label)}


def _hellaswag(rng: random.Random, n: int, split: str, first_ind: int) -> list[dict]:
    rows = []
    for i in range(n):
        ex = _hellaswag_example(rng, zeroshot=split == "validation" and rng.random() < 0.3)
        rows.append({"ind": first_ind + i, "activity_label": ex["activity_label"], "ctx_a": ex["ctx_a"],
                     "ctx_b": ex["ctx_b"], "ctx": ex["ctx"], "endings": ex["endings"], "source_id": ex["source_id"],
                     "split": "train" if split == "train" else "val", "split_type": ex["split_type"],
                     "label": ex["label"]})
    return rows


# ---- CCG supertagging (CCGbank is LDC-licensed: a local-only format {"tokens", "tags"}) ----------------------------

CCG_N, CCG_NP, CCG_DET, CCG_ADJ = "N", "NP", "NP/N", "N/N"
CCG_TV, CCG_IV, CCG_DTV = "(S\\NP)/NP", "S\\NP", "((S\\NP)/NP)/NP"
CCG_AUX, CCG_ADV, CCG_VPP = "(S\\NP)/(S\\NP)", "(S\\NP)\\(S\\NP)", "((S\\NP)\\(S\\NP))/NP"
CCG_NPP, CCG_REL, CCG_CONJ = "(NP\\NP)/NP", "(NP\\NP)/(S\\NP)", "conj"
CCG_LEX = {
    "pron": ["he", "she"], "det": ["the", "a"], "adj": ["red", "old", "small", "new", "happy", "big"],
    "noun": ["book", "cat", "car", "chair", "pen", "box", "cup", "key", "letter", "song", "soup", "room", "table"],
    "nouns": ["apples", "books", "cats", "cars", "chairs", "pens", "boxes", "cups", "shoes", "keys", "cooks"],
    # "books", "cooks", "paints" are nouns or verbs: the tag depends on the word's role in the sentence.
    "tv": ["likes", "reads", "buys", "sees", "finds", "opens", "books", "cooks", "paints", "wants"],
    "tv_base": ["read", "buy", "see", "find", "open", "book", "cook", "paint"],
    "iv": ["sleeps", "runs", "sings", "laughs", "waits", "walks", "works", "cooks", "paints"],
    "iv_base": ["sleep", "run", "sing", "wait", "work", "cook"],
    "dtv": ["gives", "sends", "shows"], "aux": ["will", "can"], "adv": ["quickly", "slowly", "often", "today"],
    "vpp": ["in", "near", "with"], "npp": ["of", "on", "in"],
}
CCG_TEMPLATES = [  # slots: lexicon class or literal word, each with its supertag
    [("name", CCG_N), ("tv", CCG_TV), ("det", CCG_DET), ("noun", CCG_N), (".", ".")],
    [("name", CCG_N), ("tv", CCG_TV), ("det", CCG_DET), ("adj", CCG_ADJ), ("noun", CCG_N), (".", ".")],
    [("name", CCG_N), ("iv", CCG_IV), (".", ".")],
    [("name", CCG_N), ("iv", CCG_IV), ("adv", CCG_ADV), (".", ".")],
    [("pron", CCG_NP), ("tv", CCG_TV), ("num", CCG_ADJ), ("nouns", CCG_N), (".", ".")],
    [("det", CCG_DET), ("adj", CCG_ADJ), ("noun", CCG_N), ("iv", CCG_IV), ("vpp", CCG_VPP), ("det", CCG_DET),
     ("noun", CCG_N), (".", ".")],
    [("name", CCG_N), ("aux", CCG_AUX), ("tv_base", CCG_TV), ("det", CCG_DET), ("noun", CCG_N), (".", ".")],
    [("pron", CCG_NP), ("aux", CCG_AUX), ("iv_base", CCG_IV), (".", ".")],
    [("name", CCG_N), ("dtv", CCG_DTV), ("name", CCG_N), ("det", CCG_DET), ("noun", CCG_N), (".", ".")],
    [("name", CCG_N), ("tv", CCG_TV), ("det", CCG_DET), ("noun", CCG_N), ("npp", CCG_NPP), ("det", CCG_DET),
     ("noun", CCG_N), (".", ".")],
    [("name", CCG_N), ("and", CCG_CONJ), ("name", CCG_N), ("tv_base", CCG_TV), ("nouns", CCG_N), (".", ".")],
    [("name", CCG_N), ("tv", CCG_TV), ("nouns", CCG_N), (".", ".")],
    [("pron", CCG_NP), ("tv", CCG_TV), ("det", CCG_DET), ("noun", CCG_N), ("that", CCG_REL), ("iv", CCG_IV),
     (".", ".")],
    [("today", "S/S"), (",", ","), ("name", CCG_N), ("iv", CCG_IV), ("vpp", CCG_VPP), ("name", CCG_N), (".", ".")],
]


def _ccg_example(rng: random.Random) -> dict:
    tokens, tags = [], []
    for slot, tag in rng.choice(CCG_TEMPLATES):
        if slot == "name":
            word = rng.choice(NAMES)
        elif slot == "num":
            word = str(rng.randint(2, 9))
        elif slot in CCG_LEX:
            word = rng.choice(CCG_LEX[slot])
        else:
            word = slot
        tokens.append(word)
        tags.append(tag)
    tokens[0] = tokens[0][0].upper() + tokens[0][1:]
    return {"tokens": tokens, "tags": tags}


# ---- the sample data --------------------------------------------------------------------------------------------

def _task_sizes(sizes: dict) -> dict[str, dict[str, int]]:
    scale = float(sizes.get("scale", 1.0))
    out = {}
    for task, defaults in DEFAULT_SIZES.items():
        given = sizes.get(task) or {}
        unknown = set(given) - set(defaults)
        if unknown:
            raise ValueError(f"sizes[{task!r}]: unknown split(s) {sorted(unknown)}; known: {sorted(defaults)}")
        out[task] = {k: int(given[k]) if k in given else max(1, round(v * scale)) for k, v in defaults.items()}
    return out


def generate(seed: int = 13, sizes: dict | None = None) -> dict[str, dict[str, list]]:
    """Return {task: {split: rows}} in the hub's row format (plus `language` on multilingual test rows).

    `sizes`: "train"/"validation"/"test" set XNLI/MNLI/SST-2's sizes (as before); "<task>": {split: n} sets an added
    task's (per language for test splits; bucc18 takes "source", "target", "gold" per language); "scale" multiplies
    every default. `bucc18` also has a "test.pairs" split: the gold (source id, target id) tuples.
    """
    sizes = dict(sizes or {})
    scale = float(sizes.get("scale", 1.0))
    base = {split: int(sizes[split]) if split in sizes else max(1, round(n * scale))
            for split, n in {"train": 1200, "validation": 150, "test": 150}.items()}
    rng = random.Random(seed)
    data: dict[str, dict[str, list]] = {"xnli": {}, "mnli": {}, "sst2": {}}
    for split in ("train", "validation", "test"):
        langs = SAMPLE_LANGUAGES if split == "test" else ("en",)
        rows = []
        for lang in langs:
            for _ in range(base[split]):
                p, h, y = _nli_example(rng, lang)
                rows.append({"premise": p, "hypothesis": h, "label": y, "language": lang})
        data["xnli"][split] = rows
    for split in ("train", "validation"):
        n = base[split]
        data["mnli"][split] = [dict(zip(("premise", "hypothesis", "label"), _mnli_example(rng)), idx=i) for i in range(n)]
        data["sst2"][split] = [dict(zip(("sentence", "label"), _sst_example(rng)), idx=i) for i in range(n)]

    # The added tasks draw from their own generators, so XNLI/MNLI/SST-2 stay exactly as they were.
    n = _task_sizes(sizes)

    def task_rng(task: str) -> random.Random:
        return random.Random(f"{seed}/{task}")  # str seeds hash with SHA-512: stable across runs and processes

    r = task_rng("squad")
    squad_ids: set = set()
    data["squad"] = {split: _squad(r, n["squad"][split], split, squad_ids) for split in ("train", "validation")}
    data["xquad"] = {"test": _xquad(task_rng("xquad"), n["xquad"]["test"])}
    r = task_rng("panx")
    data["panx"] = {split: [_panx_example(r, "en") for _ in range(n["panx"][split])]
                    for split in ("train", "validation")}
    data["panx"]["test"] = [{**_panx_example(r, lang), "language": lang}
                            for lang in SAMPLE_LANGUAGES for _ in range(n["panx"]["test"])]
    data["tatoeba"] = {"test": _tatoeba(task_rng("tatoeba"), n["tatoeba"]["test"])}
    rows, pairs = _bucc(task_rng("bucc18"), n["bucc18"]["source"], n["bucc18"]["target"], n["bucc18"]["gold"])
    data["bucc18"] = {"test": rows, "test.pairs": pairs}
    r = task_rng("hellaswag")
    train = _hellaswag(r, n["hellaswag"]["train"], "train", 0)
    data["hellaswag"] = {"train": train, "validation": _hellaswag(r, n["hellaswag"]["validation"], "validation",
                                                                  len(train))}
    r = task_rng("ccg")
    data["ccg"] = {split: [_ccg_example(r) for _ in range(n["ccg"][split])] for split in ("train", "validation")}
    data.update(code_tasks(seed))  # fixed small sizes; the natural-language tasks' texts above are unchanged
    return data


# ---- code tasks -----------------------------------------------------------------------------------------------------
# Row formats as on the hub: CodeXGLUE defect detection (id, func, target: bool, project, commit_id), clone detection
# (id, id1, id2, func1, func2, label: bool), code search AdvTest (id, repo, path, func_name, original_string, language,
# code, code_tokens, docstring, docstring_tokens, sha, url); MBPP "full" (task_id, text, code, test_list,
# test_setup_code, challenge_test_list); HumanEval (task_id, prompt, canonical_solution, test, entry_point); MBXP
# (task_id, language, prompt, test, entry_point, canonical_solution, description); HumanEval-XL (the same plus
# natural_language). Every generation problem is a working program: prompt + canonical solution + "\n" + test runs
# and passes (Python tests define `check(candidate)`; the loader appends the `check(<entry_point>)` call). Expected
# values in tests are computed by running the reference solution here, so they cannot disagree with it.

CODE_NAMES = ["packet", "frame", "buffer", "header", "record", "segment", "message", "block", "entry", "token",
              "sample", "chunk", "field", "slice", "page", "cell"]
DEFECT_TEMPLATES = [  # (secure, vulnerable) versions of one function: bounds, use after free, index, overflow
    ("int copy_{n}(char *dst, size_t size, const char *src)\n{{\n    size_t len = strlen(src);\n"
     "    if (len >= size)\n        return -1;\n    memcpy(dst, src, len + 1);\n    return 0;\n}}\n",
     "int copy_{n}(char *dst, size_t size, const char *src)\n{{\n    size_t len = strlen(src);\n"
     "    memcpy(dst, src, len + 1);\n    return 0;\n}}\n"),
    ("void release_{n}(struct {n}_ctx *ctx)\n{{\n    free(ctx->buf);\n    ctx->buf = NULL;\n    ctx->len = 0;\n}}\n",
     "void release_{n}(struct {n}_ctx *ctx)\n{{\n    free(ctx->buf);\n    ctx->len = ctx->buf[0];\n}}\n"),
    ("static int get_{n}(const int *arr, int n, int idx)\n{{\n    if (idx < 0 || idx >= n)\n        return -1;\n"
     "    return arr[idx];\n}}\n",
     "static int get_{n}(const int *arr, int n, int idx)\n{{\n    return arr[idx];\n}}\n"),
    ("int *alloc_{n}s(size_t count)\n{{\n    if (count > SIZE_MAX / sizeof(int))\n        return NULL;\n"
     "    return malloc(count * sizeof(int));\n}}\n",
     "int *alloc_{n}s(size_t count)\n{{\n    return malloc(count * sizeof(int));\n}}\n"),
]
CLONE_FAMILIES = [  # variants of one behaviour (clones of each other); {a}, {b} are renamed identifiers
    ["public static int sum(int[] {a}) {{\n    int {b} = 0;\n    for (int i = 0; i < {a}.length; i++) {{\n"
     "        {b} += {a}[i];\n    }}\n    return {b};\n}}\n",
     "public static int total(int[] {a}) {{\n    int {b} = 0;\n    for (int v : {a}) {b} += v;\n    return {b};\n}}\n"],
    ["public static int max(int[] {a}) {{\n    int {b} = {a}[0];\n    for (int v : {a}) {{\n        if (v > {b}) {b} = v;\n"
     "    }}\n    return {b};\n}}\n",
     "public static int largest(int[] {a}) {{\n    return java.util.Arrays.stream({a}).max().getAsInt();\n}}\n"],
    ["public static String reverse(String {a}) {{\n    return new StringBuilder({a}).reverse().toString();\n}}\n",
     "public static String flip(String {a}) {{\n    char[] {b} = {a}.toCharArray();\n"
     "    for (int i = 0, j = {b}.length - 1; i < j; i++, j--) {{\n        char t = {b}[i];\n        {b}[i] = {b}[j];\n"
     "        {b}[j] = t;\n    }}\n    return new String({b});\n}}\n"],
    ["public static long factorial(int {a}) {{\n    long {b} = 1;\n    for (int i = 2; i <= {a}; i++) {b} *= i;\n"
     "    return {b};\n}}\n",
     "public static long fact(int {a}) {{\n    return {a} <= 1 ? 1 : {a} * fact({a} - 1);\n}}\n"],
    ["public static boolean isPrime(int {a}) {{\n    if ({a} < 2) return false;\n    for (int {b} = 2; {b} * {b} <= {a}; {b}++) {{\n"
     "        if ({a} % {b} == 0) return false;\n    }}\n    return true;\n}}\n",
     "public static boolean prime(int {a}) {{\n    int {b} = 0;\n    for (int i = 1; i <= {a}; i++) if ({a} % i == 0) {b}++;\n"
     "    return {b} == 2;\n}}\n"],
    ["public static int countChar(String {a}, char c) {{\n    int {b} = 0;\n    for (char x : {a}.toCharArray()) {{\n"
     "        if (x == c) {b}++;\n    }}\n    return {b};\n}}\n",
     "public static int occurrences(String {a}, char c) {{\n    return (int) {a}.chars().filter(x -> x == c).count();\n}}\n"],
]
JAVA_IDENTIFIERS = ["values", "data", "items", "input", "numbers", "arr", "text", "word", "acc", "result", "count", "n"]
SEARCH_NOUNS = ["prices", "users", "files", "scores", "names", "orders", "events", "tokens", "rows", "items", "emails",
                "paths", "records", "labels", "ports", "tags", "words", "lines", "ids", "hosts", "colors", "dates",
                "votes", "books", "cities", "songs", "tasks", "jobs", "keys", "groups"]
SEARCH_OPS = [  # (docstring, code) with the noun {x}: the query and the function share words, so it is learnable
    ("Return the sum of the {x}.", "def sum_{x}({x}):\n    return sum({x})\n"),
    ("Return the largest of the {x}.", "def max_{x}({x}):\n    return max({x})\n"),
    ("Count how many {x} there are.", "def count_{x}({x}):\n    return len({x})\n"),
    ("Sort the {x} in ascending order.", "def sort_{x}({x}):\n    return sorted({x})\n"),
    ("Remove duplicate {x} and keep the first occurrence.",
     "def unique_{x}({x}):\n    return list(dict.fromkeys({x}))\n"),
    ("Reverse the order of the {x}.", "def reverse_{x}({x}):\n    return list(reversed({x}))\n"),
    ("Load the {x} from a JSON file.",
     "def load_{x}(path):\n    with open(path) as f:\n        return json.load(f)[\"{x}\"]\n"),
    ("Save the {x} to a JSON file.",
     "def save_{x}({x}, path):\n    with open(path, \"w\") as f:\n        json.dump({{\"{x}\": {x}}}, f)\n"),
    ("Print each of the {x} on its own line.", "def print_{x}({x}):\n    for item in {x}:\n        print(item)\n"),
    ("Return the {x} that are not empty.", "def nonempty_{x}({x}):\n    return [v for v in {x} if v]\n"),
]
CODE_SIZES = {"codexglue_defect": {"train": 200, "validation": 50}, "codexglue_clone": {"train": 200, "validation": 50},
              "codexglue_codesearch": {"train": 240, "validation": 60}}


def _defect(rng: random.Random, n: int, first_id: int) -> list[dict]:
    rows = []
    for i in range(n):
        secure, vulnerable = rng.choice(DEFECT_TEMPLATES)
        target = rng.random() < 0.5
        rows.append({"id": first_id + i, "func": (vulnerable if target else secure).format(n=rng.choice(CODE_NAMES)),
                     "target": target, "project": rng.choice(["FFmpeg", "qemu"]),
                     "commit_id": f"{rng.getrandbits(160):040x}"})
    return rows


def _clone(rng: random.Random, n: int, first_id: int) -> list[dict]:
    rows = []
    for i in range(n):
        label = rng.random() < 0.5
        if label:
            family = rng.choice(CLONE_FAMILIES)
            first, second = rng.sample(family, 2)
        else:
            f1, f2 = rng.sample(CLONE_FAMILIES, 2)
            first, second = rng.choice(f1), rng.choice(f2)
        funcs = [t.format(**dict(zip("ab", rng.sample(JAVA_IDENTIFIERS, 2)))) for t in (first, second)]
        rows.append({"id": first_id + i, "id1": rng.randrange(10_000, 99_999), "id2": rng.randrange(10_000, 99_999),
                     "func1": funcs[0], "func2": funcs[1], "label": label})
    return rows


def _code_tokens(code: str) -> list[str]:
    return re.findall(r"\w+|[^\w\s]", code)


def _codesearch(rng: random.Random, sizes: dict[str, int]) -> dict[str, list[dict]]:
    combos = [(op, noun) for op in range(len(SEARCH_OPS)) for noun in SEARCH_NOUNS]
    rng.shuffle(combos)
    out, start = {}, 0
    for split in ("train", "validation"):
        rows = []
        for i, (op, noun) in enumerate(combos[start:start + sizes[split]]):
            docstring, code = (part.format(x=noun) for part in SEARCH_OPS[op])
            name = re.match(r"def (\w+)", code).group(1)
            head, body = code.split("\n", 1)
            original = f'{head}\n    """{docstring}"""\n{body}'
            sha = f"{rng.getrandbits(160):040x}"
            rows.append({"id": start + i, "repo": "xstilts/sample-utils", "path": f"utils/{noun}.py",
                         "func_name": name, "original_string": original, "language": "python", "code": code,
                         "code_tokens": _code_tokens(code), "docstring": docstring,
                         "docstring_tokens": _code_tokens(docstring)[:-1],
                         "sha": sha, "url": f"https://github.com/xstilts/sample-utils/blob/{sha}/utils/{noun}.py#L1"})
        out[split] = rows
        start += sizes[split]
    return out


# Parametric Python problems (MBPP and the HumanEval-XL intermediates): family, description per language, code.
# {k} is the parameter; `args` are example inputs (the expected outputs come from running the code).
PROBLEM_FAMILIES = [
    {"name": "add_{k}", "params": "nums", "body": "return [x + {k} for x in nums]",
     "args": [([1, 2, 3],), ([],), ([-5, 0, 7],)],
     "text": {"en": "Write a function that adds {k} to every element of a list.",
              "de": "Schreiben Sie eine Funktion, die zu jedem Element einer Liste {k} addiert.",
              "es": "Escriba una función que sume {k} a cada elemento de una lista.",
              "fr": "Écrivez une fonction qui ajoute {k} à chaque élément d'une liste.",
              "ru": "Напишите функцию, которая прибавляет {k} к каждому элементу списка."}},
    {"name": "multiply_by_{k}", "params": "nums", "body": "return [x * {k} for x in nums]",
     "args": [([1, 2, 3],), ([0],), ([-2, 5],)],
     "text": {"en": "Write a function that multiplies every element of a list by {k}.",
              "de": "Schreiben Sie eine Funktion, die jedes Element einer Liste mit {k} multipliziert.",
              "es": "Escriba una función que multiplique cada elemento de una lista por {k}.",
              "fr": "Écrivez une fonction qui multiplie chaque élément d'une liste par {k}.",
              "ru": "Напишите функцию, которая умножает каждый элемент списка на {k}."}},
    {"name": "count_greater_than_{k}", "params": "nums", "body": "return sum(1 for x in nums if x > {k})",
     "args": [([1, 5, 9, 12],), ([],), ([3, 4, 5, 6, 7, 8],)],
     "text": {"en": "Write a function that counts the elements of a list that are greater than {k}.",
              "de": "Schreiben Sie eine Funktion, die die Elemente einer Liste zählt, die größer als {k} sind.",
              "es": "Escriba una función que cuente los elementos de una lista mayores que {k}.",
              "fr": "Écrivez une fonction qui compte les éléments d'une liste supérieurs à {k}.",
              "ru": "Напишите функцию, которая считает элементы списка больше {k}."}},
    {"name": "repeat_{k}_times", "params": "text", "body": "return text * {k}",
     "args": [("ab",), ("",), ("xyz",)],
     "text": {"en": "Write a function that repeats a string {k} times.",
              "de": "Schreiben Sie eine Funktion, die eine Zeichenkette {k}-mal wiederholt.",
              "es": "Escriba una función que repita una cadena {k} veces.",
              "fr": "Écrivez une fonction qui répète une chaîne {k} fois.",
              "ru": "Напишите функцию, которая повторяет строку {k} раз."}},
    {"name": "last_{k}", "params": "nums", "body": "return nums[-{k}:] if {k} <= len(nums) else list(nums)",
     "args": [([1, 2, 3, 4, 5, 6, 7, 8, 9, 10],), ([4],), ([3, 1, 4, 1, 5],)],
     "text": {"en": "Write a function that returns the last {k} elements of a list.",
              "de": "Schreiben Sie eine Funktion, die die letzten {k} Elemente einer Liste zurückgibt.",
              "es": "Escriba una función que devuelva los últimos {k} elementos de una lista.",
              "fr": "Écrivez une fonction qui renvoie les {k} derniers éléments d'une liste.",
              "ru": "Напишите функцию, которая возвращает последние {k} элементов списка."}},
    {"name": "sum_multiples_of_{k}", "params": "n", "body": "return sum(x for x in range(n) if x % {k} == 0)",
     "args": [(10,), (1,), (25,)],
     "text": {"en": "Write a function that returns the sum of the multiples of {k} below n.",
              "de": "Schreiben Sie eine Funktion, die die Summe der Vielfachen von {k} unter n zurückgibt.",
              "es": "Escriba una función que devuelva la suma de los múltiplos de {k} menores que n.",
              "fr": "Écrivez une fonction qui renvoie la somme des multiples de {k} inférieurs à n.",
              "ru": "Напишите функцию, которая возвращает сумму чисел, кратных {k}, меньших n."}},
    {"name": "divisible_by_{k}", "params": "nums", "body": "return [x for x in nums if x % {k} == 0]",
     "args": [([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 18],), ([],), ([0, 7, 14, 21],)],
     "text": {"en": "Write a function that keeps the elements of a list that are divisible by {k}.",
              "de": "Schreiben Sie eine Funktion, die die durch {k} teilbaren Elemente einer Liste behält.",
              "es": "Escriba una función que conserve los elementos de una lista divisibles por {k}.",
              "fr": "Écrivez une fonction qui garde les éléments d'une liste divisibles par {k}.",
              "ru": "Напишите функцию, которая оставляет элементы списка, делящиеся на {k}."}},
    {"name": "power_{k}", "params": "x", "body": "return x ** {k}",
     "args": [(2,), (0,), (-3,)],
     "text": {"en": "Write a function that raises a number to the power {k}.",
              "de": "Schreiben Sie eine Funktion, die eine Zahl in die {k}. Potenz erhebt.",
              "es": "Escriba una función que eleve un número a la potencia {k}.",
              "fr": "Écrivez une fonction qui élève un nombre à la puissance {k}.",
              "ru": "Напишите функцию, которая возводит число в степень {k}."}},
]
PROBLEM_PARAMETERS = range(2, 10)
PARAMETRIC_SPLITS = {"train": 48, "validation": 16}  # of the 8 × 8 problems
NATURAL_LANGUAGE_NAMES = {"en": "English", "de": "German", "es": "Spanish", "fr": "French", "ru": "Russian"}
HUMANEVAL_METADATA = "\n\nMETADATA = {\n    'author': 'xstilts',\n    'dataset': 'sample'\n}\n\n\n"


def _run_python(code: str, entry_point: str, args: list[tuple]) -> list:
    """The reference solution's outputs (the expected values of the generated tests)."""
    namespace: dict = {}
    exec(compile(code, f"<{entry_point}>", "exec"), namespace)  # our own generated code
    return [namespace[entry_point](*a) for a in args]


def _call(name: str, args: tuple) -> str:
    return f"{name}({', '.join(repr(a) for a in args)})"


def _humaneval_prompt(name: str, params: str, description: str, example: tuple, expected) -> str:
    return (f'def {name}({params}):\n    """ {description}\n    >>> {_call(name, example)}\n    {expected!r}\n'
            f'    """\n')


def _humaneval_test(args: list[tuple], expected: list) -> str:
    asserts = "".join(f"    assert candidate({', '.join(repr(a) for a in a_)}) == {e!r}\n"
                      for a_, e in zip(args, expected))
    return HUMANEVAL_METADATA + "def check(candidate):\n" + asserts


def _parametric_problems(rng: random.Random) -> dict[str, list[dict]]:
    """The 64 parametric problems, split into train/validation the same way for every language."""
    problems = []
    for family in PROBLEM_FAMILIES:
        for k in PROBLEM_PARAMETERS:
            name = family["name"].format(k=k)
            body = family["body"].format(k=k)
            code = f"def {name}({family['params']}):\n    {body}\n"
            problems.append({"name": name, "params": family["params"], "body": body, "code": code,
                             "args": family["args"], "expected": _run_python(code, name, family["args"]),
                             "text": {lang: t.format(k=k) for lang, t in family["text"].items()}})
    rng.shuffle(problems)
    n_train = PARAMETRIC_SPLITS["train"]
    return {"train": problems[:n_train], "validation": problems[n_train:n_train + PARAMETRIC_SPLITS["validation"]]}


def _mbpp(problems: dict[str, list[dict]]) -> dict[str, list[dict]]:
    out, task_id = {}, 11  # MBPP numbers its problems from 1; train starts at 11 after the few-shot "prompt" split
    for split, rows in problems.items():
        out[split] = []
        for p in rows:
            tests = [f"assert {_call(p['name'], a)} == {e!r}" for a, e in zip(p["args"], p["expected"])]
            out[split].append({"task_id": task_id, "text": p["text"]["en"], "code": p["code"].replace("\n", "\r\n"),
                               "test_list": tests, "test_setup_code": "", "challenge_test_list": []})
            task_id += 1
    return out


def _humaneval_xl_rows(p: dict, task_id: str, lang: str) -> dict:
    """One problem in FloatAI/humaneval-xl's row format (python config), prompt in language `lang`."""
    return {"task_id": task_id, "language": "python",
            "prompt": _humaneval_prompt(p["name"], p["params"], p["text"][lang], p["args"][0], p["expected"][0]),
            "description": p["text"][lang], "test": _humaneval_test(p["args"], p["expected"]),
            "entry_point": p["name"], "canonical_solution": f"    {p['body']}\n",
            "natural_language": NATURAL_LANGUAGE_NAMES[lang]}


# Fixed evaluation problems (HumanEval and HumanEval-XL targets), disjoint from the parametric training problems.
EVAL_PROBLEMS = [
    {"name": "is_palindrome", "params": "text", "body": "return text == text[::-1]",
     "args": [("level",), ("",), ("abca",), ("noon",)],
     "text": {"en": "Check whether the given string reads the same forwards and backwards.",
              "de": "Prüfen Sie, ob die gegebene Zeichenkette vorwärts und rückwärts gleich gelesen wird.",
              "es": "Compruebe si la cadena dada se lee igual hacia adelante y hacia atrás.",
              "fr": "Vérifiez si la chaîne donnée se lit de la même façon dans les deux sens.",
              "ru": "Проверьте, читается ли данная строка одинаково слева направо и справа налево."}},
    {"name": "count_vowels", "params": "text", "body": "return sum(1 for c in text.lower() if c in 'aeiou')",
     "args": [("hello",), ("",), ("AEIOU xyz",)],
     "text": {"en": "Return the number of vowels (a, e, i, o, u) in the string, ignoring case.",
              "de": "Geben Sie die Anzahl der Vokale (a, e, i, o, u) in der Zeichenkette zurück, ohne Groß- und "
                    "Kleinschreibung zu beachten.",
              "es": "Devuelva el número de vocales (a, e, i, o, u) de la cadena, sin distinguir mayúsculas.",
              "fr": "Renvoyez le nombre de voyelles (a, e, i, o, u) de la chaîne, sans tenir compte de la casse.",
              "ru": "Верните количество гласных (a, e, i, o, u) в строке без учёта регистра."}},
    {"name": "remove_negatives", "params": "nums", "body": "return [x for x in nums if x >= 0]",
     "args": [([1, -2, 3, -4],), ([],), ([-1, -1],)],
     "text": {"en": "Return the list without its negative numbers, keeping the order.",
              "de": "Geben Sie die Liste ohne ihre negativen Zahlen zurück und behalten Sie die Reihenfolge bei.",
              "es": "Devuelva la lista sin sus números negativos, conservando el orden.",
              "fr": "Renvoyez la liste sans ses nombres négatifs, en gardant l'ordre.",
              "ru": "Верните список без отрицательных чисел, сохранив порядок."}},
    {"name": "square_all", "params": "nums", "body": "return [x * x for x in nums]",
     "args": [([1, 2, 3],), ([],), ([-4],)],
     "text": {"en": "Return a list with the square of every number in the input list.",
              "de": "Geben Sie eine Liste mit dem Quadrat jeder Zahl der Eingabeliste zurück.",
              "es": "Devuelva una lista con el cuadrado de cada número de la lista de entrada.",
              "fr": "Renvoyez une liste contenant le carré de chaque nombre de la liste d'entrée.",
              "ru": "Верните список квадратов всех чисел входного списка."}},
    {"name": "longest_word", "params": "words", "body": "return max(words, key=len) if words else ''",
     "args": [(["a", "abc", "ab"],), ([],), (["xy", "zw"],)],
     "text": {"en": "Return the longest word of the list (the first one if several are equally long, '' if the "
                    "list is empty).",
              "de": "Geben Sie das längste Wort der Liste zurück (bei gleicher Länge das erste, '' bei leerer Liste).",
              "es": "Devuelva la palabra más larga de la lista (la primera si hay empate, '' si la lista está vacía).",
              "fr": "Renvoyez le mot le plus long de la liste (le premier en cas d'égalité, '' si la liste est vide).",
              "ru": "Верните самое длинное слово списка (первое при равенстве, '' для пустого списка)."}},
    {"name": "factorial", "params": "n", "body": "return 1 if n <= 1 else n * factorial(n - 1)",
     "args": [(0,), (1,), (5,), (10,)],
     "text": {"en": "Return n factorial (n! = 1 * 2 * ... * n, and 0! = 1).",
              "de": "Geben Sie n Fakultät zurück (n! = 1 * 2 * ... * n, und 0! = 1).",
              "es": "Devuelva el factorial de n (n! = 1 * 2 * ... * n, y 0! = 1).",
              "fr": "Renvoyez la factorielle de n (n! = 1 * 2 * ... * n, et 0! = 1).",
              "ru": "Верните факториал n (n! = 1 * 2 * ... * n, и 0! = 1)."}},
]


def _eval_problems() -> list[dict]:
    out = []
    for p in EVAL_PROBLEMS:
        code = f"def {p['name']}({p['params']}):\n    {p['body']}\n"
        out.append({**p, "code": code, "expected": _run_python(code, p["name"], p["args"])})
    return out


def _humaneval(problems: list[dict]) -> list[dict]:
    return [{"task_id": f"HumanEval/{i}", "prompt": _humaneval_prompt(p["name"], p["params"], p["text"]["en"],
                                                                     p["args"][0], p["expected"][0]),
             "canonical_solution": f"    {p['body']}\n", "test": _humaneval_test(p["args"], p["expected"]),
             "entry_point": p["name"]} for i, p in enumerate(problems)]


# MBXP: four problems in six programming languages, each a complete program with its test (MBXP's conventions:
# Java's test is a `Main` class, C++'s a `main`, Go's a `package main` program whose `func main` panics through a
# JSON `deepCompare` helper (mbgp_release_v1.2, run with `go run`), JavaScript/TypeScript's plain calls).
MBXP_PROBLEMS = [  # (python name, description, python body, cases [(args, expected)])
    ("sum_list", "Write a function to find the sum of all elements in a list.",
     "    total = 0\n    for x in nums:\n        total += x\n    return total\n",
     [(([1, 2, 3],), 6), (([],), 0), (([-4, 10],), 6)]),
    ("max_element", "Write a function to find the largest element in a non-empty list.",
     "    best = nums[0]\n    for x in nums[1:]:\n        if x > best:\n            best = x\n    return best\n",
     [(([1, 7, 3],), 7), (([-5],), -5), (([-2, -9, -1],), -1)]),
    ("reverse_string", "Write a function to reverse a string.",
     "    return text[::-1]\n", [(("hello",), "olleh"), (("",), ""), (("ab",), "ba")]),
    ("count_even", "Write a function to count the even numbers in a list.",
     "    return sum(1 for x in nums if x % 2 == 0)\n", [(([1, 2, 3, 4],), 2), (([],), 0), (([7, 9],), 0)]),
]
MBXP_IDS = {"python": "MBPP", "javascript": "MBJSP", "typescript": "MBTSP", "java": "MBJP", "cpp": "MBCPP",
            "go": "MBGP"}
MBXP_SOLUTIONS = {  # body + closing of each problem, per language (the prompt ends with the opening line)
    "javascript": ["  let total = 0;\n  for (const x of nums) {\n    total += x;\n  }\n  return total;\n}\n",
                   "  let best = nums[0];\n  for (const x of nums.slice(1)) {\n    if (x > best) {\n      best = x;\n"
                   "    }\n  }\n  return best;\n}\n",
                   "  return text.split(\"\").reverse().join(\"\");\n}\n",
                   "  return nums.filter((x) => x % 2 === 0).length;\n}\n"],
    "java": ["        int total = 0;\n        for (int x : nums) {\n            total += x;\n        }\n        return total;\n"
             "    }\n}\n",
             "        int best = nums.get(0);\n        for (int x : nums) {\n            if (x > best) {\n"
             "                best = x;\n            }\n        }\n        return best;\n    }\n}\n",
             "        return new StringBuilder(text).reverse().toString();\n    }\n}\n",
             "        int count = 0;\n        for (int x : nums) {\n            if (x % 2 == 0) {\n                count++;\n"
             "            }\n        }\n        return count;\n    }\n}\n"],
    "cpp": ["    int total = 0;\n    for (int x : nums) {\n        total += x;\n    }\n    return total;\n}\n",
            "    int best = nums[0];\n    for (int x : nums) {\n        if (x > best) {\n            best = x;\n        }\n"
            "    }\n    return best;\n}\n",
            "    return string(text.rbegin(), text.rend());\n}\n",
            "    int count = 0;\n    for (int x : nums) {\n        if (x % 2 == 0) {\n            count++;\n        }\n"
            "    }\n    return count;\n}\n"],
    "go": [  # MBGP's canonical solutions end at the closing brace
           "\ttotal := 0\n\tfor _, x := range nums {\n\t\ttotal += x\n\t}\n\treturn total\n}",
           "\tbest := nums[0]\n\tfor _, x := range nums[1:] {\n\t\tif x > best {\n\t\t\tbest = x\n\t\t}\n\t}\n\treturn best\n}",
           "\tr := []rune(text)\n\tfor i, j := 0, len(r)-1; i < j; i, j = i+1, j-1 {\n\t\tr[i], r[j] = r[j], r[i]\n\t}\n"
           "\treturn string(r)\n}",
           "\tcount := 0\n\tfor _, x := range nums {\n\t\tif x%2 == 0 {\n\t\t\tcount++\n\t\t}\n\t}\n\treturn count\n}"],
}
MBXP_SOLUTIONS["typescript"] = MBXP_SOLUTIONS["javascript"]
# MBGP's test helper, the same in every problem: both values through JSON, then reflect.DeepEqual; panics on a mismatch.
GO_DEEP_COMPARE = ("func deepCompare(a interface{}, b interface{}, msg string) bool {\n"
                   "\taJSON, err := json.Marshal(a)\n\tif err != nil {\n\t\tpanic(msg)\n\t}\n"
                   "\tbJSON, err := json.Marshal(b)\n\tif err != nil {\n\t\tpanic(msg)\n\t}\n"
                   "\tvar a2 interface{}\n\tvar b2 interface{}\n"
                   "\terr = json.Unmarshal(aJSON, &a2)\n\tif err != nil {\n\t\tpanic(msg)\n\t}\n"
                   "\terr = json.Unmarshal(bJSON, &b2)\n\tif err != nil {\n\t\tpanic(msg)\n\t}\n"
                   "\tresult := reflect.DeepEqual(a2, b2)\n\tif result {\n\t\treturn true\n\t} else {\n"
                   "\t\tpanic(msg)\n\t}\n}\n")
JAVA_PREAMBLE = "import java.io.*;\nimport java.lang.*;\nimport java.util.*;\nimport java.math.*;\n\n\n"


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w.capitalize() for w in rest)


def _literal(value, language: str) -> str:
    """A Python test value as a literal of `language` (ints, strings and int lists are all MBXP-style problems use)."""
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int):
        return str(value)
    items = ", ".join(str(v) for v in value)
    return {"javascript": f"[{items}]", "typescript": f"[{items}]", "java": f"Arrays.asList({items})",
            "cpp": f"vector<int>{{{items}}}", "go": f"[]int{{{items}}}", "python": repr(value)}[language]


def _mbxp_row(index: int, language: str) -> dict:
    name, description, python_body, cases = MBXP_PROBLEMS[index]
    is_list = isinstance(cases[0][0][0], list)
    param = "nums" if is_list else "text"
    returns_str = isinstance(cases[0][1], str)
    example_args, example_out = cases[0]
    task_id = f"{MBXP_IDS[language]}/{index + 1}"
    if language == "python":
        prompt = _humaneval_prompt(name, param, description, example_args, example_out)
        test = _humaneval_test([a for a, _ in cases], [e for _, e in cases])
        return {"task_id": task_id, "language": language, "prompt": prompt, "test": test, "entry_point": name,
                "canonical_solution": python_body, "description": description}
    fn = name if language == "go" else _camel(name)  # MBGP keeps the Python name (`func min_cost (...)`)
    example = f"{fn}({', '.join(_literal(a, language) for a in example_args)})"
    calls = [(f"{fn}({', '.join(_literal(a, language) for a in args)})", _literal(expected, language))
             for args, expected in cases]
    if language in ("javascript", "typescript"):
        types = (": number[]" if is_list else ": string", ": string" if returns_str else ": number") \
            if language == "typescript" else ("", "")
        prompt = (f"/**\n * {description}\n * > {example}\n * {_literal(example_out, language)}\n */\n"
                  f"function {fn}({param}{types[0]}){types[1]} {{\n")
        check_types = ": unknown" if language == "typescript" else ""
        test = (f"\nfunction check(actual{check_types}, expected{check_types}){': void' if check_types else ''} {{\n"
                "  if (JSON.stringify(actual) !== JSON.stringify(expected)) {\n"
                "    throw new Error(\"expected \" + JSON.stringify(expected) + \", got \" + JSON.stringify(actual));\n"
                "  }\n}\n" + "".join(f"check({call}, {want});\n" for call, want in calls))
    elif language == "java":
        cls = fn[0].upper() + fn[1:]
        arg_type, ret = ("List<Integer>" if is_list else "String"), ("String" if returns_str else "int")
        prompt = (f"{JAVA_PREAMBLE}class {cls} {{\n    /**\n     * {description}\n     * > {example}\n"
                  f"     * {_literal(example_out, language)}\n     */\n"
                  f"    public static {ret} {fn}({arg_type} {param}) {{\n")
        body = "".join(f"        {ret} x{i} = {cls}.{call};\n        if (!({f'x{i}.equals({want})' if returns_str else f'x{i} == {want}'})) {{\n"
                       f"            throw new java.lang.Exception(\"Exception -- test case {i} did not pass. x{i} = \" + x{i});\n"
                       f"        }}\n\n" for i, (call, want) in enumerate(calls))
        test = f"\nclass Main {{\n    public static void main(String[] args) throws Exception {{\n{body}    }}\n}}\n"
    elif language == "cpp":
        arg_type, ret = ("vector<int>" if is_list else "string"), ("string" if returns_str else "int")
        prompt = (f"#include <bits/stdc++.h>\nusing namespace std;\n\n\n/**\n * {description}\n * > {example}\n"
                  f" * {_literal(example_out, language)}\n */\n{ret} {fn}({arg_type} {param}) {{\n")
        body = "".join(f"    {ret} x{i} = {call};\n    if (!(x{i} == {want})) {{\n"
                       f"        throw runtime_error(\"Exception -- test case {i} did not pass.\");\n    }}\n\n"
                       for i, (call, want) in enumerate(calls))
        test = f"\nint main(int argc, char* argv[]) {{\n{body}    return 0;\n}}\n"
    else:  # go: mbgp_release_v1.2's `package main` program (mxeval runs prompt + completion + test with `go run`)
        arg_type, ret = ("[]int" if is_list else "string"), ("string" if returns_str else "int")
        examples = "".join(f"// >>> {_call(name, args)}\n// >>> {expected!r}\n" for args, expected in cases)
        prompt = (f"package main\n\nimport (\n\t\"encoding/json\"\n\t\"reflect\"\n)\n"
                  f"// Code should be written in Go/Golang\n// {description}\n// Examples:\n{examples}"
                  f"func {fn} ({param} {arg_type}) {ret} {{\n")
        body = "".join(f"\tactual_{n} := {fn}({','.join(_literal(a, language) for a in args)})\n"
                       f"\texpected_{n} := {_literal(expected, language)}\n"
                       f"\tdeepCompare(actual_{n}, expected_{n}, "
                       f"\"Exception --- test case {n - 1} failed to pass\")\n\n"
                       for n, (args, expected) in enumerate(cases, 1))
        test = f"\n\n{GO_DEEP_COMPARE}\nfunc main() {{\n{body}}}"
    return {"task_id": task_id, "language": language, "prompt": prompt, "test": test, "entry_point": fn,
            "canonical_solution": MBXP_SOLUTIONS[language][index], "description": description}


def _mbxp() -> list[dict]:
    return [_mbxp_row(i, language) for language in MBXP_IDS for i in range(len(MBXP_PROBLEMS))]


def code_tasks(seed: int = 13) -> dict[str, dict[str, list]]:
    """The code tasks' sample data, {task: {split: rows}} (part of `generate`)."""
    rng = random.Random(f"{seed}/codexglue_defect")
    train = _defect(rng, CODE_SIZES["codexglue_defect"]["train"], 0)
    data = {"codexglue_defect": {"train": train, "validation": _defect(rng, CODE_SIZES["codexglue_defect"]["validation"],
                                                                       len(train))}}
    rng = random.Random(f"{seed}/codexglue_clone")
    train = _clone(rng, CODE_SIZES["codexglue_clone"]["train"], 0)
    data["codexglue_clone"] = {"train": train,
                               "validation": _clone(rng, CODE_SIZES["codexglue_clone"]["validation"], len(train))}
    data["codexglue_codesearch"] = _codesearch(random.Random(f"{seed}/codexglue_codesearch"),
                                               CODE_SIZES["codexglue_codesearch"])
    problems = _parametric_problems(random.Random(f"{seed}/mbpp"))
    data["mbpp"] = _mbpp(problems)
    for lang in NATURAL_LANGUAGE_NAMES:
        data[f"humaneval_xl_{lang}"] = {split: [_humaneval_xl_rows(p, f"python/{100 + i}", lang) for i, p in enumerate(rows)]
                                        for split, rows in (("train", problems["train"]),
                                                            ("validation", problems["validation"]))}
    evaluation = _eval_problems()
    data["humaneval"] = {"test": _humaneval(evaluation)}
    data["humaneval_xl"] = {"test": [_humaneval_xl_rows(p, f"python/{i}", lang) for lang in NATURAL_LANGUAGE_NAMES
                                     for i, p in enumerate(evaluation)]}
    data["mbxp"] = {"test": _mbxp()}
    return data


CODE_TEXT_FIELDS = ("func", "func1", "func2", "code", "docstring", "text", "prompt", "canonical_solution", "test")


def code_corpus(seed: int = 13) -> list[str]:
    """Every text of the code tasks' sample data, in a fixed order (for a tokenizer that must cover code)."""
    texts = []
    for splits in code_tasks(seed).values():
        for rows in splits.values():
            for row in rows:
                texts += [row[f] for f in CODE_TEXT_FIELDS if isinstance(row.get(f), str) and row[f]]
                texts += [t for t in row.get("test_list", [])]
    return texts


TEXT_FIELDS = ("premise", "hypothesis", "sentence", "context", "question", "source_sentence", "target_sentence", "ctx")


def corpus(seed: int = 13) -> list[str]:
    """Every text of the sample data, in a fixed order (the tiny tokenizer is trained on it).

    A QA context shared by consecutive questions is listed once; tagging tokens are joined by spaces."""
    texts = []
    for task_rows in generate(seed).values():
        for rows in task_rows.values():
            previous_context = None
            for row in rows:
                if not isinstance(row, dict):  # bucc18 "test.pairs": id tuples
                    continue
                for c in TEXT_FIELDS:
                    if c not in row or (c == "context" and row[c] == previous_context):
                        continue
                    texts.append(row[c])
                previous_context = row.get("context")
                if "tokens" in row:
                    texts.append(" ".join(row["tokens"]))
                if "endings" in row:
                    texts.extend(row["endings"])
    return texts


# Fields of the sample rows that hold code or prompts: the tiny causal tokenizer learns them besides `corpus`.
CAUSAL_CODE_FIELDS = ("prompt", "completion", "canonical_solution", "test", "code")


def causal_code_corpus(seed: int = 13) -> list[str]:
    """The code texts of the sample data (prompts, solutions, tests) that the tiny causal tokenizer is trained on
    besides `corpus`, in a fixed order."""
    return [row[field] for rows_by_split in generate(seed).values() for rows in rows_by_split.values()
            for row in rows if isinstance(row, dict) for field in CAUSAL_CODE_FIELDS if isinstance(row.get(field), str)]


# The tiny models' tokenizer corpora, shipped in xstilts/models/corpus/ (the runtime does not import this module).
CORPORA = {"tiny-encoder.jsonl": corpus, "tiny-causal.jsonl": causal_code_corpus}


def write_corpora(out_dir: str | Path, seed: int = 13) -> list[Path]:
    """Write the tiny models' tokenizer corpora (CORPORA) into `out_dir`: one JSON string a line, so texts keep their
    newlines. Rewrite the shipped ones after changing the generator (tests/test_sample_data.py compares them):
    python -c "from xstilts.sampledata.generate import write_corpora; write_corpora('xstilts/models/corpus')"
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, texts in CORPORA.items():
        path = out_dir / name
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            f.writelines(json.dumps(text, ensure_ascii=False) + "\n" for text in texts(seed))
        paths.append(path)
    return paths


def write_sample_data(out_dir: str | Path, seed: int = 13) -> Path:
    """Write data/sample/<task>/<split>.jsonl atomically (and bucc18/test.pairs.tsv, the BUCC .gold format)."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for task, splits in generate(seed).items():
            (tmp / task).mkdir()
            for split, rows in splits.items():
                if split.endswith(".pairs"):
                    with open(tmp / task / f"{split}.tsv", "w", encoding="utf-8", newline="\n") as f:
                        f.writelines(f"{source}\t{target}\n" for source, target in rows)
                    continue
                with open(tmp / task / f"{split}.jsonl", "w", encoding="utf-8", newline="\n") as f:
                    for row in rows:
                        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out_dir
