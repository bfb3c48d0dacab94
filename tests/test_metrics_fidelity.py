"""xstilts.kinds.metrics against independent transcriptions of the official scripts (which report percentages).

The reference functions below are written in the style of the official scripts: SQuAD v1.1 `evaluate-v1.1.py`,
MLQA `mlqa_evaluation_v1.py`, and XTREME's `third_party/utils_retrieve.py` (LASER margin mining, bucc_optimize,
bucc_extract/bucc_eval), kept deliberately close to their control flow rather than to ours.
"""

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections import Counter

import numpy as np
import pytest

from xstilts.kinds.metrics import (best_threshold_f1, bucc_f1, mine_pairs, mlqa_scores, qa_scores, squad_scores, tagging_f1, tatoeba_accuracy, xtreme_average)

# ====================================================================== reference: SQuAD v1.1 evaluate-v1.1.py


def squad_normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""
    def remove_articles(text):
        return re.sub(r'\b(a|an|the)\b', ' ', text)

    def white_space_fix(text):
        return ' '.join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return ''.join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def squad_f1_score(prediction, ground_truth):
    prediction_tokens = squad_normalize_answer(prediction).split()
    ground_truth_tokens = squad_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def squad_exact_match_score(prediction, ground_truth):
    return (squad_normalize_answer(prediction) == squad_normalize_answer(ground_truth))


def squad_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def squad_evaluate(dataset, predictions):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article['paragraphs']:
            for qa in paragraph['qas']:
                total += 1
                if qa['id'] not in predictions:
                    message = 'Unanswered question ' + qa['id'] + ' will receive score 0.'
                    print(message, file=sys.stderr)
                    continue
                ground_truths = list(map(lambda x: x['text'], qa['answers']))
                prediction = predictions[qa['id']]
                exact_match += squad_metric_max_over_ground_truths(
                    squad_exact_match_score, prediction, ground_truths)
                f1 += squad_metric_max_over_ground_truths(
                    squad_f1_score, prediction, ground_truths)

    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total

    return {'exact_match': exact_match, 'f1': f1}


# ====================================================================== reference: MLQA mlqa_evaluation_v1.py

PUNCT = {chr(i) for i in range(sys.maxunicode)
         if unicodedata.category(chr(i)).startswith('P')}.union(string.punctuation)
WHITESPACE_LANGS = ['en', 'es', 'hi', 'vi', 'de', 'ar']
MIXED_SEGMENTATION_LANGS = ['zh']


def whitespace_tokenize(text):
    return text.split()


def mixed_segmentation(text):
    segs_out = []
    temp_str = ""
    for char in text:
        if re.search(r'[\u4e00-\u9fa5]', char) or char in PUNCT:
            if temp_str != "":
                ss = whitespace_tokenize(temp_str)
                segs_out.extend(ss)
                temp_str = ""
            segs_out.append(char)
        else:
            temp_str += char

    if temp_str != "":
        ss = whitespace_tokenize(temp_str)
        segs_out.extend(ss)

    return segs_out


def mlqa_normalize_answer(s, lang):
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text, lang):
        if lang == 'en':
            return re.sub(r'\b(a|an|the)\b', ' ', text)
        elif lang == 'es':
            return re.sub(r'\b(un|una|unos|unas|el|la|los|las)\b', ' ', text)
        elif lang == 'hi':
            return text  # Hindi does not have formal articles
        elif lang == 'vi':
            return re.sub(r'\b(của|là|cái|chiếc|những)\b', ' ', text)
        elif lang == 'de':
            return re.sub(r'\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b', ' ', text)
        elif lang == 'ar':
            return re.sub(r'\sال^|ال', ' ', text)  # raw string here only to avoid Python's invalid-escape warning
        elif lang == 'zh':
            return text  # Chinese does not have formal articles
        else:
            raise Exception('Unknown Language {}'.format(lang))

    def white_space_fix(text, lang):
        if lang in WHITESPACE_LANGS:
            tokens = whitespace_tokenize(text)
        elif lang in MIXED_SEGMENTATION_LANGS:
            tokens = mixed_segmentation(text)
        else:
            raise Exception('Unknown Language {}'.format(lang))
        return ' '.join([t for t in tokens if t.strip() != ''])

    def remove_punc(text):
        return ''.join(ch for ch in text if ch not in PUNCT)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s)), lang), lang)


