"""The model card at the end of training: ``RUN/MODEL_CARD.md`` and the hardware it names.

:class:`ModelCard` is one of the loop's built-in callbacks (:func:`ganforge.train.train`): when a
call to ``train`` ends, it records the hardware the run trained on in ``RUN/hardware.json`` and
writes the card (:mod:`ganforge.io.model_card`). ``ganforge report RUN`` writes the card again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ganforge.io.model_card import cpu_name, write_hardware, write_model_card
from ganforge.train.callbacks import Callback

if TYPE_CHECKING:
    from ganforge.train.session import TrainRun


def hardware_info(run: "TrainRun") -> dict:
    """What the run trained on: device, its name, processes, threads, precision, software."""
    from ganforge import __version__

    device = torch.device(run.device)
    if device.type == "cuda":
        try:
            name = torch.cuda.get_device_name(device)
        except Exception:  # noqa: BLE001 - the name is a nicety
            name = "CUDA GPU"
    else:
        import os

        name = f"{cpu_name()} ({os.cpu_count() or '?'} logical cores)"
    return {"device": device.type, "device_name": name, "processes": int(run.world), "threads": int(run.threads),
            "mixed_precision": str(run.precision), "torch": torch.__version__, "ganforge": __version__}


class ModelCard(Callback):
    """At the end of every ``train`` call: ``RUN/hardware.json`` and ``RUN/MODEL_CARD.md``, on the
    main process. A failure is reported as a warning and never fails the run."""

    def __init__(self, say=None):
        self.say = say

    def on_train_end(self, run, finished):
        if not run.is_main:
            return
        try:
            write_hardware(run.run_dir, hardware_info(run))
            write_model_card(run.run_dir)
        except Exception as exc:  # noqa: BLE001 - the card is a convenience, the run comes first
            if self.say is not None:
                self.say.line(f"[yellow]warning:[/yellow] could not write MODEL_CARD.md: {exc}")
