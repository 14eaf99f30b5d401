"""Floor 3, training: ε and learning-rate schedules (:mod:`.schedules`), the optimisers (:mod:`.optim`),
the adversarial training loop with its per-batch probes, on the checkpointed epoch loop with exact resume
that curve training shares (:mod:`.loop`), runs of one architecture trained together as one stacked model
(:mod:`.batched`), and the run store that trains each spec once and shares it
between notebooks (:mod:`.store`)."""
from .batched import STACK_FILE, batch_key, compatible, stack_checkpoint, train_batched
from .loop import (PROBES, DeadLayerProbe, Epochs, EpochTrainer, TrainResult, TrainSpec, initial_model, load_probes,
                   load_result, run_epochs, train)
from .optim import OPTIMIZERS, make_optimizer
from .schedules import KINDS, ScheduleSpec, period_bounds, schedule_value, schedule_values
from .store import (STORE_VERSION, Run, get_or_run, get_or_train, get_or_train_group, is_complete, run_key,
                    run_path, stored_results)

__all__ = ["PROBES", "DeadLayerProbe", "Epochs", "EpochTrainer", "TrainResult", "TrainSpec", "initial_model",
           "load_probes", "load_result", "run_epochs", "train", "STACK_FILE", "batch_key", "compatible", "stack_checkpoint",
           "train_batched",
           "OPTIMIZERS", "make_optimizer", "KINDS", "ScheduleSpec", "period_bounds", "schedule_value", "schedule_values",
           "STORE_VERSION", "Run", "get_or_run", "get_or_train", "get_or_train_group", "is_complete", "run_key",
           "run_path", "stored_results"]