def mlqa_f1_score(prediction, ground_truth, lang):
    prediction_tokens = mlqa_normalize_answer(prediction, lang).split()
    ground_truth_tokens = mlqa_normalize_answer(ground_truth, lang).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


def mlqa_exact_match_score(prediction, ground_truth, lang):
    return mlqa_normalize_answer(prediction, lang) == mlqa_normalize_answer(ground_truth, lang)


def mlqa_metric_max_over_ground_truths(metric_fn, prediction, ground_truths, lang):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth, lang)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def mlqa_evaluate(dataset, predictions, lang):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article['paragraphs']:
            for qa in paragraph['qas']:
                total += 1
                if qa['id'] not in predictions:
                    message = 'Unanswered question ' + qa['id'] + ' will receive score 0.'
                    print(message, file=sys.stderr)
                    continue
                ground_truths = list(map(lambda x: x['text'], qa['answers']))
                prediction = predictions[qa['id']]
                exact_match += mlqa_metric_max_over_ground_truths(
                    mlqa_exact_match_score, prediction, ground_truths, lang)
                f1 += mlqa_metric_max_over_ground_truths(
                    mlqa_f1_score, prediction, ground_truths, lang)

    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total

    return {'exact_match': exact_match, 'f1': f1}


def as_squad_dataset(references):
    """{id: [answers]} in the SQuAD JSON layout the official scripts read (two articles, to exercise the loops)."""
    qas = [{'id': qid, 'question': '?', 'answers': [{'text': a, 'answer_start': 0} for a in answers]}
           for qid, answers in references.items()]
    half = len(qas) // 2
    return [{'title': 'a', 'paragraphs': [{'context': '', 'qas': qas[:half]}]},
            {'title': 'b', 'paragraphs': [{'context': '', 'qas': qas[half:]}]}]


# ================================================================================================ QA fixtures

# (prediction, gold answers) per MLQA answer language; None as prediction = the question is left unanswered.
QA_CASES = {
    'en': [
        ("The Eiffel Tower", ["Eiffel Tower"]),
        ("in the year 1889", ["1889"]),
        ("Paris, France.", ["Paris"]),
        ("  An  apple\ta day\u00a0", ["apple a day"]),
        ("\n\tleading and trailing  ", ["leading and trailing"]),
        ("", ["something"]),
        ("the", ["a"]),  # both normalise to "": exact match 1, F1 0 in the official scripts
        ("Denver Broncos", ["Broncos", "Denver Broncos", "the Denver Broncos team"]),
        ("NEW YORK City", ["new york"]),
        ("U.S.A.", ["USA"]),
        ("«Paris»", ["Paris"]),
        ("Rock’n’roll", ["rocknroll"]),
        ("“quoted” answer — here", ["quoted answer here"]),
        ("the the cat cat cat", ["cat", "a cat"]),
        ("anthem of theatre", ["anthem theatre"]),
        ("price: $5 + tax", ["5 tax"]),
        ("€5 and ©2020", ["5 2020"]),
        (None, ["never answered"]),
        ("İstanbul", ["istanbul"]),
    ],
    'es': [
        ("el río Amazonas", ["Amazonas", "río Amazonas"]),
        ("La casa de los espíritus", ["casa de espíritus"]),
        ("¿Un año?", ["año"]),
        ("¡Unos días!", ["días"]),
        ("los Ángeles", ["Ángeles", "Los Angeles"]),
        ("Elena", ["Elena"]),  # "el" inside a word stays
        ("", ["vacío"]),
        (None, ["sin respuesta"]),
    ],
    'de': [
        ("der Rhein", ["Rhein"]),
        ("Die Brücke über dem Fluss", ["Brücke über Fluss"]),
        ("Einstein", ["einstein"]),  # "ein" inside a word stays
        ("des Kaisers neue Kleider", ["Kaisers neue Kleider"]),
        ("„Faust“, eine Tragödie", ["Faust Tragödie"]),
        ("Das   Boot\u00a0", ["boot"]),
        ("einem Mann", ["einen Mann", "Frau"]),
        (None, ["keine"]),
    ],
    'vi': [
        ("những con mèo của tôi", ["con mèo tôi"]),
        ("là Hà Nội", ["Hà Nội"]),
        ("chiếc xe đạp", ["xe đạp"]),
        ("cái bàn, cái ghế", ["bàn ghế"]),
        ("Thành phố Hồ Chí Minh", ["Hồ Chí Minh"]),
        ("", ["rỗng"]),
    ],
    'ar': [
        ("الكتاب", ["كتاب"]),
        ("في البيت الكبير", ["بيت كبير"]),
        ("مال", ["م"]),  # the official regex removes "ال" inside words too
        ("القاهرة، مصر؟", ["القاهرة"]),
        ("محمد", ["محمد"]),
        ("ال", [""]),
        (None, ["لا"]),
    ],
    'hi': [
        ("भारत की राजधानी", ["राजधानी"]),
        ("दिल्ली।", ["दिल्ली"]),
        ("नई  दिल्ली", ["नई दिल्ली", "दिल्ली"]),
        ("महात्मा गांधी", ["गांधी जी"]),
        ("", ["खाली"]),
    ],
    'zh': [
        ("北京大学", ["北京"]),
        ("我在2008年去了Beijing city", ["2008年 Beijing"]),
        ("《红楼梦》。", ["红楼梦"]),
        ("曹雪芹著", ["曹雪芹"]),
        ("ABC公司", ["abc 公司"]),
        ("１９４９年", ["1949年"]),  # full-width digits are not folded
        ("\u9fa6\u9fa6中", ["中"]),  # beyond the script's \u4e00-\u9fa5 range: a run, not single characters
        ("㐀中文", ["中文"]),  # CJK extension A is outside the range too
        ("hello,世界!", ["hello 世界"]),
        ("", ["空"]),
        (None, ["无"]),
    ],
}


