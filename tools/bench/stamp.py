#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""tools/bench/stamp.py - prefix each input line with the time it arrived.

    CMD | stamp.py FILE

Writes "@<seconds since the epoch> <line>" to FILE as lines arrive, so
that report.py can check the guest's own timing (the TSC) against the
build machine's clock: the wall time between two result lines bounds the
time the guest may report for the operation in between.
"""

import sys
import time


def main():
    with open(sys.argv[1], 'w', errors='replace') as out:
        for line in sys.stdin.buffer:
            text = line.decode('utf-8', 'replace').rstrip('\r\n')
            out.write('@%.6f %s\n' % (time.time(), text))
            out.flush()


if __name__ == '__main__':
    main()
