"""What ``GET /metrics`` says, in Prometheus' text format (0.0.4): requests by status, rows and latency by task,
batch sizes, errors by kind, reloads. Counted in the server's one event loop, so no lock is needed."""

from __future__ import annotations

import bisect
from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # seconds
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # rows per backbone batch


class Histogram:
    """Cumulative buckets, sum and count of observed values, per label value."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts: dict[str, list[int]] = defaultdict(lambda: [0] * (len(buckets) + 1))
        self.sums: dict[str, float] = defaultdict(float)

    def observe(self, value: float, label: str = "") -> None:
        self.counts[label][bisect.bisect_left(self.buckets, value)] += 1
        self.sums[label] += value

    def lines(self, name: str, label_name: str) -> list[str]:
        out = []
        for label in sorted(self.counts):
            where = f'{label_name}="{escape(label)}",' if label_name else ""
            total = 0
            for bound, count in zip([*map(str, self.buckets), "+Inf"], self.counts[label]):
                total += count
                out.append(f'{name}_bucket{{{where}le="{bound}"}} {total}')
            tags = f"{{{where.rstrip(',')}}}" if where else ""
            out += [f"{name}_sum{tags} {self.sums[label]}", f"{name}_count{tags} {total}"]
        return out


def escape(value: str) -> str:
    """A label value as Prometheus' text format writes it."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """The server's counters and histograms."""

    def __init__(self) -> None:
        self.requests: dict[str, int] = defaultdict(int)  # by HTTP status
        self.rows: dict[str, int] = defaultdict(int)  # by task answered
        self.errors: dict[str, int] = defaultdict(int)  # by kind: bad_request, too_large, invalid, model, ...
        self.latency = Histogram(LATENCY_BUCKETS)  # seconds from a request's arrival to its answer, by task
        self.batches = Histogram(BATCH_BUCKETS)  # rows per dynamic batch
        self.reloads = 0

    def render(self, tasks: int, version: int) -> str:
        """Every metric in Prometheus' text format."""
        lines = ["# HELP seqadapt_requests_total HTTP requests to /predict by status.",
                 "# TYPE seqadapt_requests_total counter",
                 *(f'seqadapt_requests_total{{status="{status}"}} {n}' for status, n in sorted(self.requests.items())),
                 "# HELP seqadapt_rows_total Request objects answered, by the task that answered.",
                 "# TYPE seqadapt_rows_total counter",
                 *(f'seqadapt_rows_total{{task="{escape(task)}"}} {n}' for task, n in sorted(self.rows.items())),
                 "# HELP seqadapt_errors_total Requests refused or failed, by kind.",
                 "# TYPE seqadapt_errors_total counter",
                 *(f'seqadapt_errors_total{{kind="{kind}"}} {n}' for kind, n in sorted(self.errors.items())),
                 "# HELP seqadapt_request_latency_seconds Arrival to answer of a request object, by task.",
                 "# TYPE seqadapt_request_latency_seconds histogram",
                 *self.latency.lines("seqadapt_request_latency_seconds", "task"),
                 "# HELP seqadapt_batch_rows Request objects per dynamic batch (one backbone pass per eval batch).",
                 "# TYPE seqadapt_batch_rows histogram",
                 *self.batches.lines("seqadapt_batch_rows", ""),
                 "# HELP seqadapt_reloads_total Times the served set was reloaded from the run folder.",
                 "# TYPE seqadapt_reloads_total counter", f"seqadapt_reloads_total {self.reloads}",
                 "# HELP seqadapt_tasks Tasks served now.", "# TYPE seqadapt_tasks gauge", f"seqadapt_tasks {tasks}",
                 "# HELP seqadapt_version The served set's number (1 at start, +1 per reload).",
                 "# TYPE seqadapt_version gauge", f"seqadapt_version {version}"]
        return "\n".join(lines) + "\n"
