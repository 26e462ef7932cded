"""`python -m ganforge ...` (used by `torchrun --nproc_per_node N -m ganforge train ...`)."""

from ganforge.cli import main

main()
