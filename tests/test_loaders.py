"""Every registered task, loaded from rows in its Hugging Face dataset's own format: from local JSONL, from a local
Parquet copy, and through the hub path (`datasets.load_dataset` on a local folder in hub layout) — plus the bad
inputs the validate step must reject, each with the file, row and field, and nothing written.

The rows below are written by hand in each dataset's on-hub row format (field names, nesting, label encodings,
split and config names); in local files the rows of a test split carry an extra `language` field, since one local
file holds every language.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import xstilts.tasks.registry as tasks
from xstilts.data.load import canonical_columns
from xstilts.errors import DataError, DataValidationError
from xstilts.kinds.base import RETRIEVAL
from xstilts.tasks.registry import all_tasks, get_task
from xstilts.data.validate import validate_tasks

TASK_NAMES = [t.name for t in all_tasks()]


def lang(code: str, rows: list[dict]) -> list[dict]:
    """Rows of one language in a local multi-language file."""
    return [dict(r, language=code) for r in rows]


@dataclass
class Format:
    local: dict[str, list[dict]]  # our split → rows as on the hub (+ `language` where a file mixes languages)
    hub: dict[tuple[str, str], list[dict]]  # (hub config, hub split) → rows; config "default" for config-less datasets
    expect: dict[str, list[dict]]  # split → canonical rows in order (only the keys given are compared; "x…" = prefix)
    languages: tuple[str, ...] = ()  # evaluation languages selected for a target's test split
    hub_expect: dict[str, list[dict]] = field(default_factory=dict)  # where the hub path differs (ANLI+ extra train)


NLI = {0: "entailment", 1: "neutral", 2: "contradiction"}

# ---- facebook/xnli (config per language; premise, hypothesis, label 0/1/2) ---------------------------------------
XNLI_EN_TRAIN = [
    {"premise": "Conceptually cream skimming has two basic dimensions - product and geography .",
     "hypothesis": "Product and geography are what make cream skimming work .", "label": 1},
    {"premise": "One of our number will carry out your instructions minutely .",
     "hypothesis": "A member of my team will execute your orders with immense precision .", "label": 0},
    {"premise": "Gays and lesbians .", "hypothesis": "Heterosexuals .", "label": 2},
]
XNLI_EN_VALIDATION = [{"premise": "And he said , Mama , I 'm home .", "hypothesis": "He did n't say a word .", "label": 2}]
XNLI_DE = [
    {"premise": "Und er sagte: Mama, ich bin daheim.", "hypothesis": "Er sagte kein Wort.", "label": 2},
    {"premise": "Und er sagte: Mama, ich bin daheim.",
     "hypothesis": "Er sagte seiner Mutter, er sei nach Hause gekommen.", "label": 0},
]
XNLI_AR = [{"premise": "وقال، ماما، لقد عدت للمنزل.", "hypothesis": "اتصل بأمه حالما أوصلته حافلة المدرسية.", "label": 1}]

# ---- google-research-datasets/paws-x (id, sentence1, sentence2, label 0 different / 1 paraphrase) ----------------
PAWSX_EN_TRAIN = [
    {"id": 1, "sentence1": "In Paris , in October 1560 , he secretly met the English ambassador , Nicolas Throckmorton "
     ", asking him for a passport to return to England through Scotland .",
     "sentence2": "In October 1560 , he secretly met with the English ambassador , Nicolas Throckmorton , in Paris , "
     "and asked him for a passport to return to Scotland through England .", "label": 0},
    {"id": 2, "sentence1": "The NBA season of 1975 -- 76 was the 30th season of the National Basketball Association .",
     "sentence2": "The 1975 -- 76 season of the National Basketball Association was the 30th season of the NBA .",
     "label": 1},
]
PAWSX_EN_VALIDATION = [
    {"id": 1, "sentence1": "In 1951 , Avon Publications published a comic adaptation in `` Rocket to the Moon '' , by "
     "writer Walter Gibson and the artist Joe Orlando .", "sentence2": "In 1951 , Avon Publications published a comic "
     "adaptation in `` Rocket to the Moon '' , by writer Joe Orlando and artist Walter Gibson .", "label": 0}]
PAWSX_DE = [{"id": 2, "sentence1": "Die NBA-Saison 1975 - 76 war die 30. Saison der National Basketball Association.",
             "sentence2": "Die Saison 1975 - 76 der National Basketball Association war die 30. Saison der NBA.",
             "label": 1}]
PAWSX_ZH = [
    {"id": 2, "sentence1": "1975-76 赛季的全国篮球协会是 NBA 的第 30 个赛季。",
     "sentence2": "1975-76 赛季的 NBA 是全国篮球协会的第 30 个赛季。", "label": 1},
    {"id": 3, "sentence1": "他出生于伦敦，后来搬到了巴黎。", "sentence2": "他出生于巴黎，后来搬到了伦敦。", "label": 0},
]

# ---- rajpurkar/squad, rajpurkar/squad_v2 (id, title, context, question, answers{text, answer_start}) ----------------
NOTRE_DAME = ("Architecturally, the school has a Catholic character. Atop the Main Building's gold dome is a golden "
              "statue of the Virgin Mary.")
SUPER_BOWL = ("Super Bowl 50 was an American football game to determine the champion of the National Football League "
              "(NFL) for the 2015 season. The American Football Conference (AFC) champion Denver Broncos defeated the "
              "National Football Conference (NFC) champion Carolina Panthers 24–10 to earn their third Super Bowl "
              "title.")
SQUAD_TRAIN = [{"id": "5733be284776f41900661182", "title": "University_of_Notre_Dame", "context": NOTRE_DAME,
                "question": "What sits on top of the Main Building at Notre Dame?",
                "answers": {"text": ["a golden statue of the Virgin Mary"], "answer_start": [92]}}]
SQUAD_VALIDATION = [
    {"id": "56be4db0acb8001400a502ec", "title": "Super_Bowl_50", "context": SUPER_BOWL,
     "question": "Which NFL team represented the AFC at Super Bowl 50?",
     "answers": {"text": ["Denver Broncos", "Denver Broncos", "Denver Broncos"], "answer_start": [177, 177, 177]}},
    {"id": "56be4db0acb8001400a502ed", "title": "Super_Bowl_50", "context": SUPER_BOWL,
     "question": "Which NFL team represented the NFC at Super Bowl 50?",
     "answers": {"text": ["Carolina Panthers", "Carolina Panthers", "Carolina Panthers"],
                 "answer_start": [249, 249, 249]}},
]
BEYONCE = ("Beyoncé Giselle Knowles-Carter (born September 4, 1981) is an American singer, songwriter, record producer "
           "and actress.")
NORMANS = ("The Normans (Norman: Nourmands; French: Normands; Latin: Normanni) were the people who in the 10th and 11th "
           "centuries gave their name to Normandy, a region in France.")
SQUAD_V2_TRAIN = [
    {"id": "56be85543aeaaa14008c9063", "title": "Beyoncé", "context": BEYONCE, "question": "When was Beyoncé born?",
     "answers": {"text": ["September 4, 1981"], "answer_start": [37]}},
    {"id": "5a8d7bf7df8bba001a0f9ab1", "title": "Beyoncé", "context": BEYONCE,
     "question": "When did Beyoncé release her first solo album?", "answers": {"text": [], "answer_start": []}},
]
SQUAD_V2_VALIDATION = [
    {"id": "56ddde6b9a695914005b9628", "title": "Normans", "context": NORMANS,
     "question": "In what country is Normandy located?",
     "answers": {"text": ["France", "France", "France", "France"], "answer_start": [159, 159, 159, 159]}},
    {"id": "5ad39d53604f3c001a3fe8d1", "title": "Normans", "context": NORMANS,
     "question": "Who gave their name to Normandy in the 1000's and 1100's", "answers": {"text": [], "answer_start": []}},
]

# ---- google/xquad (xquad.<lang>, one `validation` split; id, context, question, answers — no title) ---------------
XQUAD_RU_CONTEXT = ("Защита «Пантер» пропустила всего 308 очков, заняв шестое место в лиге, а также лидировала в НФЛ по "
                    "количеству перехватов — 24, и могла похвастаться четырьмя игроками, выбранными в Пробоул.")
XQUAD_ZH_CONTEXT = "黑豹队的防守只丢了 308 分，在联赛中排名第六，同时也以 24 次拦截领先 NFL，并且有四名球员入选职业碗。"
XQUAD_RU = [
    {"id": "56beb4343aeaaa14008c925b", "context": XQUAD_RU_CONTEXT, "question": "Сколько очков пропустила защита «Пантер»?",
     "answers": {"text": ["308"], "answer_start": [33]}},
    {"id": "56beb4343aeaaa14008c925c", "context": XQUAD_RU_CONTEXT, "question": "Какое место заняла защита «Пантер» в лиге?",
     "answers": {"text": ["шестое"], "answer_start": [50]}},
]
XQUAD_ZH = [{"id": "56beb4343aeaaa14008c925b", "context": XQUAD_ZH_CONTEXT, "question": "黑豹队的防守丢了多少分？",
             "answers": {"text": ["308"], "answer_start": [10]}}]

# ---- google/xtreme MLQA.<ctx>.<q> (SQuAD fields: context, question, answers, id) --------------------------------------------
MLQA_DE = [{"context": "Die Hauptstadt von Deutschland ist Berlin, die mit rund 3,7 Millionen Einwohnern auch die "
            "größte Stadt des Landes ist.", "question": "Was ist die Hauptstadt von Deutschland?",
            "answers": {"answer_start": [35], "text": ["Berlin"]}, "id": "5c4ea8d4b8c6ff1d2e1b0e6f9f8d87a4b5b06d3e"}]
MLQA_HI = [{"context": "भारत की राजधानी नई दिल्ली है, जो यमुना नदी के किनारे स्थित है।", "question": "भारत की राजधानी क्या है?",
            "answers": {"answer_start": [16], "text": ["नई दिल्ली"]}, "id": "0b7a1f0c5e43a0f4c9d2e8b1a6f3c7d5e9b2a4c8"}]
MLQA_DE_VALIDATION = [{"context": "Der Rhein ist ein Strom in Mitteleuropa.", "question": "Wo ist der Rhein?",
                       "answers": {"answer_start": [27], "text": ["Mitteleuropa"]},
                       "id": "9f1c0e2d3b4a5968778695a4b3c2d1e0f9e8d7c6"}]

# ---- google-research-datasets/tydiqa secondary_task (GoldP): every language in one config, ids start with it -------
TYDIQA_TRAIN = [
    {"id": "english-6429014224520133254-0", "title": "Bill Gates",
     "context": "William Henry Gates III (born October 28, 1955) is an American business magnate, software developer, "
     "investor, author, and philanthropist.", "question": "When was Bill Gates born?",
     "answers": {"text": ["October 28, 1955"], "answer_start": [30]}},
    {"id": "arabic--8416530425431446245-0", "title": "القاهرة", "context": "القاهرة هي عاصمة جمهورية مصر العربية وأكبر مدنها.",
     "question": "ما هي عاصمة مصر؟", "answers": {"text": ["القاهرة"], "answer_start": [0]}},
]
TYDIQA_EN_VALIDATION = [
    {"id": "english--8032405838512585225-1", "title": "Mount Everest",
     "context": "Mount Everest is Earth's highest mountain above sea level, located in the Mahalangur Himal sub-range of "
     "the Himalayas.", "question": "What is the highest mountain on Earth?",
     "answers": {"text": ["Mount Everest"], "answer_start": [0]}}]
TYDIQA_AR = [{"id": "arabic-2387335860751143628-1", "title": "قائمة نهائيات كأس العالم",
              "context": "أقيمت البطولة 21 مرة، شارك في النهائيات 78 دولة، وعدد الفرق التي فازت بالبطولة حتى الآن 8 فرق، "
              "ويعد المنتخب البرازيلي الأكثر تتويجاً بالكأس حيث فاز بها 5 مرات، وحققت الأوروغواي بطولتين.",
              "question": "كم عدد مرات فوز الأوروغواي ببطولة كاس العالم لكرو القدم؟",
              "answers": {"text": ["بطولتين"], "answer_start": [177]}}]
TYDIQA_RU = [{"id": "russian-5397455281932826375-0", "title": "Москва",
              "context": "Москва — столица России, город федерального значения, административный центр Центрального "
              "федерального округа.", "question": "Какой город является столицей России?",
              "answers": {"text": ["Москва"], "answer_start": [0]}}]

# ---- google/xtreme PAN-X.<lang> (tokens, ner_tags ClassLabel ints, langs) and udpos.<Name> (tokens, pos_tags) -----
PANX_EN_TRAIN = [
    {"tokens": ["R.H.", "Saunders", "(", "St.", "Lawrence", "River", ")", "(", "968", "MW", ")"],
     "ner_tags": [3, 4, 0, 3, 4, 4, 0, 0, 0, 0, 0], "langs": ["en"] * 11},
    {"tokens": ["Ricky", "Gervais"], "ner_tags": [1, 2], "langs": ["en", "en"]},
]
PANX_EN_VALIDATION = [{"tokens": ["Hamilton", ",", "Ontario"], "ner_tags": [5, 0, 5], "langs": ["en", "en", "en"]}]
PANX_DE = [{"tokens": ["Angela", "Merkel", "besuchte", "die", "Universität", "Leipzig", "."],
            "ner_tags": [1, 2, 0, 0, 3, 4, 0], "langs": ["de"] * 7}]
PANX_AR = [{"tokens": ["جامعة", "القاهرة", "في", "مصر"], "ner_tags": [3, 4, 0, 5], "langs": ["ar"] * 4}]
UDPOS_EN_TRAIN = [{"tokens": ["The", "sheikh", "in", "wheel", "-", "chair", "has", "been", "attacked", "."],
                   "pos_tags": [5, 7, 1, 7, 12, 7, 3, 3, 15, 12]}]
UDPOS_EN_VALIDATION = [{"tokens": ["From", "the", "AP", "comes", "this", "story", ":"],
                        "pos_tags": [1, 5, 11, 15, 5, 7, 12]}]
UDPOS_DE = [{"tokens": ["Sie", "gehen", "gut", "."], "pos_tags": [10, 15, 2, 12]}]
UDPOS_HI = [{"tokens": ["यह", "एशिया", "की", "सबसे", "बड़ी", "मस्जिदों", "में", "से", "एक", "है", "।"],
             "pos_tags": [10, 11, 1, 2, 0, 7, 1, 1, 8, 3, 12]}]

# ---- google/xtreme bucc18.<lang> (test) and tatoeba.<iso3> (validation): sentence pairs -----------------------------
BUCC_DE = [
    {"source_sentence": "Die Kommission hat heute einen Vorschlag angenommen.",
     "target_sentence": "The Commission adopted a proposal today.", "source_lang": "de", "target_lang": "en"},
    {"source_sentence": "Die Preise stiegen im März stark an.", "target_sentence": "Prices rose sharply in March.",
     "source_lang": "de", "target_lang": "en"},
]
BUCC_ZH = [{"source_sentence": "委员会今天通过了一项提案。", "target_sentence": "The Commission adopted a proposal today.",
            "source_lang": "zh", "target_lang": "en"}]
TATOEBA_RU = [{"source_sentence": "Я не знаю, что сказать.", "target_sentence": "I don't know what to say.",
               "source_lang": "rus", "target_lang": "eng"}]
TATOEBA_AR = [
    {"source_sentence": "أنا لا أعرف ماذا أقول.", "target_sentence": "I don't know what to say.", "source_lang": "ara",
     "target_lang": "eng"},
    {"source_sentence": "أحب القراءة.", "target_sentence": "I love reading.", "source_lang": "ara", "target_lang": "eng"},
]

# ---- facebook/anli plain_text (uid, premise, hypothesis, label, reason; train_r1..3, dev_r1..3, test_r1..3) --------
ANLI_TRAIN = {
    "train_r1": [{"uid": "0fd0abfb-659e-4453-b196-c3a64d2d8267",
                  "premise": "The Parma trolleybus system (Italian: \"Rete filoviaria di Parma\" ) forms part of the "
                  "public transport network of the city and \"comune\" of Parma, in the region of Emilia-Romagna, "
                  "northern Italy. In operation since 1953, the system presently comprises four urban routes.",
                  "hypothesis": "The trolleybus system has over 2 urban routes", "label": 0, "reason": ""}],
    "train_r2": [{"uid": "a1b9f7c4-2e5d-4c3b-9f0a-6d8e7c1b2a30", "premise": "Ernest Jones is a British jeweller and "
                  "watchmaker. Established in 1949, its first store was opened in Oxford Street, London.",
                  "hypothesis": "The first Ernest Jones store was opened on the continent of Europe.", "label": 0,
                  "reason": "Oxford Street is in London, which is in Europe."}],
    "train_r3": [{"uid": "77d3f6b2-95c1-4a1e-8c3d-0e9f2a4b6c58", "premise": "Where can I find the nearest pharmacy?",
                  "hypothesis": "The speaker is looking for a bakery.", "label": 2,
                  "reason": "The speaker asks for a pharmacy, not a bakery."}],
}
ANLI_DEV = {
    "dev_r1": [{"uid": "2d1f3c4b-5a69-4788-9a0b-c1d2e3f40516", "premise": "Marcus Allen Jr. is an American football "
                "player who played safety for Penn State.", "hypothesis": "Marcus Allen Jr. played baseball.",
                "label": 2, "reason": ""}],
    "dev_r2": [{"uid": "3e2a4d5c-6b7a-4899-8a1b-d2e3f4051627", "premise": "Tamanna is an Indian actress.",
                "hypothesis": "Tamanna has acted in a Telugu film.", "label": 1,
                "reason": "The text does not say which films she acted in."}],
    "dev_r3": [{"uid": "4f3b5e6d-7c8b-49aa-9b2c-e3f405162738", "premise": "It is raining in Lisbon today.",
                "hypothesis": "Lisbon is having wet weather today.", "label": 0, "reason": "Rain is wet weather."}],
}

# ---- nyu-mll/glue mnli/qqp/sst2 (idx), stanfordnlp/snli plain_text (-1: no gold label) -----------------------------
MNLI_TRAIN = [
    {"premise": "Conceptually cream skimming has two basic dimensions - product and geography.",
     "hypothesis": "Product and geography are what make cream skimming work. ", "label": 1, "idx": 0},
    {"premise": "you know during the season and i guess at at your level uh you lose them to the next level if if they "
     "decide to recall the the parent team the Braves decide to call to recall a guy from triple A then a double A guy "
     "goes up to replace him and a single A guy goes up to replace him",
     "hypothesis": "You lose the things to the following level if the people recall.", "label": 0, "idx": 1},
]
MNLI_VALIDATION_MATCHED = [{"premise": "The new rights are nice enough",
                            "hypothesis": "Everyone really likes the newest benefits ", "label": 1, "idx": 0}]
MNLI_VALIDATION_MISMATCHED = [{"premise": "Your contribution helped make it possible for us to provide our students "
                               "with a quality education.",
                               "hypothesis": "Your contributions were of no help with our students' education.",
                               "label": 2, "idx": 0}]
MNLI_TEST_MATCHED = [{"premise": "Hierbas, ans seco, ans dulce, and frigola are just a few names worth keeping a look-out "
                      "for.", "hypothesis": "Hierbas is a name worth looking out for.", "label": -1, "idx": 0}]
SNLI_TRAIN = [
    {"premise": "A person on a horse jumps over a broken down airplane.",
     "hypothesis": "A person is training his horse for a competition.", "label": 1},
    {"premise": "A person on a horse jumps over a broken down airplane.",
     "hypothesis": "A person is at a diner, ordering an omelette.", "label": 2},
    {"premise": "A boy is jumping on skateboard in the middle of a red bridge.",
     "hypothesis": "The boy skates down the sidewalk.", "label": -1},
    {"premise": "A person on a horse jumps over a broken down airplane.",
     "hypothesis": "A person is outdoors, on a horse.", "label": 0},
]
SNLI_VALIDATION = [
    {"premise": "Two women are embracing while holding to go packages.",
     "hypothesis": "The sisters are hugging goodbye while holding to go packages after just eating lunch.", "label": 1},
    {"premise": "Two women are embracing while holding to go packages.",
     "hypothesis": "Two woman are holding packages.", "label": 0},
    {"premise": "Two young children in blue jerseys, one with the number 9 and one with the number 2 are standing on "
     "wooden steps in a bathroom and washing their hands in a sink.", "hypothesis": "Two kids in jackets walk to school.",
     "label": -1},
]
QQP_TRAIN = [
    {"question1": "How is the life of a math student? Could you describe your own experiences?",
     "question2": "Which level of prepration is enough for the exam jlpt5?", "label": 0, "idx": 0},
    {"question1": "How do I control my horny emotions?", "question2": "How do you control your horniness?",
     "label": 1, "idx": 1},
]
QQP_VALIDATION = [{"question1": "Why are African-Americans so beautiful?", "question2": "Why are hispanics so beautiful?",
                   "label": 0, "idx": 0}]
SST2_TRAIN = [
    {"sentence": "hide new secretions from the parental units ", "label": 0, "idx": 0},
    {"sentence": "that loves its characters and communicates something rather beautiful about human nature ",
     "label": 1, "idx": 1},
]
SST2_VALIDATION = [{"sentence": "it 's a charming and often affecting journey . ", "label": 1, "idx": 0}]

# ---- Rowan/hellaswag (ind, ctx, endings[4], label as a *string*), allenai/cosmos_qa, tau/commonsense_qa -------------
HELLASWAG_TRAIN = [{
    "ind": 4, "activity_label": "Removing ice from car",
    "ctx_a": "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles.",
    "ctx_b": "then",
    "ctx": "Then, the man writes over the snow covering the window of a car, and a woman wearing winter clothes smiles. "
           "then",
    "endings": [", the man adds wax to the windshield and cuts it.",
                ", a person board a ski lift, while two men supporting the head of the person wearing winter clothes "
                "snow as the we girls sled.", ", the man puts on a christmas coat, knitted with netting.",
                ", the man continues removing the snow on his car."],
    "source_id": "activitynet~v_-1IBHYS3L-Y", "split": "train", "split_type": "indomain", "label": "3"}]
HELLASWAG_VALIDATION = [{
    "ind": 24, "activity_label": "Roof shingle removal", "ctx_a": "A man is sitting on a roof.", "ctx_b": "he",
    "ctx": "A man is sitting on a roof. he",
    "endings": ["is using wrap to wrap a pair of skis.", "is ripping level tiles off.", "is holding a rubik's cube.",
                "starts pulling up roofing on a roof."],
    "source_id": "activitynet~v_-JhWjGDPHMY", "split": "val", "split_type": "zeroshot", "label": "3"}]
COSMOSQA_TRAIN = [{
    "id": "3Q9SPIIRWJKVQ8244310E8TUS6YWAC##34V1S5K3GTZMDUBNBIGY93FLDOB690##A1S1K7134S2VUC##Blog_1044056##q1_a1##"
          "3XU9MCX6VQQG7YPLCSAFDPQNH4GR20",
    "context": "Good Old War and person L : I saw both of these bands Wednesday night , and they both blew me away . "
               "seriously . Good Old War is acoustic and makes me smile .",
    "question": "In the future , will this person go to see other bands play ?",
    "answer0": "None of the above choices .",
    "answer1": "This person likes music and likes to see the show , they will see other bands play .",
    "answer2": "This person only likes Good Old War and Person L , no other bands .",
    "answer3": "Other Bands is not on tour and this person can not see them .", "label": 1}]
COSMOSQA_VALIDATION = [{
    "id": "3BFF0DJK8XA7YNK4QYIGCOG1A95STF##3180JW2OT5AF02OISBX66RFOCTG5J7##A2LTOS0AZ3B28A##Blog_56156##q1_a1##"
          "378G7J1SJNCDAAIN46FM2P7T6AHEW2",
    "context": "Do i need to go for a legal divorce ? I wanted to marry a woman but she is not in the same religion , so "
               "i am not concern of the marriage inside church .",
    "question": "Why is this person asking about divorce ?",
    "answer0": "If he gets married in the church he wo nt have to get a divorce .",
    "answer1": "He wants to get married to a different person .",
    "answer2": "He wants to know if he does nt like this girl can he divorce her ?",
    "answer3": "None of the above choices .", "label": 1}]
# aps/super_glue copa and cambridgeltl/xcopa (premise, choice1, choice2, question "cause"/"effect", label 0/1, idx)
COPA_TRAIN = [{"premise": "My body cast a shadow over the grass.", "choice1": "The sun was rising.",
               "choice2": "The grass was cut.", "question": "cause", "idx": 0, "label": 0},
              {"premise": "The elderly woman suffered a stroke.", "choice1": "The woman's daughter came over to clean "
               "her house.", "choice2": "The woman's daughter moved in to take care of her.", "question": "effect",
               "idx": 1, "label": 1}]
COPA_VALIDATION = [{"premise": "The man turned on the faucet.", "choice1": "The toilet filled with water.",
                    "choice2": "Water flowed from the spout.", "question": "effect", "idx": 0, "label": 1}]
XCOPA_ZH = [{"premise": "这个物品被包在了泡沫包装里。", "choice1": "它很易碎。", "choice2": "它很小。",
             "question": "cause", "label": 0, "idx": 1, "changed": False}]
XCOPA_TR = [{"premise": "Ürün balonlu naylonla paketlenmişti.", "choice1": "Kırılgandı.", "choice2": "Küçüktü.",
             "question": "cause", "label": 0, "idx": 1, "changed": False}]
LETTERS = ["A", "B", "C", "D", "E"]
COMMONSENSEQA_TRAIN = [
    {"id": "075e483d21c29a511267ef62bedc0461",
     "question": "The sanctions against the school were a punishing blow, and they seemed to what the efforts the "
                 "school had made to change?", "question_concept": "punishing",
     "choices": {"label": LETTERS, "text": ["ignore", "enforce", "authoritarian", "yell at", "avoid"]}, "answerKey": "A"},
    {"id": "a7ab086045575bb497933726e4e6ad28",
     "question": "Where would you find magazines along side many other printed works?", "question_concept": "magazines",
     "choices": {"label": LETTERS, "text": ["doctor", "bookstore", "market", "train station", "mortuary"]},
     "answerKey": "B"},
]
COMMONSENSEQA_VALIDATION = [
    {"id": "1afa02df02c908a558b4036e80242fac",
     "question": "A revolving door is convenient for two direction travel, but it also serves as a security measure at "
                 "a what?", "question_concept": "revolving door",
     "choices": {"label": LETTERS, "text": ["bank", "library", "department store", "mall", "new york"]},
     "answerKey": "A"}]

# ---- CCGbank (LDC, local files only): tokens and supertags --------------------------------------------------------
CCG_TRAIN = [{"tokens": ["Pierre", "Vinken", ",", "61", "years", "old", ",", "will", "join", "the", "board", "."],
              "tags": ["N/N", "N", ",", "N/N", "N", "(S[adj]\\NP)\\NP", ",", "(S[dcl]\\NP)/(S[b]\\NP)",
                       "((S[b]\\NP)/PP)/NP", "NP[nb]/N", "N", "."]}]
CCG_VALIDATION = [{"tokens": ["Mr.", "Vinken", "is", "chairman", "."],
                   "tags": ["N/N", "N", "(S[dcl]\\NP)/NP", "N", "."]}]


def qa(rows, language="en"):
    return [{"id": r["id"], "language": language, "text_a": r["question"], "text_b": r["context"],
             "answer_texts": r["answers"]["text"], "answer_starts": r["answers"]["answer_start"]} for r in rows]


MNLI_EXPECT_TRAIN = [{"id": "0", "text_a": "Conceptually cream skimming…", "text_b": "Product and geography…",
                      "label": "neutral"},
                     {"id": "1", "text_a": "you know during the season…", "label": "entailment"}]
SNLI_EXPECT_TRAIN = [{"text_b": "A person is training his horse for a competition.", "label": "neutral"},
                     {"text_b": "A person is at a diner, ordering an omelette.", "label": "contradiction"},
                     {"text_b": "A person is outdoors, on a horse.", "label": "entailment"}]
ANLI_EXPECT_TRAIN = [{"id": "0fd0abfb-659e-4453-b196-c3a64d2d8267", "language": "en", "text_a": "The Parma trolleybus…",
                      "text_b": "The trolleybus system has over 2 urban routes", "label": "entailment"},
                     {"id": "a1b9f7c4-2e5d-4c3b-9f0a-6d8e7c1b2a30", "label": "entailment"},
                     {"id": "77d3f6b2-95c1-4a1e-8c3d-0e9f2a4b6c58", "label": "contradiction"}]

FORMATS: dict[str, Format] = {
    "xnli": Format(
        local={"train": XNLI_EN_TRAIN, "validation": XNLI_EN_VALIDATION,
               # an English test row that is not selected: only the requested languages are kept
               "test": lang("de", XNLI_DE) + lang("en", XNLI_EN_VALIDATION) + lang("ar", XNLI_AR)},
        hub={("en", "train"): XNLI_EN_TRAIN, ("en", "validation"): XNLI_EN_VALIDATION, ("en", "test"): XNLI_EN_VALIDATION,
             ("de", "test"): XNLI_DE, ("ar", "test"): XNLI_AR},
        languages=("de", "ar"),
        expect={"train": [{"language": "en", "text_a": XNLI_EN_TRAIN[0]["premise"],
                           "text_b": XNLI_EN_TRAIN[0]["hypothesis"], "label": "neutral"},
                          {"label": "entailment"}, {"text_a": "Gays and lesbians .", "label": "contradiction"}],
                "validation": [{"language": "en", "text_b": "He did n't say a word .", "label": "contradiction"}],
                "test": [{"language": "de", "text_a": "Und er sagte: Mama, ich bin daheim.",
                          "text_b": "Er sagte kein Wort.", "label": "contradiction"},
                         {"language": "de", "text_b": "Er sagte seiner Mutter…", "label": "entailment"},
                         {"language": "ar", "text_a": "وقال، ماما، لقد عدت للمنزل.",
                          "text_b": "اتصل بأمه حالما أوصلته حافلة المدرسية.", "label": "neutral"}]}),
    "pawsx": Format(
        local={"train": PAWSX_EN_TRAIN, "validation": PAWSX_EN_VALIDATION,
               "test": lang("de", PAWSX_DE) + lang("zh", PAWSX_ZH)},
        hub={("en", "train"): PAWSX_EN_TRAIN, ("en", "validation"): PAWSX_EN_VALIDATION, ("de", "test"): PAWSX_DE,
             ("zh", "test"): PAWSX_ZH},
        languages=("de", "zh"),
        expect={"train": [{"id": "1", "language": "en", "text_a": "In Paris , in October 1560…",
                           "text_b": "In October 1560…", "label": "different"},
                          {"id": "2", "label": "paraphrase"}],
                "validation": [{"id": "1", "label": "different"}],
                "test": [{"id": "2", "language": "de", "text_a": "Die NBA-Saison 1975 - 76…", "label": "paraphrase"},
                         {"id": "2", "language": "zh", "text_a": "1975-76 赛季的全国篮球协会是 NBA 的第 30 个赛季。",
                          "text_b": "1975-76 赛季的 NBA 是全国篮球协会的第 30 个赛季。", "label": "paraphrase"},
                         {"id": "3", "language": "zh", "label": "different"}]}),
    "squad": Format(
        local={"train": SQUAD_TRAIN, "validation": SQUAD_VALIDATION},
        hub={("plain_text", "train"): SQUAD_TRAIN, ("plain_text", "validation"): SQUAD_VALIDATION},
        expect={"train": qa(SQUAD_TRAIN), "validation": [
            {"id": "56be4db0acb8001400a502ec", "text_a": "Which NFL team represented the AFC at Super Bowl 50?",
             "text_b": SUPER_BOWL, "answer_texts": ["Denver Broncos"] * 3, "answer_starts": [177] * 3},
            {"id": "56be4db0acb8001400a502ed", "answer_texts": ["Carolina Panthers"] * 3, "answer_starts": [249] * 3}]}),
    "squad_v2": Format(
        local={"train": SQUAD_V2_TRAIN, "validation": SQUAD_V2_VALIDATION},
        hub={("squad_v2", "train"): SQUAD_V2_TRAIN, ("squad_v2", "validation"): SQUAD_V2_VALIDATION},
        expect={"train": qa(SQUAD_V2_TRAIN), "validation": [
            {"id": "56ddde6b9a695914005b9628", "answer_texts": ["France"] * 4, "answer_starts": [159] * 4},
            {"id": "5ad39d53604f3c001a3fe8d1", "text_b": NORMANS, "answer_texts": [], "answer_starts": []}]}),
    "xquad": Format(
        local={"test": lang("ru", XQUAD_RU) + lang("zh", XQUAD_ZH)},
        hub={("xquad.ru", "validation"): XQUAD_RU, ("xquad.zh", "validation"): XQUAD_ZH},
        languages=("ru", "zh"),
        expect={"test": qa(XQUAD_RU, "ru") + qa(XQUAD_ZH, "zh")}),
    "mlqa": Format(
        local={"test": lang("de", MLQA_DE) + lang("hi", MLQA_HI)},
        hub={("MLQA.de.de", "test"): MLQA_DE, ("MLQA.de.de", "validation"): MLQA_DE_VALIDATION,
             ("MLQA.hi.hi", "test"): MLQA_HI},
        languages=("de", "hi"),
        expect={"test": [{"id": MLQA_DE[0]["id"], "language": "de", "text_a": "Was ist die Hauptstadt von Deutschland?",
                          "answer_texts": ["Berlin"], "answer_starts": [35]},
                         {"id": MLQA_HI[0]["id"], "language": "hi", "text_a": "भारत की राजधानी क्या है?",
                          "text_b": "भारत की राजधानी नई दिल्ली है…", "answer_texts": ["नई दिल्ली"], "answer_starts": [16]}]}),
    "tydiqa": Format(
        local={"train": lang("en", TYDIQA_TRAIN[:1]) + lang("ar", TYDIQA_TRAIN[1:]), "validation": TYDIQA_EN_VALIDATION,
               "test": lang("ar", TYDIQA_AR) + lang("ru", TYDIQA_RU)},
        hub={("secondary_task", "train"): TYDIQA_TRAIN,
             ("secondary_task", "validation"): TYDIQA_EN_VALIDATION + TYDIQA_AR + TYDIQA_RU},
        languages=("ar", "ru"),
        expect={"train": qa(TYDIQA_TRAIN[:1]), "validation": qa(TYDIQA_EN_VALIDATION),
                "test": qa(TYDIQA_AR, "ar") + qa(TYDIQA_RU, "ru")}),
    "panx": Format(
        local={"train": PANX_EN_TRAIN, "validation": PANX_EN_VALIDATION,
               "test": lang("de", PANX_DE) + lang("ar", PANX_AR)},
        hub={("PAN-X.en", "train"): PANX_EN_TRAIN, ("PAN-X.en", "validation"): PANX_EN_VALIDATION,
             ("PAN-X.de", "test"): PANX_DE, ("PAN-X.ar", "test"): PANX_AR},
        languages=("de", "ar"),
        expect={"train": [{"language": "en", "tokens": PANX_EN_TRAIN[0]["tokens"],
                           "tags": ["B-ORG", "I-ORG", "O", "B-ORG", "I-ORG", "I-ORG", "O", "O", "O", "O", "O"]},
                          {"tokens": ["Ricky", "Gervais"], "tags": ["B-PER", "I-PER"]}],
                "validation": [{"tokens": ["Hamilton", ",", "Ontario"], "tags": ["B-LOC", "O", "B-LOC"]}],
                "test": [{"language": "de", "tokens": PANX_DE[0]["tokens"],
                          "tags": ["B-PER", "I-PER", "O", "O", "B-ORG", "I-ORG", "O"]},
                         {"language": "ar", "tokens": ["جامعة", "القاهرة", "في", "مصر"],
                          "tags": ["B-ORG", "I-ORG", "O", "B-LOC"]}]}),
    "udpos": Format(
        local={"train": UDPOS_EN_TRAIN, "validation": UDPOS_EN_VALIDATION,
               "test": lang("de", UDPOS_DE) + lang("hi", UDPOS_HI)},
        hub={("udpos.English", "train"): UDPOS_EN_TRAIN, ("udpos.English", "validation"): UDPOS_EN_VALIDATION,
             ("udpos.German", "test"): UDPOS_DE, ("udpos.Hindi", "test"): UDPOS_HI},
        languages=("de", "hi"),
        expect={"train": [{"tags": ["DET", "NOUN", "ADP", "NOUN", "PUNCT", "NOUN", "AUX", "AUX", "VERB", "PUNCT"]}],
                "validation": [{"tokens": UDPOS_EN_VALIDATION[0]["tokens"],
                                "tags": ["ADP", "DET", "PROPN", "VERB", "DET", "NOUN", "PUNCT"]}],
                "test": [{"language": "de", "tokens": ["Sie", "gehen", "gut", "."],
                          "tags": ["PRON", "VERB", "ADV", "PUNCT"]},
                         {"language": "hi", "tokens": UDPOS_HI[0]["tokens"],
                          "tags": ["PRON", "PROPN", "ADP", "ADV", "ADJ", "NOUN", "ADP", "ADP", "NUM", "AUX", "PUNCT"]}]}),
    "bucc18": Format(
        local={"test": lang("de", BUCC_DE) + lang("zh", BUCC_ZH)},
        hub={("bucc18.de", "validation"): BUCC_DE[1:], ("bucc18.de", "test"): BUCC_DE, ("bucc18.zh", "test"): BUCC_ZH},
        languages=("de", "zh"),
        expect={"test": [
            {"id": "de-000001", "language": "de", "side": "source",
             "text_a": "Die Kommission hat heute einen Vorschlag angenommen.", "label": "de-000001-en"},
            {"id": "de-000001-en", "language": "de", "side": "target", "text_a": "The Commission adopted a proposal today.",
             "label": None},
            {"language": "de", "side": "source", "text_a": "Die Preise stiegen im März stark an."},
            {"language": "de", "side": "target", "text_a": "Prices rose sharply in March."},
            {"language": "zh", "side": "source", "text_a": "委员会今天通过了一项提案。"},
            {"language": "zh", "side": "target", "text_a": "The Commission adopted a proposal today."}]}),
    "tatoeba": Format(
        local={"test": lang("ru", TATOEBA_RU) + lang("ar", TATOEBA_AR)},
        hub={("tatoeba.rus", "validation"): TATOEBA_RU, ("tatoeba.ara", "validation"): TATOEBA_AR},
        languages=("ru", "ar"),
        expect={"test": [
            {"id": "ru-000001", "language": "ru", "side": "source", "text_a": "Я не знаю, что сказать.",
             "label": "ru-000001-en"},
            {"id": "ru-000001-en", "language": "ru", "side": "target", "text_a": "I don't know what to say.",
             "label": None},
            {"language": "ar", "side": "source", "text_a": "أنا لا أعرف ماذا أقول."},
            {"language": "ar", "side": "target", "text_a": "I don't know what to say."},
            {"language": "ar", "side": "source", "text_a": "أحب القراءة."},
            {"language": "ar", "side": "target", "text_a": "I love reading."}]}),
    "anli": Format(
        local={"train": [r for rows in ANLI_TRAIN.values() for r in rows],
               "validation": [r for rows in ANLI_DEV.values() for r in rows]},
        hub={**{("plain_text", s): rows for s, rows in ANLI_TRAIN.items()},
             **{("plain_text", s): rows for s, rows in ANLI_DEV.items()},
             ("plain_text", "test_r1"): ANLI_DEV["dev_r3"]},
        expect={"train": ANLI_EXPECT_TRAIN,
                "validation": [{"id": "2d1f3c4b-5a69-4788-9a0b-c1d2e3f40516", "label": "contradiction"},
                               {"id": "3e2a4d5c-6b7a-4899-8a1b-d2e3f4051627", "label": "neutral"},
                               {"id": "4f3b5e6d-7c8b-49aa-9b2c-e3f405162738", "label": "entailment"}]},
        # ANLI+ (Phang et al.): the hub's three train rounds, then MNLI's and SNLI's train splits (SNLI's -1 dropped)
        hub_expect={"train": ANLI_EXPECT_TRAIN + MNLI_EXPECT_TRAIN + SNLI_EXPECT_TRAIN}),
    "mnli": Format(
        local={"train": MNLI_TRAIN, "validation": MNLI_VALIDATION_MATCHED},
        hub={("mnli", "train"): MNLI_TRAIN, ("mnli", "validation_matched"): MNLI_VALIDATION_MATCHED,
             ("mnli", "validation_mismatched"): MNLI_VALIDATION_MISMATCHED, ("mnli", "test_matched"): MNLI_TEST_MATCHED},
        expect={"train": MNLI_EXPECT_TRAIN,
                "validation": [{"id": "0", "text_a": "The new rights are nice enough", "label": "neutral"}]}),
    "snli": Format(
        local={"train": SNLI_TRAIN, "validation": SNLI_VALIDATION},
        hub={("plain_text", "train"): SNLI_TRAIN, ("plain_text", "validation"): SNLI_VALIDATION},
        expect={"train": SNLI_EXPECT_TRAIN,
                "validation": [{"text_a": "Two women are embracing…", "label": "neutral"},
                               {"text_b": "Two woman are holding packages.", "label": "entailment"}]}),
    "qqp": Format(
        local={"train": QQP_TRAIN, "validation": QQP_VALIDATION},
        hub={("qqp", "train"): QQP_TRAIN, ("qqp", "validation"): QQP_VALIDATION},
        expect={"train": [{"id": "0", "text_a": "How is the life of a math student?…",
                           "text_b": "Which level of prepration is enough for the exam jlpt5?", "label": "not_duplicate"},
                          {"id": "1", "label": "duplicate"}],
                "validation": [{"id": "0", "label": "not_duplicate"}]}),
    "sst2": Format(
        local={"train": SST2_TRAIN, "validation": SST2_VALIDATION},
        hub={("sst2", "train"): SST2_TRAIN, ("sst2", "validation"): SST2_VALIDATION},
        expect={"train": [{"id": "0", "language": "en", "text_a": "hide new secretions from the parental units ",
                           "text_b": None, "label": "negative"}, {"id": "1", "label": "positive"}],
                "validation": [{"id": "0", "text_b": None, "label": "positive"}]}),
    "copa": Format(
        local={"train": COPA_TRAIN, "validation": COPA_VALIDATION},
        hub={("copa", "train"): COPA_TRAIN, ("copa", "validation"): COPA_VALIDATION},
        expect={"train": [{"id": "0", "text_a": "My body cast a shadow over the grass.", "text_b": "What was the cause?",
                           "choices": ["The sun was rising.", "The grass was cut."], "label": "0"},
                          {"text_b": "What happened as a result?", "label": "1"}],
                "validation": [{"choices": ["The toilet filled with water.", "Water flowed from the spout."],
                                "label": "1"}]}),
    "xcopa": Format(
        local={"test": lang("zh", XCOPA_ZH) + lang("tr", XCOPA_TR)},
        hub={("zh", "test"): XCOPA_ZH, ("tr", "test"): XCOPA_TR},
        languages=("zh", "tr"),
        expect={"test": [{"id": "1", "language": "zh", "text_a": "这个物品被包在了泡沫包装里。", "text_b": "What was the cause?",
                          "choices": ["它很易碎。", "它很小。"], "label": "0"},
                         {"id": "1", "language": "tr", "choices": ["Kırılgandı.", "Küçüktü."], "label": "0"}]}),
    "hellaswag": Format(
        local={"train": HELLASWAG_TRAIN, "validation": HELLASWAG_VALIDATION},
        hub={("default", "train"): HELLASWAG_TRAIN, ("default", "validation"): HELLASWAG_VALIDATION},
        expect={"train": [{"id": "4", "text_a": HELLASWAG_TRAIN[0]["ctx"], "text_b": None,
                           "choices": HELLASWAG_TRAIN[0]["endings"], "label": "3"}],
                "validation": [{"id": "24", "text_a": "A man is sitting on a roof. he",
                                "choices": HELLASWAG_VALIDATION[0]["endings"], "label": "3"}]}),
    "cosmosqa": Format(
        local={"train": COSMOSQA_TRAIN, "validation": COSMOSQA_VALIDATION},
        hub={("default", "train"): COSMOSQA_TRAIN, ("default", "validation"): COSMOSQA_VALIDATION},
        expect={"train": [{"id": COSMOSQA_TRAIN[0]["id"], "text_a": "Good Old War and person L…",
                           "text_b": "In the future , will this person go to see other bands play ?",
                           "choices": [COSMOSQA_TRAIN[0][f"answer{i}"] for i in range(4)], "label": "1"}],
                "validation": [{"text_b": "Why is this person asking about divorce ?",
                                "choices": [COSMOSQA_VALIDATION[0][f"answer{i}"] for i in range(4)], "label": "1"}]}),
    "commonsenseqa": Format(
        local={"train": COMMONSENSEQA_TRAIN, "validation": COMMONSENSEQA_VALIDATION},
        hub={("default", "train"): COMMONSENSEQA_TRAIN, ("default", "validation"): COMMONSENSEQA_VALIDATION},
        expect={"train": [{"id": "075e483d21c29a511267ef62bedc0461", "text_a": "The sanctions against the school…",
                           "text_b": None, "choices": ["ignore", "enforce", "authoritarian", "yell at", "avoid"],
                           "label": "0"},
                          {"choices": ["doctor", "bookstore", "market", "train station", "mortuary"], "label": "1"}],
                "validation": [{"choices": ["bank", "library", "department store", "mall", "new york"],
                                "label": "0"}]}),
    "ccg": Format(
        local={"train": CCG_TRAIN, "validation": CCG_VALIDATION},
        hub={},  # CCGbank is LDC-licensed: no hub copy
        expect={"train": [{"tokens": CCG_TRAIN[0]["tokens"], "tags": CCG_TRAIN[0]["tags"]}],
                "validation": [{"tokens": ["Mr.", "Vinken", "is", "chairman", "."],
                                "tags": ["N/N", "N", "(S[dcl]\\NP)/NP", "N", "."]}]}),
}


# ---- code tasks -------------------------------------------------------------------------------------------------------
# google/code_x_glue_cc_defect_detection (id, func, target: bool, project, commit_id)
DEFECT_TRAIN = [
    {"id": 0, "func": "static av_cold int vdadec_init(AVCodecContext *avctx)\n\n{\n\n    VDADecoderContext *ctx = "
     "avctx->priv_data;\n\n    ctx->h264_initialized = 0;\n\n    return 0;\n\n}\n", "target": False, "project": "FFmpeg",
     "commit_id": "973b1a6b9070e2bf17d17568cbaf4043ce931f51"},
    {"id": 1, "func": "static int get_buf(QEMUFile *f, uint8_t *buf, int size)\n\n{\n\n    memcpy(buf, f->buf, "
     "size);\n\n    return size;\n\n}\n", "target": True, "project": "qemu",
     "commit_id": "321bc0b2b27ed0ef8b2ad2a7f4e1cb5bd1b3e5b9"},
]
DEFECT_VALIDATION = [{"id": 21854, "func": "void qemu_free(void *ptr)\n{\n    free(ptr);\n    *(int *)ptr = 0;\n}\n",
                      "target": True, "project": "qemu", "commit_id": "0b5538c300a56c3cfb33022840fe0b4968147e7a"}]
# google/code_x_glue_cc_clone_detection_big_clone_bench (id, id1, id2, func1, func2, label: bool)
CLONE_TRAIN = [
    {"id": 0, "id1": 13988825, "id2": 8660836,
     "func1": "    private void setNodekeyInJsonResponse(String service) throws Exception {\n        String filename = "
     "this.baseDirectory + service + \".json\";\n        Scanner s = new Scanner(new File(filename));\n    }\n",
     "func2": "    public static int sum(int[] a) {\n        int s = 0;\n        for (int x : a) s += x;\n        return s;\n"
     "    }\n", "label": False},
    {"id": 1, "id1": 80378, "id2": 18548122,
     "func1": "    public static String reverse(String s) {\n        return new StringBuilder(s).reverse().toString();\n"
     "    }\n",
     "func2": "    public static String flip(String t) {\n        char[] c = t.toCharArray();\n        for (int i = 0, j = "
     "c.length - 1; i < j; i++, j--) { char x = c[i]; c[i] = c[j]; c[j] = x; }\n        return new String(c);\n    }\n",
     "label": True},
]
CLONE_VALIDATION = [{"id": 0, "id1": 1, "id2": 2, "func1": "int f(int n) { return n * 2; }",
                     "func2": "int g(int m) { return m + m; }", "label": True}]
# google/code_x_glue_tc_nl_code_search_adv: `language` is the programming language
SEARCH_TRAIN = [
    {"id": 0, "repo": "ageitgey/face_recognition", "path": "examples/face_recognition_knn.py", "func_name": "train",
     "original_string": "def train(train_dir):\n    \"\"\"Trains a k-nearest neighbors classifier.\"\"\"\n    return knn\n",
     "language": "python", "code": "def train(train_dir):\n    return knn\n",
     "code_tokens": ["def", "train", "(", "train_dir", ")", ":", "return", "knn"],
     "docstring": "Trains a k-nearest neighbors classifier for face recognition.",
     "docstring_tokens": ["Trains", "a", "k", "-", "nearest", "neighbors", "classifier", "for", "face", "recognition"],
     "sha": "c96b010c02f15e8eeb0f71308c641179ac1f19bb",
     "url": "https://github.com/ageitgey/face_recognition/blob/c96b010c02f15e8eeb0f71308c641179ac1f19bb/examples/"
            "face_recognition_knn.py#L46-L108"},
    {"id": 1, "repo": "apache/airflow", "path": "airflow/utils/file.py", "func_name": "mkdirs",
     "original_string": "def mkdirs(path, mode):\n    \"\"\"Creates the directory specified by path.\"\"\"\n    os.makedirs(path, mode)\n",
     "language": "python", "code": "def mkdirs(path, mode):\n    os.makedirs(path, mode)\n",
     "code_tokens": ["def", "mkdirs", "(", "path", ",", "mode", ")", ":", "os", ".", "makedirs", "(", "path", ",", "mode",
                     ")"], "docstring": "Creates the directory specified by path, creating intermediate directories.",
     "docstring_tokens": ["Creates", "the", "directory", "specified", "by", "path"],
     "sha": "b69c686ad8a0c89b9136bb4b31767257eb7b2597",
     "url": "https://github.com/apache/airflow/blob/b69c686ad8a0c89b9136bb4b31767257eb7b2597/airflow/utils/file.py#L42"},
]
SEARCH_VALIDATION = [dict(SEARCH_TRAIN[1], id=7)]
# google-research-datasets/mbpp "full" (task_id, text, code with \r\n, test_list, test_setup_code, challenge_test_list)
MBPP_TRAIN = [{"task_id": 602, "text": "Write a python function to find the first repeated character in a given string.",
               "code": "def first_repeated_char(str1):\r\n  for index,c in enumerate(str1):\r\n    if str1[:index+1].count(c)"
               " > 1:\r\n      return c \r\n  return \"None\"",
               "test_list": ["assert first_repeated_char(\"abcabc\") == \"a\"", "assert first_repeated_char(\"abc\") == \"None\"",
                             "assert first_repeated_char(\"123123\") == \"1\""],
               "test_setup_code": "", "challenge_test_list": []}]
MBPP_VALIDATION = [{"task_id": 511, "text": "Write a python function to find minimum sum of factors of a given number.",
                    "code": "def find_Min_Sum(num): \r\n    sum = 0\r\n    i = 2\r\n    while(i * i <= num): \r\n        "
                    "while(num % i == 0): \r\n            sum += i \r\n            num /= i \r\n        i += 1\r\n    "
                    "sum += num \r\n    return sum",
                    "test_list": ["assert find_Min_Sum(12) == 7", "assert find_Min_Sum(105) == 15",
                                  "assert find_Min_Sum(2) == 2"], "test_setup_code": "", "challenge_test_list": []}]
MBPP_PROGRAM_TRAIN = ("def first_repeated_char(str1):\n  for index,c in enumerate(str1):\n    if str1[:index+1].count(c) "
                      "> 1:\n      return c \n  return \"None\"\n")
# openai/openai_humaneval (task_id, prompt, canonical_solution, test, entry_point)
TRUNCATE_PROMPT = ("\n\ndef truncate_number(number: float) -> float:\n    \"\"\" Given a positive floating point number, it "
                   "can be decomposed into\n    and integer part (largest integer smaller than given number) and decimals\n"
                   "    (leftover part always smaller than 1).\n\n    Return the decimal part of the number.\n"
                   "    >>> truncate_number(3.5)\n    0.5\n    \"\"\"\n")
TRUNCATE_TEST = ("\n\nMETADATA = {\n    'author': 'jt',\n    'dataset': 'test'\n}\n\n\ndef check(candidate):\n"
                 "    assert candidate(3.5) == 0.5\n    assert abs(candidate(1.33) - 0.33) < 1e-6\n"
                 "    assert abs(candidate(123.456) - 0.456) < 1e-6\n")
HUMANEVAL_TEST = [{"task_id": "HumanEval/2", "prompt": TRUNCATE_PROMPT, "canonical_solution": "    return number % 1.0\n",
                   "test": TRUNCATE_TEST, "entry_point": "truncate_number"}]
# mxeval/mbxp: one config per programming language (`language`), split test; read from its parquet export
MBXP_JS = [{"task_id": "MBJSP/3", "language": "javascript",
            "prompt": "/**\n * Write a JavaScript function to identify non-prime numbers.\n * > isNotPrime(2)\n * false\n"
                      " */\nfunction isNotPrime(n) {\n",
            "test": "const _ = require(\"lodash\")\n\nfunction test() {\n  var x0 = isNotPrime(2);\n"
                    "  if (!(x0 == false)) { throw 'Error at 1th assert statement. Value = ' + JSON.stringify(x0) }\n}\n"
                    "test();\n",
            "entry_point": "isNotPrime", "canonical_solution": "  for (let i = 2; i * i <= n; i++) if (n % i === 0) "
            "return true;\n  return false;\n}\n", "description": "Write a JavaScript function to identify non-prime numbers."}]
MBXP_JAVA = [{"task_id": "MBJP/3", "language": "java",
              "prompt": "import java.io.*;\nimport java.lang.*;\nimport java.util.*;\nimport java.math.*;\n\n\nclass "
                        "IsNotPrime {\n    /**\n     * * Write a Java function to identify non-prime numbers.\n     *\n"
                        "     * > isNotPrime(2)\n     * false\n     */\n    public static Boolean isNotPrime(int n) {\n",
              "test": "\nclass Main {\n    public static void main(String[] args) throws Exception {\n        Boolean x0 = "
                      "IsNotPrime.isNotPrime(2);\n        if (!(compare(x0, false))) {\n            throw new java.lang."
                      "Exception(\"Exception -- test case 0 did not pass. x0 = \" + x0);\n        }\n    }\n}\n",
              "entry_point": "isNotPrime", "canonical_solution": "        return n > 1 && java.util.stream.IntStream.range("
              "2, n).anyMatch(i -> n % i == 0);\n    }\n}\n",
              "description": "Write a Java function to identify non-prime numbers."}]
MBXP_PYTHON = [{"task_id": "MBPP/3", "language": "python",
                "prompt": "\n\ndef is_not_prime(n):\n\t\"\"\"\n\tWrite a python function to identify non-prime numbers.\n"
                          "\t>>> is_not_prime(2)\n\tFalse\n\t\"\"\"\n",
                "test": "\n\nMETADATA = {}\n\n\ndef check(candidate):\n    assert candidate(2) == False\n"
                        "    assert candidate(10) == True\n\n", "entry_point": "is_not_prime",
                "canonical_solution": "\treturn any(n % i == 0 for i in range(2, n))\n",
                "description": "Write a python function to identify non-prime numbers."}]
# FloatAI/humaneval-xl (python config): the same problem in every natural language (`natural_language`)
HEXL_DESCRIPTIONS = {"English": "Return the decimal part of the number.",
                     "German": "Geben Sie den Dezimalteil der Zahl zurück.",
                     "Spanish": "Devuelva la parte decimal del número.", "French": "Renvoyez la partie décimale du nombre.",
                     "Russian": "Верните дробную часть числа.", "Chinese": "返回数字的小数部分。"}


def hexl(natural_language: str, task_id: str = "python/2", solution: bool = True) -> dict:
    """A HumanEval-XL row; the parquet copy on the hub (iNeil77/HumanEval-XL) has no canonical_solution."""
    description = HEXL_DESCRIPTIONS[natural_language]
    row = {"task_id": task_id, "language": "python",
           "prompt": f"\n\ndef truncate_number(number: float) -> float:\n    \"\"\" {description}\n"
                     f"    >>> truncate_number(3.5)\n    0.5\n    \"\"\"\n",
           "description": description, "test": TRUNCATE_TEST, "entry_point": "truncate_number",
           "natural_language": natural_language}
    if solution:
        row["canonical_solution"] = "    return number % 1.0\n"
    else:
        row["stop_tokens"] = ["\ndef", "\n#", "\nif", "\nclass"]
    return row


def generation(rows: list[dict], language: str = "en", program_language: str = "python") -> list[dict]:
    """Expected canonical rows of HumanEval-style native rows (the Python check call appended)."""
    return [{"id": r["task_id"], "language": language, "prompt": r["prompt"], "completion": r.get("canonical_solution"),
             "test": r["test"].rstrip() + f"\n\n\ncheck({r['entry_point']})\n" if program_language == "python"
             else r["test"], "entry_point": r["entry_point"], "program_language": program_language} for r in rows]


MBPP_EXPECT = {
    "train": [{"id": "602", "language": "en",
               "prompt": '"""\nWrite a python function to find the first repeated character in a given string.\n'
                         'assert first_repeated_char("abcabc") == "a"\n"""\n',
               "completion": MBPP_PROGRAM_TRAIN,
               "test": "\n\ndef check(candidate):\n" + "".join(f"    {t}\n" for t in MBPP_TRAIN[0]["test_list"])
                       + "\n\ncheck(first_repeated_char)\n", "entry_point": "first_repeated_char",
               "program_language": "python"}],
    "validation": [{"id": "511", "entry_point": "find_Min_Sum", "test": "\n\ndef check(candidate):\n"
                    + "".join(f"    {t}\n" for t in MBPP_VALIDATION[0]["test_list"]) + "\n\ncheck(find_Min_Sum)\n"}]}
