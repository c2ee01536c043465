"""LoadedStream.predict_each: a batch answered in one call where it can be, else input by input."""

from seqadapt.artefacts import ArtefactError
from seqadapt.serving import LoadedStream


class Recording(LoadedStream):
    """A stream without a model: ``predict`` answers each request with its text and task, and fails the whole
    call when any request in it is ``"bad"``, as one unanswerable row fails a real batch."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def predict(self, inputs, task=None, selector="mahalanobis"):
        self.calls.append(list(inputs))
        if "bad" in inputs:
            raise ArtefactError("cannot answer 'bad'")
        tasks = task if isinstance(task, list) else [task or selector] * len(inputs)
        return [f"{text}@{name}" for text, name in zip(inputs, tasks)]


def test_a_batch_that_can_be_answered_is_one_call():
    stream = Recording()
    assert stream.predict_each(["a", "b"], ["trec", "sms_spam"]) == ["a@trec", "b@sms_spam"]
    assert stream.calls == [["a", "b"]]


def test_a_failing_batch_is_answered_input_by_input_and_only_the_bad_one_gets_its_error():
    stream = Recording()
    results = stream.predict_each(["a", "bad", "c"], ["trec", "sms_spam", "trec"])
    assert results[0] == "a@trec" and results[2] == "c@trec"
    assert isinstance(results[1], ArtefactError) and "cannot answer 'bad'" in str(results[1])
    assert stream.calls == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]


def test_one_task_and_a_selector_are_kept_for_each_input():
    stream = Recording()
    assert stream.predict_each(["a", "bad"], "trec")[0] == "a@trec"
    assert stream.predict_each(["a", "bad"], None, selector="prototype")[0] == "a@prototype"
