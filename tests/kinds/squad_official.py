"""The reference for seqadapt's SQuAD scores: the scoring logic of the official SQuAD 2.0 evaluation script,
``evaluate-v2.0.py`` (https://rajpurkar.github.io/SQuAD-explorer/, the version Hugging Face's ``evaluate``
wraps as ``metrics/squad_v2/compute_score.py``), kept function for function and in its own order of steps:
``normalize_answer``, ``get_tokens``, ``compute_exact``, ``compute_f1``, the loop of ``get_raw_scores`` and
``make_eval_dict`` with the HasAns/NoAns split of ``make_qid_to_has_ans``. Only the file reading is left
out: questions come as lists instead of SQuAD JSON. Scores are percentages, as the script reports them.

It is written separately from :mod:`seqadapt.kinds.squad_metric` on purpose: tests compare the two.
"""

import collections
import re
import string


def normalize_answer(s):
    """Lower text and remove punctuation, articles and extra whitespace."""

    def remove_articles(text):
        regex = re.compile(r"\b(a|an|the)\b", re.UNICODE)
        return re.sub(regex, " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def get_tokens(s):
    if not s:
        return []
    return normalize_answer(s).split()


def compute_exact(a_gold, a_pred):
    return int(normalize_answer(a_gold) == normalize_answer(a_pred))


def compute_f1(a_gold, a_pred):
    gold_toks = get_tokens(a_gold)
    pred_toks = get_tokens(a_pred)
    common = collections.Counter(gold_toks) & collections.Counter(pred_toks)
    num_same = sum(common.values())
    if len(gold_toks) == 0 or len(pred_toks) == 0:
        # If either is no-answer, then F1 is 1 if they agree, 0 otherwise
        return int(gold_toks == pred_toks)
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(pred_toks)
    recall = 1.0 * num_same / len(gold_toks)
    return (2 * precision * recall) / (precision + recall)


def official_scores(predictions, answers):
    """``exact`` and ``f1`` over all questions, and ``HasAns_*``/``NoAns_*`` over each kind present, in percent.
    ``answers[i]`` are question i's gold answer texts (empty for an unanswerable question)."""
    exact_scores, f1_scores = {}, {}
    for qid, (a_pred, texts) in enumerate(zip(predictions, answers)):
        gold_answers = [a for a in texts if normalize_answer(a)]
        if not gold_answers:
            # For unanswerable questions, only correct answer is empty string
            gold_answers = [""]
        exact_scores[qid] = max(compute_exact(a, a_pred) for a in gold_answers)
        f1_scores[qid] = max(compute_f1(a, a_pred) for a in gold_answers)
    qid_to_has_ans = {qid: bool(texts) for qid, texts in enumerate(answers)}

    def make_eval_dict(qid_list):
        total = len(qid_list)
        return {"exact": 100.0 * sum(exact_scores[k] for k in qid_list) / total,
                "f1": 100.0 * sum(f1_scores[k] for k in qid_list) / total}

    out = make_eval_dict(list(exact_scores))
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        qids = [k for k, v in qid_to_has_ans.items() if v is wanted]
        if qids:
            out.update({f"{prefix}_{k}": v for k, v in make_eval_dict(qids).items()})
    return out