def split_case(cases, prefix):
    predictions, references = {}, {}
    for i, (prediction, answers) in enumerate(cases):
        qid = f"{prefix}-{i:02d}"
        references[qid] = answers
        if prediction is not None:
            predictions[qid] = prediction
    return predictions, references


def all_cases():
    for lang, cases in QA_CASES.items():
        for i, case in enumerate(cases):
            yield pytest.param(lang, case, id=f"{lang}-{i:02d}")


def assert_matches(ours, theirs, n):
    assert ours["count"] == n
    assert ours["exact_match"] * 100 == pytest.approx(theirs["exact_match"], abs=1e-9)
    assert ours["f1"] * 100 == pytest.approx(theirs["f1"], abs=1e-9)
    assert ours["score"] == pytest.approx((ours["exact_match"] + ours["f1"]) / 2, abs=1e-12)
    for key in ("exact_match", "f1", "score"):
        assert 0.0 <= ours[key] <= 1.0


@pytest.mark.parametrize("lang,case", list(all_cases()))
def test_each_answer_matches_both_official_scripts(lang, case):
    predictions, references = split_case([case], "q")
    assert_matches(squad_scores(predictions, references), squad_evaluate(as_squad_dataset(references), predictions), 1)
    assert_matches(mlqa_scores(predictions, references, lang),
                   mlqa_evaluate(as_squad_dataset(references), predictions, lang), 1)


@pytest.mark.parametrize("lang", list(QA_CASES))
def test_whole_language_sets_match_official_scripts(lang):
    predictions, references = split_case(QA_CASES[lang], lang)
    predictions["not-a-question"] = "ignored"  # the scripts only score ids in the dataset
    dataset = as_squad_dataset(references)
    assert_matches(qa_scores(predictions, references, lang, "squad"), squad_evaluate(dataset, predictions),
                   len(references))
    assert_matches(qa_scores(predictions, references, lang, "mlqa"), mlqa_evaluate(dataset, predictions, lang),
                   len(references))


def test_squad_on_non_mlqa_scripts_matches():
    # XQuAD languages outside MLQA (ru, el, tr, th) are scored with SQuAD normalisation only.
    cases = [("Москва, Россия", ["Москва"]), ("МОСКВА", ["москва"]), ("«Война и мир»", ["Война и мир"]),
             ("Αθήνα.", ["αθήνα"]), ("กรุงเทพมหานคร", ["กรุงเทพ"]), ("İzmir'de", ["izmirde"])]
    predictions, references = split_case(cases, "x")
    assert_matches(squad_scores(predictions, references), squad_evaluate(as_squad_dataset(references), predictions),
                   len(cases))