CODE_FORMATS: dict[str, Format] = {
    "codexglue_defect": Format(
        local={"train": DEFECT_TRAIN, "validation": DEFECT_VALIDATION},
        hub={("default", "train"): DEFECT_TRAIN, ("default", "validation"): DEFECT_VALIDATION},
        expect={"train": [{"id": "0", "language": "en", "text_a": "static av_cold int vdadec_init…", "text_b": None,
                           "label": "no_defect"}, {"id": "1", "label": "defect"}],
                "validation": [{"id": "21854", "label": "defect"}]}),
    "codexglue_clone": Format(
        local={"train": CLONE_TRAIN, "validation": CLONE_VALIDATION},
        hub={("default", "train"): CLONE_TRAIN, ("default", "validation"): CLONE_VALIDATION},
        expect={"train": [{"id": "0", "text_a": CLONE_TRAIN[0]["func1"], "text_b": CLONE_TRAIN[0]["func2"],
                           "label": "not_clone"}, {"id": "1", "label": "clone"}],
                "validation": [{"text_b": "int g(int m) { return m + m; }", "label": "clone"}]}),
    "codexglue_codesearch": Format(
        local={"train": SEARCH_TRAIN, "validation": SEARCH_VALIDATION},
        hub={("default", "train"): SEARCH_TRAIN, ("default", "validation"): SEARCH_VALIDATION},
        expect={"train": [{"language": "en", "side": "source", "text_a": SEARCH_TRAIN[0]["docstring"]},
                          {"language": "en", "side": "target", "text_a": SEARCH_TRAIN[0]["code"]},
                          {"side": "source", "text_a": "Creates the directory…"},
                          {"side": "target", "text_a": SEARCH_TRAIN[1]["code"]}],
                "validation": [{"side": "source", "text_a": "Creates the directory…"},
                               {"side": "target", "text_a": "def mkdirs(path, mode):…"}]}),
    "mbpp": Format(
        local={"train": MBPP_TRAIN, "validation": MBPP_VALIDATION},
        hub={("full", "train"): MBPP_TRAIN, ("full", "validation"): MBPP_VALIDATION, ("full", "test"): MBPP_VALIDATION},
        expect=MBPP_EXPECT),
    "humaneval": Format(
        local={"test": HUMANEVAL_TEST}, hub={("openai_humaneval", "test"): HUMANEVAL_TEST},
        expect={"test": generation(HUMANEVAL_TEST)}),
    "mbxp": Format(
        local={"test": MBXP_JS + MBXP_JAVA + MBXP_PYTHON},
        # the parquet export's layout: <language>/test/0000.parquet
        hub={("javascript", "test"): MBXP_JS, ("java", "test"): MBXP_JAVA, ("python", "test"): MBXP_PYTHON},
        languages=("javascript", "java"),
        expect={"test": generation(MBXP_JS, "javascript", "javascript") + generation(MBXP_JAVA, "java", "java")}),
    "humaneval_xl": Format(
        local={"test": [hexl("German"), hexl("English"), hexl("Russian")]},
        hub={("python", "german"): [hexl("German", solution=False)], ("python", "russian"): [hexl("Russian", solution=False)],
             ("python", "english"): [hexl("English", solution=False)]},
        languages=("de", "ru"),
        expect={"test": generation([hexl("German")], "de") + generation([hexl("Russian")], "ru")},
        hub_expect={"test": [dict(r, completion=None) for r in generation([hexl("German")], "de")
                             + generation([hexl("Russian")], "ru")]}),
    **{f"humaneval_xl_{code}": Format(
        local={"train": [hexl(name, "python/2")], "validation": [hexl(name, "python/3")]}, hub={},
        expect={"train": generation([hexl(name, "python/2")], code),
                "validation": generation([hexl(name, "python/3")], code)})
       for code, name in (("en", "English"), ("de", "German"), ("es", "Spanish"), ("fr", "French"), ("ru", "Russian"))},
}
FORMATS.update(CODE_FORMATS)


