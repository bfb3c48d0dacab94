"""Deterministic synthetic sample data in the hub's own row format (XNLI, GLUE MNLI, GLUE SST-2).

The hubs are unreachable offline, so the embedded default runs on this data. It is built so that transfer is
possible and measurable: the NLI sentences share names and digits across languages (anchors, as in real
multilingual corpora), the MNLI-style intermediate data has the same reasoning in other English wording, and the
SST-2-style data is unrelated single-sentence sentiment. `make sample-data` rewrites data/sample/ from this module.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from .fsutil import atomic_dir

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


def generate(seed: int = 13, sizes: dict | None = None) -> dict[str, dict[str, list[dict]]]:
    """Return {task: {split: rows}} in the hub's row format (plus `language` for XNLI)."""
    sizes = {"train": 1200, "validation": 150, "test": 150, **(sizes or {})}
    rng = random.Random(seed)
    data: dict[str, dict[str, list[dict]]] = {"xnli": {}, "mnli": {}, "sst2": {}}
    for split in ("train", "validation", "test"):
        langs = SAMPLE_LANGUAGES if split == "test" else ("en",)
        rows = []
        for lang in langs:
            for _ in range(sizes[split]):
                p, h, y = _nli_example(rng, lang)
                rows.append({"premise": p, "hypothesis": h, "label": y, "language": lang})
        data["xnli"][split] = rows
    for split in ("train", "validation"):
        n = sizes[split]
        data["mnli"][split] = [dict(zip(("premise", "hypothesis", "label"), _mnli_example(rng)), idx=i) for i in range(n)]
        data["sst2"][split] = [dict(zip(("sentence", "label"), _sst_example(rng)), idx=i) for i in range(n)]
    return data


def corpus(seed: int = 13) -> list[str]:
    """Every text of the sample data, in a fixed order (the tiny tokenizer is trained on it)."""
    texts = []
    for task_rows in generate(seed).values():
        for rows in task_rows.values():
            for row in rows:
                texts.extend(row[c] for c in ("premise", "hypothesis", "sentence") if c in row)
    return texts


def write_sample_data(out_dir: str | Path, seed: int = 13) -> Path:
    """Write data/sample/<task>/<split>.jsonl atomically."""
    out_dir = Path(out_dir)
    with atomic_dir(out_dir) as tmp:
        for task, splits in generate(seed).items():
            (tmp / task).mkdir()
            for split, rows in splits.items():
                with open(tmp / task / f"{split}.jsonl", "w", encoding="utf-8") as f:
                    for row in rows:
                        f.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out_dir