def test_mlqa_and_squad_normalisation_differ_where_they_should():
    def em_f1(fn, prediction, answer, *lang):
        r = fn({"q": prediction}, {"q": [answer]}, *lang)
        return r["exact_match"], r["f1"]

    # German article: only MLQA-de removes it
    assert em_f1(squad_scores, "der Rhein", "Rhein") == (0.0, pytest.approx(2 / 3))
    assert em_f1(mlqa_scores, "der Rhein", "Rhein", "de") == (1.0, 1.0)
    # Unicode punctuation: only MLQA removes it
    assert em_f1(squad_scores, "«Paris»", "Paris") == (0.0, 0.0)
    assert em_f1(mlqa_scores, "«Paris»", "Paris", "en") == (1.0, 1.0)
    # Chinese: SQuAD sees one token, MLQA one per character
    assert em_f1(squad_scores, "北京大学", "北京") == (0.0, 0.0)
    assert em_f1(mlqa_scores, "北京大学", "北京", "zh") == (0.0, pytest.approx(2 / 3))
    # Arabic "ال" removed only by MLQA-ar; English articles removed by both
    assert em_f1(squad_scores, "الكتاب", "كتاب")[0] == 0.0
    assert em_f1(mlqa_scores, "الكتاب", "كتاب", "ar")[0] == 1.0
    assert em_f1(squad_scores, "The cat", "cat")[0] == em_f1(mlqa_scores, "The cat", "cat", "en")[0] == 1.0
    # MLQA-en keeps Spanish articles
    assert em_f1(mlqa_scores, "el gato", "gato", "en")[0] == 0.0
    assert em_f1(mlqa_scores, "el gato", "gato", "es")[0] == 1.0


def test_missing_prediction_counts_zero_and_scores_are_fractions():
    result = squad_scores({"a": "Paris"}, {"a": ["Paris"], "b": ["London"]})
    assert result == {"exact_match": 0.5, "f1": 0.5, "score": 0.5, "count": 2}


def test_qa_input_errors():
    with pytest.raises(ValueError, match="references is empty"):
        squad_scores({}, {})
    with pytest.raises(ValueError, match="non-empty list of gold answer"):
        squad_scores({"a": "x"}, {"a": []})
    with pytest.raises(ValueError, match="non-empty list of gold answer"):
        squad_scores({"a": "x"}, {"a": "x"})
    with pytest.raises(ValueError, match="expected the answer text"):
        squad_scores({"a": 3}, {"a": ["3"]})
    with pytest.raises(ValueError, match="answer languages en, es, vi, de, ar, hi, zh; got 'ru'"):
        mlqa_scores({"a": "x"}, {"a": ["x"]}, "ru")
    with pytest.raises(ValueError, match="'squad' or 'mlqa'"):
        qa_scores({"a": "x"}, {"a": ["x"]}, "en", "tydi")


# ===================================================================================================== tagging


def test_tagging_f1_iob_hand_computed():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]]
    # gold {PER 0-1, LOC 3, ORG s1:0}; predicted {PER 0-1, ORG 3, ORG s1:0}: 2 of 3 right both ways
    assert tagging_f1(gold, pred) == pytest.approx(2 / 3, abs=1e-12)
    # default (conlleval) mode: an entity may start with I-
    assert tagging_f1([["B-LOC", "I-LOC", "O"]], [["I-LOC", "I-LOC", "O"]]) == 1.0
    # a type change inside the span splits it: no exact match
    assert tagging_f1([["B-PER", "I-PER"]], [["B-PER", "I-LOC"]]) == 0.0
    # boundaries: predicted {PER 0-0, PER 1-2}, gold {PER 0-2}; plus one right LOC -> P 1/3, R 1/2
    gold = [["B-PER", "I-PER", "I-PER"], ["B-LOC"]]
    pred = [["B-PER", "B-PER", "I-PER"], ["B-LOC"]]
    assert tagging_f1(gold, pred) == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2), abs=1e-12)