# ---- helpers ------------------------------------------------------------------------------------------------------

def write_file(path: Path, rows: list[dict], fmt: str = "jsonl") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        path = path.with_suffix(".jsonl")
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        keys = [list(r) for r in rows]
        assert all(k == keys[0] for k in keys), f"{path}: rows of one Parquet file need the same fields"
        path = path.with_suffix(".parquet")
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_local(root: Path, name: str, fmt: str = "jsonl", **overrides: list[dict]) -> Path:
    """The task's local splits (and those of the task it trains on), `<root>/<task>/<split>.<fmt>`."""
    task = get_task(name)
    for dep in dict.fromkeys([task.data_task, name]):
        for split, rows in FORMATS[dep].local.items():
            rows = overrides.get(split, rows) if dep == name else rows
            write_file(root / dep / split, rows, fmt)
    return root


def write_hub_repo(repo: Path, layout: dict[tuple[str, str], list[dict]], export: bool = False) -> str:
    """A dataset repo in hub layout: <config>/<split>-00000-of-00001.parquet and README.md `configs:` metadata; or
    (`export`) a parquet export's layout, <config>/<split>/0000.parquet without metadata (MBXP's)."""
    if export:
        for (folder, split), rows in layout.items():
            (repo / folder / split).mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.Table.from_pylist(rows), repo / folder / split / "0000.parquet")
        return str(repo)
    configs: dict[str, list[str]] = {}
    for (config, split), rows in layout.items():
        keys = [list(r) for r in rows]
        assert all(k == keys[0] for k in keys)
        (repo / config).mkdir(parents=True, exist_ok=True)
        pq.write_table(pa.Table.from_pylist(rows), repo / config / f"{split}-00000-of-00001.parquet")
        configs.setdefault(config, []).append(split)
    card = "---\nconfigs:\n" + "".join(
        f"- config_name: {config}\n  data_files:\n" + "".join(f"  - split: {s}\n    path: {config}/{s}-*\n" for s in splits)
        for config, splits in configs.items()) + "---\n"
    (repo / "README.md").write_text(card, encoding="utf-8")
    return str(repo)


