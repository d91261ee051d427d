"""``python -m nascomp`` (and so ``torchrun --nproc-per-node N -m nascomp ...``): the ``nascomp`` command."""

import sys

from .cli import main

sys.exit(main())
