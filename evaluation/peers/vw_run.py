"""Runs Vowpal Wabbit's own driver over one data file, one pass, writing progressive predictions.

Usage: python vw_run.py WORKDIR DATA_FILE PRED_FILE [VW ARGS...]

The PyPI package ships no `vw` binary; Workspace(...).run_parser() is the same parse/learn loop the
binary runs for `vw -d DATA -p PREDS`: each example is predicted, the prediction written, then the
example is learned. So every line of PRED_FILE is a prequential (predict-then-learn) score.
Paths are relative to WORKDIR because VW splits its argument string on spaces.
"""
import os
import sys


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    workdir, data, preds, *args = sys.argv[1:]
    for name in (data, preds):
        if " " in name:
            print(f"file names must not contain spaces: {name!r}", file=sys.stderr)
            return 2
    from vowpalwabbit import Workspace  # imported late: a missing package is reported by the caller

    os.chdir(workdir)
    ws = Workspace(" ".join(["-d", data, "-p", preds, "--quiet", *args]))
    ws.run_parser()
    ws.finish()
    return 0


if __name__ == "__main__":
    sys.exit(main())
