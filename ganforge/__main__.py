"""`python -m ganforge ...` (used by `torchrun --nproc_per_node N -m ganforge train ...`)."""

from .cli import main

main()