def task_with_hub_source(source: tasks.HubSource) -> str:
    """The registered task whose own hub source this is (ANLI's extra train data: MNLI, SNLI)."""
    return next(t.name for t in all_tasks() if t.hub == source)


def point_hub_at_local(monkeypatch, root: Path, name: str) -> None:
    """Point the task (and the task it trains on, and its extra train sources) at local repos in hub layout."""
    task = get_task(name)
    for dep in dict.fromkeys([task.data_task, name]):
        t = get_task(dep)
        if t.hub is None:
            continue
        extra = tuple(dataclasses.replace(src, path=write_hub_repo(root / f"{dep}-extra{i}",
                                                                   FORMATS[task_with_hub_source(src)].hub))
                      for i, src in enumerate(t.extra_train))
        monkeypatch.setitem(tasks._REGISTRY, dep, dataclasses.replace(
            t, hub=dataclasses.replace(t.hub, path=write_hub_repo(root / dep, FORMATS[dep].hub,
                                                                  export=t.hub.data_dir is not None)),
            extra_train=extra))


@pytest.fixture
def hub_cache(tmp_path, monkeypatch):
    """`datasets` caches in tmp_path, never in ~/.cache (the config module reads the variables at import)."""
    import datasets

    cache = tmp_path / "hf"
    monkeypatch.setenv("HF_HOME", str(cache))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache / "datasets"))
    monkeypatch.setattr(datasets.config, "HF_CACHE_HOME", str(cache))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "datasets")
    monkeypatch.setattr(datasets.config, "HF_MODULES_CACHE", cache / "modules")
    monkeypatch.setattr(datasets.config, "DOWNLOADED_DATASETS_PATH", cache / "datasets" / "downloads")
    monkeypatch.setattr(datasets.config, "EXTRACTED_DATASETS_PATH", cache / "datasets" / "downloads" / "extracted")
    return cache


