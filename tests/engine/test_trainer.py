"""The shared Trainer on a toy method: schedules, best model, early stopping, resume."""

from __future__ import annotations

import copy

import pytest
import torch

from cardio_explorer.engine.errors import CardioInputError
from cardio_explorer.engine.nn.trainer import Progress, Schedule, Trainer
from cardio_explorer.engine.nn.training import EpochLosses


class Toy:
    """Least squares y = 2x on 12 items; validation scores come from a script, not the model."""

    def __init__(self, scores: list[float | None] | None = None) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Linear(1, 1)
        self.x = torch.linspace(-1, 1, 12)[:, None]
        self.y = 2 * self.x
        self.scores = list(scores) if scores is not None else None
        self.has_validation = scores is not None
        self.events: list[tuple[str, int]] = []
        self.saved: dict[str, torch.Tensor] | None = None

    def begin_epoch(self, epoch: int, n_steps: int) -> None:
        self.model.train()
        self.events.append(("begin", epoch + 1))

    def step(self, epoch, step, idx, data_rng):
        noise = 0.01 * torch.randn(len(idx), 1)  # the global stream the Trainer reseeds
        loss = ((self.model(self.x[idx]) - self.y[idx] - noise) ** 2).mean()
        return (loss,)

    def postfix(self, epoch, step, means):
        return {"loss": f"{means[0]:.3f}"}

    def validate(self, epoch):
        self.events.append(("validate", epoch + 1))
        return {"mean": self.scores[epoch]}

    def record(self, epoch: int, losses: EpochLosses, scores):
        return {"epoch": epoch + 1, "loss": losses.means[0], "val": scores}

    def save_best(self, progress: Progress) -> None:
        self.events.append(("best", progress.epochs_done))

    def save_state(self, progress: Progress) -> None:
        self.events.append(("state", progress.epochs_done))
        self.saved = copy.deepcopy(self.model.state_dict())


def _trainer(toy: Toy, **changes) -> Trainer:
    schedule = Schedule(**{"epochs": 8, "batch_size": 4, "seed": 5, "progress": False} | changes)
    return Trainer(toy, schedule, len(toy.x), torch.optim.SGD(toy.model.parameters(), lr=0.2))


def test_the_loss_falls_and_files_follow_the_schedule():
    toy = Toy()
    reported = []
    progress = _trainer(toy, checkpoint_every=3).run(on_epoch=reported.append)
    losses = [r["loss"] for r in progress.history]
    assert losses[-1] < 0.1 * losses[0]
    assert [e for e in toy.events if e[0] == "state"] == [("state", 3), ("state", 6), ("state", 8)]
    # without validation data every epoch is the best so far
    assert [e[1] for e in toy.events if e[0] == "best"] == list(range(1, 9))
    assert [r["epoch"] for r in reported] == list(range(1, 9))
    assert progress.epochs_done == 8


def test_early_stopping_keeps_the_best_and_writes_the_state():
    toy = Toy(scores=[0.1, 0.5, 0.4, 0.6, 0.3, 0.2, 0.55, 0.9])
    progress = _trainer(toy, validate_every=1, patience=3, checkpoint_every=0).run()
    assert progress.stopped_early
    assert progress.epochs_done == 7  # no better score after epoch 4 for 3 validations
    assert progress.best_epoch == 4
    assert progress.best_scores == {"mean": 0.6}
    assert [e[1] for e in toy.events if e[0] == "best"] == [1, 2, 4]
    assert [e for e in toy.events if e[0] == "state"] == [("state", 7)]


def test_a_resumed_run_continues_exactly():
    full = Toy()
    whole = _trainer(full).run()
    first = Toy()
    part = _trainer(first, epochs=3).run()
    second = Toy()
    second.model.load_state_dict(first.model.state_dict())
    # plain SGD has no state to carry; the epoch reseeds every random stream
    resumed = _trainer(second).run(Progress(history=list(part.history), epochs_done=3))
    assert [r["epoch"] for r in resumed.history] == list(range(1, 9))
    assert resumed.history[-1]["loss"] == whole.history[-1]["loss"]
    for key, value in full.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[key], value)


def test_fewer_items_than_processes_is_a_clear_error(monkeypatch):
    from cardio_explorer.engine.nn import distributed

    monkeypatch.setattr(distributed, "world_size", lambda: 16)
    with pytest.raises(CardioInputError, match="cannot be shared by 16 processes"):
        _trainer(Toy())
