"""``GET /metrics``' text follows Prometheus' exposition format: cumulative buckets ending in +Inf, _sum and _count."""

from seqadapt.serve.metrics import Histogram, Metrics, escape


def test_a_histogram_counts_cumulatively_with_le_labels_sum_and_count():
    histogram = Histogram((1.0, 2.0))
    for value in (0.5, 1.0, 1.5, 3.0):  # by hand: <=1: 2 (le is inclusive), <=2: 3, all: 4; sum 6.0
        histogram.observe(value, "colors")
    assert histogram.lines("latency", "task") == [
        'latency_bucket{task="colors",le="1.0"} 2', 'latency_bucket{task="colors",le="2.0"} 3',
        'latency_bucket{task="colors",le="+Inf"} 4', 'latency_sum{task="colors"} 6.0', 'latency_count{task="colors"} 4']


def test_label_values_are_escaped_and_every_metric_has_help_and_type():
    assert escape('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    metrics = Metrics()
    metrics.requests["200"] += 3
    text = metrics.render(tasks=2, version=5)
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE")}
    assert names == {"seqadapt_requests_total", "seqadapt_rows_total", "seqadapt_errors_total",
                     "seqadapt_request_latency_seconds", "seqadapt_batch_rows", "seqadapt_reloads_total",
                     "seqadapt_tasks", "seqadapt_version"}
    assert 'seqadapt_requests_total{status="200"} 3' in text and "seqadapt_version 5" in text and text.endswith("\n")