def validate(name: str, data: str, out: Path, task_data: dict | None = None) -> dict:
    """The validate step for one task: a target with its selected languages, or an intermediate task."""
    target = get_task(name).role == "target"
    return validate_tasks([name] if target else [], data, out / "ds", out / "r.html", out / "r.md",
                          languages=list(FORMATS[name].languages) or None, intermediates=[] if target else [name],
                          task_data=task_data)


def plain(value):
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, float) and value != value:
        return None
    return value


def assert_rows(df: pd.DataFrame, expected: list[dict], where: str) -> None:
    assert len(df) == len(expected), f"{where}: {len(df)} rows, expected {len(expected)}:\n{df}"
    for i, (got, want) in enumerate(zip(df.to_dict("records"), expected), start=1):
        for key, value in want.items():
            actual = plain(got[key])
            if isinstance(value, str) and value.endswith("…"):
                ok = isinstance(actual, str) and actual.startswith(value[:-1])
            else:
                ok = actual == value
            assert ok, f"{where} row {i} {key}: got {actual!r}, expected {value!r}"


def check_output(name: str, out: Path, manifest: dict, hub: bool) -> None:
    task, fmt = get_task(name), FORMATS[name]
    info = manifest["tasks"][name]
    if fmt.languages:
        assert info["languages"] == list(fmt.languages)
    for split, expected in fmt.expect.items():
        df = pd.read_parquet(out / "ds" / name / f"{split}.parquet")
        assert list(df.columns) == canonical_columns(task.kind), (name, split)
        assert_rows(df, fmt.hub_expect.get(split, expected) if hub else expected, f"{name}/{split}")
        assert df["id"].map(lambda v: isinstance(v, str) and v != "").all()
        if task.kind == RETRIEVAL:  # every source names the target after it (the pair format) as its gold partner
            sources = df.index[df["side"] == "source"]
            assert [df.at[i, "label"] for i in sources] == [df.at[i + 1, "id"] for i in sources]
            assert (df.loc[sources + 1, "side"] == "target").all() and df.loc[sources + 1, "label"].isna().all()
        assert info["splits"][split]["rows"] == len(df)


