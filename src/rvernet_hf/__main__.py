# Copyright 2026 The rvernet-hf developers. Licensed under the Apache License, Version 2.0.
"""`python -m rvernet_hf ...`: the `rvernet-hf` command (the module entry that launchers such as `torchrun` take)."""

import sys

from .cli import main


sys.exit(main())