@pytest.mark.filterwarnings("ignore:.*seems not to be NE tag:UserWarning")
def test_tagging_f1_pos_tags_follow_seqeval_chunking():
    from seqeval.metrics.sequence_labeling import get_entities

    gold = [["DET", "NOUN", "NOUN", "VERB", "ADJ", "PUNCT"], ["PRON", "VERB", "ADV", "PUNCT"], ["X", "NUM"]]
    pred = [["DET", "NOUN", "VERB", "VERB", "ADJ", "PUNCT"], ["PRON", "VERB", "ADJ", "PUNCT"], ["X", "NUM"]]

    def chunks(sentences):
        # seqeval reads a tag without prefix as first letter = chunk tag, the rest = type ("NOUN" -> N, "OUN")
        return {(i,) + tuple(e) for i, s in enumerate(sentences) for e in get_entities(list(s))}

    g, p = chunks(gold), chunks(pred)
    precision, recall = len(g & p) / len(p), len(g & p) / len(g)
    assert tagging_f1(gold, pred) == pytest.approx(2 * precision * recall / (precision + recall), abs=1e-12)
    # ... which is not token accuracy: this is the number XTREME reports as UDPOS "F1"
    accuracy = np.mean([a == b for gs, ps in zip(gold, pred) for a, b in zip(gs, ps)])
    assert tagging_f1(gold, pred) != pytest.approx(accuracy)