# ---- every task, three ways -----------------------------------------------------------------------------------------

def test_every_registered_task_has_a_format_fixture():
    assert sorted(FORMATS) == sorted(TASK_NAMES), "add a Format for each new task (and drop removed ones)"


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
@pytest.mark.parametrize("name", TASK_NAMES)
def test_local_files_in_hub_row_format(name, fmt, tmp_path):
    assert name in FORMATS, f"task {name!r} has no Format fixture in tests/test_loaders.py"
    root = write_local(tmp_path / "data", name, fmt)
    manifest = validate(name, str(root), tmp_path)
    check_output(name, tmp_path, manifest, hub=False)
    if name == "ccg":  # an open tag set: the train split's tags, sorted
        assert manifest["tasks"]["ccg"]["labels"] == sorted(set(CCG_TRAIN[0]["tags"]))


@pytest.mark.parametrize("name", TASK_NAMES)
def test_hub_path_on_a_local_repo_in_hub_layout(name, tmp_path, monkeypatch, hub_cache):
    assert name in FORMATS, f"task {name!r} has no Format fixture in tests/test_loaders.py"
    if get_task(name).hub is None:
        with pytest.raises(DataError, match=rf"task {name!r} has no hub source: .*{re.escape(get_task(name).source_note)}"):
            validate(name, "hf://", tmp_path)
        assert not (tmp_path / "ds").exists()
        return
    point_hub_at_local(monkeypatch, tmp_path / "hub", name)
    manifest = validate(name, "hf://", tmp_path)
    check_output(name, tmp_path, manifest, hub=True)
    assert any(hub_cache.rglob("*.arrow")), "datasets should cache under the test's HF_DATASETS_CACHE"


