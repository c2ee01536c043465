"""seqadapt: continual task learning with per-task bottleneck adapters over a frozen encoder."""

__version__ = "0.1.0"