def test_tagging_f1_errors():
    with pytest.raises(ValueError, match=r"sentence 1: expected 2 predicted tags .* got 3"):
        tagging_f1([["O"], ["B-PER", "O"]], [["O"], ["B-PER", "O", "O"]])
    with pytest.raises(ValueError, match="2 gold, 1 predicted"):
        tagging_f1([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="gold is empty"):
        tagging_f1([], [])
    with pytest.raises(ValueError, match="sentence 0: expected a sequence of tags"):
        tagging_f1(["O"], ["O"])


# =========================================================================== reference: XTREME utils_retrieve.py


def ref_knn(x, y, k):
    # brute force instead of faiss: cosine of unit rows, k best per query row
    sim = x.dot(y.T)
    ind = np.argsort(-sim, axis=1, kind='stable')[:, :k]
    return np.take_along_axis(sim, ind, axis=1), ind


def ref_score(x, y, fwd_mean, bwd_mean, margin):
    return margin(x.dot(y), (fwd_mean + bwd_mean) / 2)


def ref_score_candidates(x, y, candidate_inds, fwd_mean, bwd_mean, margin):
    scores = np.zeros(candidate_inds.shape)
    for i in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            k = candidate_inds[i, j]
            scores[i, j] = ref_score(x[i], y[k], fwd_mean[i], bwd_mean[k], margin)
    return scores


def ref_mine_bitext(x, y, src_ids, trg_ids, margin='ratio', threshold=0, neighborhood=4):
    """mine_bitext(mode='mine', retrieval='max'), returning (score, src, trg) lines instead of writing them."""
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = y / np.linalg.norm(y, axis=1, keepdims=True)
    x2y_sim, x2y_ind = ref_knn(x, y, min(y.shape[0], neighborhood))
    x2y_mean = x2y_sim.mean(axis=1)
    y2x_sim, y2x_ind = ref_knn(y, x, min(x.shape[0], neighborhood))
    y2x_mean = y2x_sim.mean(axis=1)
    if margin == 'absolute':
        margin = lambda a, b: a
    else:  # margin == 'ratio'
        margin = lambda a, b: a / b
    lines = []
    fwd_scores = ref_score_candidates(x, y, x2y_ind, x2y_mean, y2x_mean, margin)
    bwd_scores = ref_score_candidates(y, x, y2x_ind, y2x_mean, x2y_mean, margin)
    fwd_best = x2y_ind[np.arange(x.shape[0]), fwd_scores.argmax(axis=1)]
    bwd_best = y2x_ind[np.arange(y.shape[0]), bwd_scores.argmax(axis=1)]
    indices = np.stack((np.concatenate((np.arange(x.shape[0]), bwd_best)),
                        np.concatenate((fwd_best, np.arange(y.shape[0])))), axis=1)
    scores = np.concatenate((fwd_scores.max(axis=1), bwd_scores.max(axis=1)))
    seen_src, seen_trg = set(), set()
    for i in np.argsort(-scores):
        src_ind, trg_ind = indices[i]
        if not src_ind in seen_src and not trg_ind in seen_trg:
            seen_src.add(src_ind)
            seen_trg.add(trg_ind)
            if scores[i] > threshold:
                lines.append((scores[i], src_ids[src_ind], trg_ids[trg_ind]))
    return lines


def ref_bucc_optimize(candidate2score, gold):
    items = sorted(candidate2score.items(), key=lambda x: -x[1])
    ngold = len(gold)
    nextract = ncorrect = 0
    threshold = 0
    best_f1 = 0
    for i in range(len(items)):
        nextract += 1
        if '\t'.join(items[i][0]) in gold:
            ncorrect += 1
        if ncorrect > 0:
            precision = ncorrect / nextract
            recall = ncorrect / ngold
            f1 = 2 * precision * recall / (precision + recall)
            if f1 > best_f1:
                best_f1 = f1
                # the original reads items[i + 1] unconditionally (IndexError on the last candidate)
                threshold = (items[i][1] + items[i + 1][1]) / 2 if i + 1 < len(items) else items[i][1]
    return threshold


def ref_bucc_extract(cand2score, th):
    bitexts = []
    for (src, trg), score in cand2score.items():
        if score >= th:
            bitexts.append(src + '\t' + trg)
    return bitexts


def ref_bucc_eval(lines, gold_pairs):
    candidate2score = {}
    for score, src, trg in lines:
        score = max(score, candidate2score.get((src, trg), score))
        candidate2score[(src, trg)] = score
    gold = {s + '\t' + t for s, t in gold_pairs}
    threshold = ref_bucc_optimize(candidate2score, gold)
    bitexts = ref_bucc_extract(candidate2score, threshold)
    ncorrect = len(gold.intersection(bitexts))
    if ncorrect > 0:
        precision = ncorrect / len(bitexts)
        recall = ncorrect / len(gold)
        f1 = 2 * precision * recall / (precision + recall)
    else:
        precision = recall = f1 = 0
    return {'best-threshold': threshold, 'precision': 100 * precision, 'recall': 100 * recall, 'F1': 100 * f1}


# ======================================================================================================= BUCC


@pytest.fixture(scope="module")
def bucc_data():
    """40 source and 50 target sentences; 30 gold pairs (20 close, 10 noisy), the rest distractors, shuffled.

    Every row shares a common direction, as real sentence embeddings do (all cosines positive): with zero-mean
    vectors the neighbourhood means in the margin's denominator approach 0 as k grows and the ratio blows up.
    """
    rng = np.random.default_rng(20240601)
    dim = 16
    common = rng.normal(size=dim)
    source = rng.normal(size=(40, dim)) + common
    noise = np.r_[np.full(20, 0.25), np.full(10, 1.2)][:, None]
    partners = source[:30] + noise * rng.normal(size=(30, dim))
    target = np.vstack([partners, rng.normal(size=(20, dim)) + common])
    order = rng.permutation(len(target))
    target = target[order]
    source_ids = [f"src-{i:06d}" for i in range(len(source))]
    target_ids = [f"trg-{j:06d}" for j in range(len(target))]
    position = {old: new for new, old in enumerate(order)}
    gold = [(source_ids[i], target_ids[position[i]]) for i in range(30)]
    return source.astype(np.float32), target.astype(np.float32), source_ids, target_ids, gold


@pytest.mark.parametrize("scoring,k", [("margin", 2), ("margin", 4), ("margin", 7), ("margin", 1000),
                                       ("cosine", 1), ("cosine", 4), ("cosine", 1000)])
def test_mine_pairs_and_bucc_f1_match_reference(bucc_data, k, scoring):
    source, target, source_ids, target_ids, gold = bucc_data
    margin = "ratio" if scoring == "margin" else "absolute"
    lines = ref_mine_bitext(source.astype(np.float64), target.astype(np.float64), source_ids, target_ids,
                            margin=margin, neighborhood=k)
    ours = mine_pairs(source, target, source_ids, target_ids, k=k, scoring=scoring)
    assert [(s, t) for s, t, _ in ours] == [(s, t) for _, s, t in lines]
    assert [score for _, _, score in ours] == pytest.approx([score for score, _, _ in lines], rel=1e-5)
    # the "max" retrieval is one-to-one
    assert len({s for s, _, _ in ours}) == len(ours) == len({t for _, t, _ in ours})

    result = bucc_f1(source, target, source_ids, target_ids, gold, k=k, scoring=scoring)
    reference = ref_bucc_eval(lines, gold)
    assert result["f1"] * 100 == pytest.approx(reference["F1"], abs=1e-9)
    assert result["precision"] * 100 == pytest.approx(reference["precision"], abs=1e-9)
    assert result["recall"] * 100 == pytest.approx(reference["recall"], abs=1e-9)
    assert result["threshold"] == pytest.approx(reference["best-threshold"], rel=1e-5)
    assert 0 < result["f1"] < 1  # the noisy pairs make this a real trade-off


def test_margin_with_one_neighbour_scores_mutual_neighbours_one(bucc_data):
    # k=1: cos(x,y) / mean(best cos of x, best cos of y) is 1 exactly for mutual nearest neighbours and < 1 otherwise,
    # so their order (and any threshold among them) is float noise, in XTREME too; compare the pairs as a set.
    source, target, source_ids, target_ids, _ = bucc_data
    lines = ref_mine_bitext(source.astype(np.float64), target.astype(np.float64), source_ids, target_ids,
                            neighborhood=1)
    ours = mine_pairs(source, target, source_ids, target_ids, k=1)
    assert {(s, t) for s, t, _ in ours} == {(s, t) for _, s, t in lines}
    assert all(score <= 1 + 1e-6 for _, _, score in ours)
    assert sum(score == pytest.approx(1.0, abs=1e-6) for _, _, score in ours) > 10


def test_bucc_tiny_case_by_hand():
    # a=(1,0) b=(0,1); x=(1,0) y=(.6,.8). cos: ax=1 ay=.6 bx=0 by=.8.  k=2 neighbourhood means:
    # a .8, b .4, x .5, y .7 -> margin ax = 1/.65 = 20/13, by = .8/.55 = 16/11, ay = .6/.75, bx = 0
    source = np.array([[1.0, 0.0], [0.0, 3.0]])  # scale does not matter
    target = np.array([[2.0, 0.0], [0.6, 0.8]])
    pairs = mine_pairs(source, target, ["a", "b"], ["x", "y"], k=2)
    assert [(s, t) for s, t, _ in pairs] == [("a", "x"), ("b", "y")]
    assert [score for _, _, score in pairs] == pytest.approx([20 / 13, 16 / 11], rel=1e-6)
    cosine = mine_pairs(source, target, ["a", "b"], ["x", "y"], k=2, scoring="cosine")
    assert [score for _, _, score in cosine] == pytest.approx([1.0, 0.8], rel=1e-6)

    midpoint = (20 / 13 + 16 / 11) / 2
    r = bucc_f1(source, target, ["a", "b"], ["x", "y"], [("a", "x")], k=2)
    assert r == pytest.approx({"f1": 1.0, "precision": 1.0, "recall": 1.0, "threshold": midpoint}, rel=1e-6)
    r = bucc_f1(source, target, ["a", "b"], ["x", "y"], [("a", "x"), ("b", "x")], k=2)
    assert r == pytest.approx({"f1": 2 / 3, "precision": 1.0, "recall": 0.5, "threshold": midpoint}, rel=1e-6)
    # best prefix is the last candidate: the threshold is its own score
    r = bucc_f1(source, target, ["a", "b"], ["x", "y"], [("b", "y")], k=2)
    assert r == pytest.approx({"f1": 2 / 3, "precision": 0.5, "recall": 1.0, "threshold": 16 / 11}, rel=1e-6)


def test_max_retrieval_takes_each_sentence_once():
    # a and b both point at x; once (a, x) is taken, b only gets y through y's backward candidate
    source = np.array([[1.0, 0.0], [0.9, 0.2]])
    target = np.array([[1.0, 0.0], [0.0, 1.0]])
    pairs = mine_pairs(source, target, ["a", "b"], ["x", "y"], k=1)
    assert [(s, t) for s, t, _ in pairs] == [("a", "x"), ("b", "y")]


def test_best_threshold_f1_direct():
    candidates = [("s1", "t1", 0.9), ("s2", "t9", 0.8), ("s3", "t3", 0.7), ("s4", "t4", 0.2), ("s3", "t3", 0.1)]
    gold = [("s1", "t1"), ("s3", "t3"), ("s5", "t5")]
    # prefixes: 1/1 of 3 -> .5; 1/2 -> .4; 2/3 of 3 -> 2/3 (best); 2/4 -> 4/7
    r = best_threshold_f1(candidates, gold)
    assert r == pytest.approx({"f1": 2 / 3, "precision": 2 / 3, "recall": 2 / 3, "threshold": 0.45})
    assert best_threshold_f1([("s9", "t9", 0.5)], gold) == {"f1": 0.0, "precision": 0.0, "recall": 0.0,
                                                           "threshold": 0.0}
    assert best_threshold_f1([], gold)["f1"] == 0.0
    with pytest.raises(ValueError, match="gold is empty"):
        best_threshold_f1(candidates, [])
    with pytest.raises(ValueError, match="triples"):
        best_threshold_f1([("s1", "t1")], gold)


def test_bucc_input_errors(bucc_data):
    source, target, source_ids, target_ids, gold = bucc_data
    with pytest.raises(ValueError, match="source id 'src-missing' is not among source_ids"):
        bucc_f1(source, target, source_ids, target_ids, gold + [("src-missing", "trg-000001")])
    with pytest.raises(ValueError, match="target id 'nope' is not among target_ids"):
        bucc_f1(source, target, source_ids, target_ids, [(source_ids[0], "nope"), ("also-missing", "x")])
    with pytest.raises(ValueError, match="one id per embedding row"):
        mine_pairs(source, target, source_ids[:-1], target_ids)
    with pytest.raises(ValueError, match="unique ids"):
        mine_pairs(source, target, [source_ids[0]] * len(source_ids), target_ids)
    with pytest.raises(ValueError, match="one dimension"):
        mine_pairs(source, target[:, :8], source_ids, target_ids)
    with pytest.raises(ValueError, match="2-D array"):
        mine_pairs(source[0], target, source_ids[:1], target_ids)
    with pytest.raises(ValueError, match="at least one row"):
        mine_pairs(source[:0], target, [], target_ids)
    with pytest.raises(ValueError, match="positive number of neighbours"):
        mine_pairs(source, target, source_ids, target_ids, k=0)
    with pytest.raises(ValueError, match="scoring must be"):
        mine_pairs(source, target, source_ids, target_ids, scoring="csls")
    zero = source.copy()
    zero[3] = 0
    with pytest.raises(ValueError, match="row 3 is all zeros"):
        mine_pairs(zero, target, source_ids, target_ids)


# ===================================================================================================== Tatoeba


def test_tatoeba_matches_numpy_argmax():
    rng = np.random.default_rng(7)
    source = rng.normal(size=(60, 24))
    noise = np.r_[np.full(40, 0.3), np.full(20, 2.0)][:, None]
    target = source * rng.uniform(0.5, 3.0, size=(60, 1)) + noise * rng.normal(size=(60, 24))
    before = source.copy()
    x = source / np.linalg.norm(source, axis=1, keepdims=True)
    y = target / np.linalg.norm(target, axis=1, keepdims=True)
    expected = np.mean(np.argmax(x @ y.T, axis=1) == np.arange(60))
    ours = tatoeba_accuracy(source, target)
    assert ours == pytest.approx(expected, abs=1e-12)
    assert 0.5 < ours < 1.0
    np.testing.assert_array_equal(source, before)  # the caller's arrays are not normalised in place


def test_tatoeba_hand_case_and_errors():
    source = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    # source 0 -> target 0 (right); source 1 -> target 2 and source 2 -> target 1 (both wrong)
    target = np.array([[5.0, 0.1], [1.0, 1.2], [0.2, 1.0]], dtype=np.float32)
    assert tatoeba_accuracy(source, target) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="as many target rows as source rows"):
        tatoeba_accuracy(source, target[:2])
    with pytest.raises(ValueError, match="one dimension"):
        tatoeba_accuracy(source, np.ones((3, 3)))
    with pytest.raises(ValueError, match="finite"):
        tatoeba_accuracy(np.array([[np.nan, 1.0]]), np.array([[1.0, 0.0]]))


# ============================================================================================= XTREME average


def test_xtreme_average_hand_example():
    scores = {"xnli": {"en": 0.8, "de": 0.7, "zh": 0.6}, "pawsx": {"en": 0.9}, "udpos": {"en": 0.5, "hi": 0.7}}
    assert xtreme_average(scores) == pytest.approx((0.7 + 0.9 + 0.6) / 3, abs=1e-12)
    with pytest.raises(ValueError, match="fraction in \\[0, 1\\]"):
        xtreme_average({"xnli": {"en": 80.0}})
    with pytest.raises(ValueError, match="non-empty"):
        xtreme_average({"xnli": {}})
    with pytest.raises(ValueError, match="scores is empty"):
        xtreme_average({})