def test_local_only_task_next_to_hub_data(tmp_path, monkeypatch, hub_cache):
    """CCGbank from local files (`task_data`) while the other tasks come from the hub."""
    point_hub_at_local(monkeypatch, tmp_path / "hub", "sst2")
    root = write_local(tmp_path / "data", "ccg")
    manifest = validate_tasks([], "hf://", tmp_path / "ds", tmp_path / "r.html", tmp_path / "r.md",
                              intermediates=["sst2", "ccg"], task_data={"ccg": str(root)})
    assert manifest["tasks"]["ccg"]["splits"]["train"]["rows"] == 1
    assert manifest["tasks"]["sst2"]["splits"]["train"]["rows"] == 2


# ---- BUCC mining format: sentences + gold pairs ---------------------------------------------------------------------

# As in BUCC 2018: ids are numbered per language pair, so English target ids repeat across pairs (en-000001 below is
# one sentence for de-en and another for zh-en).
BUCC_SENTENCES = [
    {"id": "de-000001", "language": "de", "side": "source", "sentence": "Die Kommission hat heute einen Vorschlag angenommen."},
    {"id": "de-000002", "language": "de", "side": "source", "sentence": "Die Preise stiegen im März stark an."},
    {"id": "de-000003", "language": "de", "side": "source", "sentence": "Das Wetter war gestern schön."},
    {"id": "en-000001", "language": "de", "side": "target", "sentence": "Prices rose sharply in March."},
    {"id": "en-000002", "language": "de", "side": "target", "sentence": "The Commission adopted a proposal today."},
    {"id": "zh-000001", "language": "zh", "side": "source", "sentence": "价格在三月大幅上涨。"},
    {"id": "en-000001", "language": "zh", "side": "target", "sentence": "Prices rose sharply in March."},
    {"id": "en-000002", "language": "zh", "side": "target", "sentence": "The weather was nice yesterday."},
    {"id": "en-000003", "language": "zh", "side": "target", "sentence": "The Commission adopted a proposal today."},
]
BUCC_GOLD = "de-000001\ten-000002\nde-000002\ten-000001\nzh-000001\ten-000001\n"


