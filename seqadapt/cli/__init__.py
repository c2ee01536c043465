"""The command-line entry points: ``seqadapt`` (train), ``seqadapt-predict`` and ``seqadapt-report``."""
