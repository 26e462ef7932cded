"""Training: the loop and its step-end callbacks, the run interface algorithms receive, learning
rates, the run lock, CPU sharing, hardware choices, trackers and progress reporting."""