def write_bucc(root: Path, fmt: str = "jsonl", gold: str = BUCC_GOLD, sentences=BUCC_SENTENCES) -> Path:
    write_file(root / "bucc18" / "test", sentences, fmt)
    (root / "bucc18" / "test.pairs.tsv").write_text(gold, encoding="utf-8")
    return root


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_bucc_mining_format(fmt, tmp_path):
    root = write_bucc(tmp_path / "data", fmt)
    validate_tasks(["bucc18"], str(root), tmp_path / "ds", tmp_path / "r.html", tmp_path / "r.md", ["de", "zh"])
    df = pd.read_parquet(tmp_path / "ds" / "bucc18" / "test.parquet")
    assert list(df.columns) == canonical_columns(RETRIEVAL)
    got = [(r["language"], r["id"], r["side"], plain(r["label"])) for r in df.to_dict("records")]
    assert got == [("de", "de-000001", "source", "en-000002"), ("de", "de-000002", "source", "en-000001"),
                   ("de", "de-000003", "source", None), ("de", "en-000001", "target", None),
                   ("de", "en-000002", "target", None), ("zh", "zh-000001", "source", "en-000001"),
                   ("zh", "en-000001", "target", None), ("zh", "en-000002", "target", None),
                   ("zh", "en-000003", "target", None)]


# ---- bad input: rejected by the validate step, with file, row and field; nothing written ----------------------------

def _replace(rows, i, **changes):
    return [dict(r, **changes) if k == i else r for k, r in enumerate(rows)]


BAD = {
    "answer outside its context": (
        "squad", {"validation": _replace(SQUAD_VALIDATION, 1, answers={"text": ["Carolina Panthers"],
                                                                       "answer_start": [500]})},
        ["squad/validation (", "squad/validation.jsonl)", "expect_column_values_to_be_in_set(check_answers): "
         "1 of 2 rows failed", "row 2 id='56be4db0acb8001400a502ed'",
         "answer 'Carolina Panthers' at 500 is outside the 310-character context"]),
    "answer text not at answer_start": (
        "xquad", {"test": lang("ru", _replace(XQUAD_RU, 1, answers={"text": ["шестое"], "answer_start": [33]}))
                  + lang("zh", XQUAD_ZH)},
        ["xquad/test (", "xquad/test.jsonl)", "check_answers): 1 of 3 rows failed", "row 2 id='56beb4343aeaaa14008c925c'",
         "answer 'шестое' at 33 does not match the context there ('308 оч')"]),
    "tags and tokens of different lengths": (
        "panx", {"test": lang("de", _replace(PANX_DE, 0, ner_tags=[1, 2, 0, 0, 3, 4])) + lang("ar", PANX_AR)},
        ["panx/test (", "panx/test.jsonl)", "expect_column_values_to_be_in_set(check_tags): 1 of 2 rows failed",
         "row 1 id='panx-test-de-1' check_tags='6 tags for 7 tokens'"]),
    "unknown tag name": (
        "panx", {"train": PANX_EN_TRAIN + [{"tokens": ["The", "Office"], "ner_tags": ["B-MISC", "I-MISC"],
                                            "langs": ["en", "en"]}]},
        ["panx/train (", "panx/train.jsonl)", "check_tags): 1 of 3 rows failed",
         "row 3 id='panx-train-en-3' check_tags='unknown tag(s) B-MISC, I-MISC'"]),
    "tag index out of range": (
        "udpos", {"test": lang("de", UDPOS_DE) + lang("hi", _replace(UDPOS_HI, 0, pos_tags=[10, 11, 1, 2, 0, 7, 1, 1,
                                                                                             8, 3, 17]))},
        ["udpos/test (", "udpos/test.jsonl)", "check_tags): 1 of 2 rows failed",
         "row 2 id='udpos-test-hi-2' check_tags='unknown tag(s) 17'"]),
    "wrong number of choices": (
        "hellaswag", {"validation": _replace(HELLASWAG_VALIDATION, 0, endings=HELLASWAG_VALIDATION[0]["endings"][:3])},
        ["hellaswag/validation (", "hellaswag/validation.jsonl)",
         "expect_column_values_to_be_in_set(check_choices): 1 of 1 rows failed",
         "row 1 id='24' check_choices='3 choices, expected 4'"]),
    "NLI label outside the set": (
        "xnli", {"test": lang("de", XNLI_DE) + lang("ar", _replace(XNLI_AR, 0, label=3))},
        ["xnli/test (", "xnli/test.jsonl)", "expect_column_values_to_be_in_set(label): 1 of 3 rows failed",
         "row 3 id='xnli-test-ar-3' label='3'"]),
}


BAD.update({
    "unknown programming language": (
        "humaneval_xl", {"test": [hexl("German"), {**hexl("Russian"), "language": "brainfuck"}]},
        ["humaneval_xl/test (", "humaneval_xl/test.jsonl)",
         "expect_column_values_to_be_in_set(check_program_language): 1 of 2 rows failed",
         "row 2 id='python/2' check_program_language=\"unknown programming language 'brainfuck'"]),
    "empty prompt": (
        "humaneval", {"test": [dict(HUMANEVAL_TEST[0], prompt="")]},
        ["humaneval/test (", "expect_column_value_lengths_to_be_between(prompt): 1 of 1 rows failed",
         "row 1 id='HumanEval/2' prompt=''"]),
    "evaluation problem without a test": (
        "humaneval", {"test": [dict(HUMANEVAL_TEST[0], test=None)]},
        ["humaneval/test (", "expect_column_values_to_not_be_null(test): 1 of 1 rows failed"]),
    "training problem without a reference completion": (
        "humaneval_xl_de", {"train": [{k: v for k, v in hexl("German").items() if k != "canonical_solution"}]},
        ["humaneval_xl_de/train (", "expect_column_values_to_not_be_null(completion): 1 of 1 rows failed"]),
})


@pytest.mark.parametrize("row, error", [
    ({k: v for k, v in HUMANEVAL_TEST[0].items() if k != "prompt"}, r"humaneval/test\.jsonl: row 1: missing field 'prompt'"),
    (dict(HUMANEVAL_TEST[0], prompt=["def f():"]), r"humaneval/test\.jsonl: row 1: field 'prompt' must be a string"),
], ids=["missing prompt", "prompt not a string"])
def test_bad_generation_rows_name_the_file_row_and_field(row, error, tmp_path):
    root = write_local(tmp_path / "data", "humaneval", test=[row])
    with pytest.raises(DataError, match=error):
        validate("humaneval", str(root), tmp_path)
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_rejected_with_file_row_and_field(case, tmp_path):
    name, overrides, expected = BAD[case]
    root = write_local(tmp_path / "data", name, **overrides)
    with pytest.raises(DataValidationError) as err:
        validate(name, str(root), tmp_path)
    message = str(err.value)
    for part in expected:
        assert part in message, f"{part!r} not in:\n{message}"
    assert not (tmp_path / "ds").exists()
    assert "FAILED" in (tmp_path / "r.md").read_text()


@pytest.mark.parametrize("gold, error", [
    ("de-000001\ten-000002\nde-000009\ten-000001\n", r"test\.pairs\.tsv:2: source id 'de-000009' is not in .*bucc18/test\.jsonl"),
    ("de-000001\ten-000099\n", r"test\.pairs\.tsv:1: target id 'en-000099' is not in .*bucc18/test\.jsonl"),
    ("de-000001 en-000002\n", r"test\.pairs\.tsv:1: expected `source_id<TAB>target_id`, got 'de-000001 en-000002'"),
    ("de-000001\ten-000002\textra\n", r"test\.pairs\.tsv:1: expected `source_id<TAB>target_id`"),
    ("en-000002\tde-000001\n", r"test\.pairs\.tsv:1: id 'en-000002' is a target sentence, expected a source sentence"),
    ("de-000001\tzh-000001\n", r"test\.pairs\.tsv:1: id 'zh-000001' is a source sentence, expected a target sentence"),
    ("de-000001\ten-000002\nde-000002\ten-000003\n",
     r"test\.pairs\.tsv:2: 'de-000002' \(de\) and 'en-000003' \(zh\) belong to different language pairs"),
], ids=["missing source id", "missing target id", "no tab", "three fields", "target as source", "source as target",
        "pair across languages"])
def test_bad_bucc_pairs_file_names_the_line(gold, error, tmp_path):
    root = write_bucc(tmp_path / "data", gold=gold)
    with pytest.raises(DataError, match=error):
        validate_tasks(["bucc18"], str(root), tmp_path / "ds", tmp_path / "r.html", tmp_path / "r.md", ["de", "zh"])
    assert not (tmp_path / "ds").exists()
