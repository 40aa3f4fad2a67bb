"""The fresh process that `harness.in_child` starts: `python -m benchmarks.child
module:function PATH` runs one measurement and prints its figures as JSON, last line.

It imports only the measurement's own module, so the process holds what a server
would and nothing of the benchmark that started it.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Sequence


def main(argv: Sequence[str]) -> int:
    """Runs `module:function` on PATH; 0 when it returned its figures."""
    target, path = argv
    module, name = target.split(":")
    print(json.dumps(getattr(importlib.import_module(module), name)(path)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
