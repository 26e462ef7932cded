"""Training: the loop and its step-end callbacks, the run interface algorithms receive, learning
rates, the run lock, CPU sharing, hardware choices, trackers and progress reporting.

From a script: ``from ganforge.train import train`` (see :func:`ganforge.train.loop.train`).
"""


def __getattr__(name: str):
    if name == "train":  # resolved on use, so importing a submodule stays light
        from ganforge.train.loop import train

        return train
    raise AttributeError(f"module 'ganforge.train' has no attribute '{name}'")
