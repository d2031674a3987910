"""``python -m lab``: train, compare, sweep, gradcheck, gradients, theory, jacobian and export-torch from the command
line.

Every subcommand reads the same run options into a RunConfig and calls the same
engine the pages use.  Bad input ends with one line on stderr and exit status 2.
"""
from __future__ import annotations

import sys

from lab.data.datasets import DataError
from lab.engine.config import ConfigError

from .commands import cmd_export_torch, cmd_gradcheck, cmd_gradients, cmd_jacobian, cmd_lessons, cmd_sweep, cmd_theory, cmd_train
from .options import UsageError, build_parser
from .runs import cmd_runs

COMMANDS = {"runs": cmd_runs, "train": cmd_train, "compare": cmd_train, "gradcheck": cmd_gradcheck, "gradients": cmd_gradients,
            "theory": cmd_theory, "jacobian": cmd_jacobian, "sweep": cmd_sweep, "lessons": cmd_lessons,
            "export-torch": cmd_export_torch}


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        return COMMANDS[args.command](args, args.command == "compare")
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except (ConfigError, DataError) as exc:
        print(f"python -m lab: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        print(f"python -m lab: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2
    except MemoryError:
        print("python -m lab: error: this machine ran out of memory; reduce the width, the depth or the "
              "number of samples", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
