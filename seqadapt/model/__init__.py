"""The LightningModule and what it is made of: task tensors, mixed-task passes, the parameter ledger."""

from seqadapt.model.budget import ParameterBudget, parameter_budget
from seqadapt.model.mixed import mixed_outputs
from seqadapt.model.module import OptimConfig, SeqAdaptModule

__all__ = ["OptimConfig", "ParameterBudget", "SeqAdaptModule", "mixed_outputs", "parameter_budget"]
