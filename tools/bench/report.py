#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""tools/bench/report.py - turn the runs of tools/bench/bench.sh into a table.

    report.py [--columns "native trapvm nested"] OUTDIR

Reads OUTDIR/runs/<column>-<run>.{log,rc,secs} and runs/machine.env, parses
sparrow's bench lines (Documentation/guest-os.rst):

    bench <name> iters=<n> ns_per_op=<x.yyy> [exits_per_op=<e>]

and writes OUTDIR/results.txt (also printed), results.csv, results.json and,
with gnuplot, bench.png (grouped bars, log scale; bench.dat and bench.gp are
kept next to it).  A column with no numbers is shown as n/a with the reason
its run failed; numbers are only ever what a guest printed.

Exit status: 0 if the native column has at least one result, 1 otherwise.
"""

import argparse
import csv
import glob
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

COLUMNS = ['native', 'trapvm', 'nested']
TITLES = {
    'native': 'native (QEMU TCG, bare)',
    'trapvm': 'trapvm (vmctl in test host)',
    'nested': 'nested QEMU TCG (in test host)',
}
SHORT = {'native': 'native', 'trapvm': 'trapvm', 'nested': 'nested-QEMU'}
# sparrow's operations, in its order (guest-os.rst); others are appended.
KNOWN_OPS = ['null_syscall', 'ctxsw_2proc', 'ctxsw_16proc', 'page_fault',
             'fork_exit_wait', 'fork_exec_wait', 'fork_exit_wait_4m',
             'fork_touch_4m', 'map_touch_64m',
             'cpu_loop_1m']

BENCH_RE = re.compile(r'(?:^|\s)bench (\w+) iters=(\d+) ns_per_op=(\d+(?:\.\d+)?)'
                      r'(?: exits_per_op=(\d+))?')
TSC_RE = re.compile(r'# sparrow bench: tsc (\d+) kHz, (.*)$')
DONE_RE = re.compile(r'# sparrow bench: done')
STAMP_RE = re.compile(r'^@(\d+\.\d+) (.*)$')	# stamp.py

# The wall-clock check of the guest's TSC timing (see clock_check()).
WALL_SLACK_S = 0.25		# relay latency, lines arriving together
STALL_FACTOR, STALL_SLACK_S = 2.0, 2.0

# tools/testhost/run's own statuses (Documentation/testing.rst).
RUNNER_RC = {
    122: 'test host runner error',
    123: 'trapvm.ko failed to load',
    124: 'timeout (hang)',
    125: 'the test host died (panic, triple fault)',
    126: 'kernel splat in the test host\'s dmesg',
}
# vmctl run's statuses (vmctl run --help).
VMCTL_RC = {
    1: 'vmctl error', 2: 'vmctl usage error', 130: 'interrupted',
    161: 'guest triple fault', 162: 'guest HLT with interrupts off',
    170: 'trapvm internal error', 171: 'unhandled exit',
}


def read(path, default=''):
    try:
        with open(path, errors='replace') as f:
            return f.read()
    except OSError:
        return default


def parse_log(text):
    """The bench lines, the TSC line, completion and vmctl's counters."""
    res = {'ops': {}, 'order': [], 'tsc_khz': None, 'platform': None,
           'done': False, 'counters': {}}
    in_counters = False
    last_t = None		# arrival of the previous bench (or header) line
    for raw in text.splitlines():
        line = raw.replace('\r', '').rstrip()
        t = None
        m = STAMP_RE.match(line)
        if m:
            t, line = float(m.group(1)), m.group(2)
        m = BENCH_RE.search(line)
        if m:
            name = m.group(1)
            res['ops'][name] = {
                'iters': int(m.group(2)),
                'ns_per_op': float(m.group(3)),
                'exits_per_op': int(m.group(4)) if m.group(4) else None,
                # wall time since the previous result line (build machine)
                'wall_s': t - last_t if t is not None and last_t is not None else None,
            }
            res['order'].append(name)
            last_t = t
            continue
        m = TSC_RE.search(line)
        if m:
            res['tsc_khz'] = int(m.group(1))
            res['platform'] = m.group(2)
            last_t = t
            continue
        if DONE_RE.search(line):
            res['done'] = True
            continue
        if line.startswith('vCPU ') and line.endswith('counters:'):
            in_counters = True
            continue
        if in_counters:
            m = re.match(r'^(\w+)\s+(\d+)$', line)
            if m:
                res['counters'][m.group(1)] = int(m.group(2))
            else:
                in_counters = False
    return res


def first_line(text, pattern):
    for line in text.splitlines():
        if re.search(pattern, line):
            return line.strip()
    return None


def failure_reason(col, rc, text, secs):
    """Why a run did not end with guest status 0, in one line."""
    if col == 'native':
        if rc == 1:
            return None
        if rc == 124:
            return 'timeout after %s s' % secs
        if rc >= 3 and rc % 2 == 1:
            return 'guest exit status %d (QEMU exit %d)' % ((rc - 1) // 2, rc)
        return 'QEMU exit %d' % rc
    if rc == 0:
        return None
    parts = []
    if rc in RUNNER_RC:
        parts.append('%s (exit %d)' % (RUNNER_RC[rc], rc))
    elif col == 'trapvm':
        parts.append('vmctl exit %d: %s' % (rc, VMCTL_RC.get(rc, 'guest exit status %d' % rc)))
    elif rc == 120:
        parts.append('nested QEMU exited 0 (no exit device write)')
    elif rc % 2 == 1:
        parts.append('guest exit status %d (nested QEMU exit %d)' % ((rc - 1) // 2, rc))
    else:
        parts.append('nested QEMU exit %d' % rc)
    detail = (first_line(text, r'^vmctl:.*(error|fault|fail|unhandled)') or
              first_line(text, r'^bench: ') or
              first_line(text, r'^testhost: FAIL'))
    if detail and detail not in parts[0]:
        parts.append(detail)
    return '; '.join(parts)


def collect(outdir, col):
    runs = []
    for rcfile in sorted(glob.glob(os.path.join(outdir, 'runs', col + '-*.rc')),
                         key=lambda p: int(re.search(r'-(\d+)\.rc$', p).group(1))):
        base = rcfile[:-3]
        n = int(re.search(r'-(\d+)$', base).group(1))
        rc = int(read(rcfile, '-1').strip() or -1)
        secs = read(base + '.secs', '?').strip()
        text = read(base + '.log')
        p = parse_log(text)
        p.update(run=n, rc=rc, secs=secs, log=os.path.relpath(base + '.log'),
                 reason=failure_reason(col, rc, text, secs))
        if p['reason'] is None and not p['done']:
            p['reason'] = 'guest did not report "bench: done"'
        runs.append(p)
    return runs


def wrap_period_s(tsc_khz):
    """After how long sparrow's report() wraps: it computes
    cycles * 10^9 / tsc_khz in 64 bits (tsc_to_ns(cycles * 1000)), which
    overflows once the timed window exceeds 2^64 / 10^9 cycles (7.1 s at
    2.6 GHz): the printed time is then the true one modulo that period."""
    return 2.0 ** 64 / 1e9 / (tsc_khz * 1e3) if tsc_khz else None


def clock_check(op, d, tsc_khz):
    """Check one result against the build machine's clock.

    The guest times an operation with its TSC inside the interval between
    the previous result line and this one, as stamped on arrival by the
    build machine.  Reporting more time than that interval is impossible
    (the guest's clock ran fast); reporting much less when the interval is
    longer than the wrap period means the value wrapped (see
    wrap_period_s()).  Such samples are not used.  Any other interval much
    longer than the reported time is flagged but kept: time may have been
    spent outside the timed window (process setup, the console).
    Returns (usable, note).
    """
    wall = d.get('wall_s')
    if wall is None:
        return True, None
    guest = d['iters'] * d['ns_per_op'] / 1e9
    period = wrap_period_s(tsc_khz)
    if guest > wall * 1.1 + WALL_SLACK_S:
        return False, ('%s: %.2f s by the guest\'s clock but only %.2f s of wall '
                       'time passed: left out' % (op, guest, wall))
    if period and wall > period * 0.95 and wall - guest > period * 0.5:
        return False, ('%s: %.2f s by the guest\'s clock in %.2f s of wall time, '
                       'longer than the %.2f s after which sparrow\'s report() '
                       'overflows: left out' % (op, guest, wall, period))
    if wall > guest * STALL_FACTOR + STALL_SLACK_S:
        return True, ('%s: %.2f s of wall time between result lines, %.2f s by the '
                      'guest\'s clock' % (op, wall, guest))
    return True, None


def fmt_ns(v):
    if v is None:
        return 'n/a'
    for div, unit in ((1e9, 's'), (1e6, 'ms'), (1e3, 'us')):
        if v >= div:
            return '%.2f %s' % (v / div, unit)
    return '%.0f ns' % v


def fmt_ratio(v):
    return 'n/a' if v is None else '%.2fx' % v


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def gp_str(s):
    """A string for a gnuplot double-quoted, enhanced-text title."""
    s = s.replace('\\', '\\\\').replace('"', '\\"')
    for ch in '_^@&{}':
        s = s.replace(ch, '\\\\' + ch)
    return s


def plot(outdir, ops, table, status, nruns):
    gp = shutil.which('gnuplot')
    if not gp:
        return 'plot skipped: gnuplot not installed (make deps installs gnuplot-nox)'
    dat = os.path.join(outdir, 'bench.dat')
    with open(dat, 'w') as f:
        f.write('# op native_ns trapvm_ns nested_ns (n/a: no result)\n')
        for op in ops:
            row = table[op]
            f.write('%s %s\n' % (op.replace('_', '\\\\_'), ' '.join(
                'n/a' if row[c] is None else '%.3f' % row[c] for c in COLUMNS)))
    titles, notes = [], []
    for c in COLUMNS:
        t = TITLES[c]
        if not status[c]['ok']:
            t += ' - no result' if not status[c]['nops'] else ' - partial'
            reason = status[c]['reason'] or 'some operations missing'
            if len(reason) > 120:
                reason = reason[:117] + '...'
            notes.append('%s: %s' % (SHORT[c], reason))
        titles.append(gp_str(t))
    colors = {'native': '#4e79a7', 'trapvm': '#e15759', 'nested': '#76b7b2'}
    clauses = []
    for i, c in enumerate(COLUMNS):
        src = '"%s" using %d%s' % (dat, i + 2, ':xtic(1)' if i == 0 else '')
        if status[c]['nops']:
            clauses.append('%s title "%s" lc rgb "%s"' % (src, titles[i], colors[c]))
        else:
            # Keep its slot in each group and its legend entry.
            clauses.append('%s notitle lc rgb "%s"' % (src, colors[c]))
            clauses.append('keyentry with boxes fs solid 0.85 border -1 '
                           'lc rgb "%s" title "%s"' % (colors[c], titles[i]))
    script = os.path.join(outdir, 'bench.gp')
    with open(script, 'w') as f:
        f.write('''# generated by tools/bench/report.py
set terminal pngcairo size 1100,640 font "sans,10"
set output "%(png)s"
set title "sparrow mode=bench: time per operation, median of %(n)d run(s) (log scale; lower is better)%(notes)s"
set datafile missing "n/a"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set logscale y
set yrange [10:*]
set format y "10^{%%T}"
set ylabel "ns per operation"
set grid ytics mytics
set xtics rotate by -25 nomirror
set key outside top center horizontal
plot %(plot)s
''' % {'png': os.path.join(outdir, 'bench.png'), 'n': nruns,
            'notes': ''.join('\\n' + gp_str(x) for x in notes),
            'plot': ', \\\n     '.join(clauses)})
    r = subprocess.run([gp, script], capture_output=True, text=True)
    if r.returncode:
        return 'plot failed: gnuplot: %s' % r.stderr.strip().splitlines()[-1:]
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--columns', default=' '.join(COLUMNS),
                    help='columns that were run (others show as not run)')
    ap.add_argument('outdir')
    o = ap.parse_args()
    outdir = o.outdir
    wanted = o.columns.split()

    env = {}
    for line in read(os.path.join(outdir, 'runs', 'machine.env')).splitlines():
        k, _, v = line.partition('=')
        env[k] = v

    runs = {c: collect(outdir, c) for c in COLUMNS}

    # Operations: sparrow's order first, then anything new in the order seen.
    seen = []
    for c in COLUMNS:
        for r in runs[c]:
            for op in r['order']:
                if op not in seen:
                    seen.append(op)
    ops = [op for op in KNOWN_OPS if op in seen] + \
          [op for op in seen if op not in KNOWN_OPS]
    if not ops:
        ops = list(KNOWN_OPS)

    # Per column: median over every run that printed the operation, except
    # runs that timed with a wrong TSC rate.  sparrow converts TSC ticks
    # with the rate it was given (vmctl) or calibrated against the PIT
    # (natively, which a loaded machine can throw off by 2x), while every
    # column's RDTSC reads the build machine's TSC: a run whose rate is
    # more than 2% off the one measured there has every time scaled wrong.
    ref = int(env.get('tsc_khz') or 0)
    status = {}
    table = {op: {} for op in ops}
    samples = {op: {} for op in ops}
    exits = {}
    for c in COLUMNS:
        rs = runs[c]
        for r in rs:
            r['tsc_bad'] = bool(ref and r['tsc_khz'] and
                                abs(r['tsc_khz'] - ref) > ref * 0.02)
        used = [r for r in rs if not r['tsc_bad']]
        bad = [r for r in rs if r['reason']]
        st = {'runs': len(rs), 'ok_runs': len(rs) - len(bad), 'nops': 0,
              'runs_left_out': [r['run'] for r in rs if r['tsc_bad']]}
        if c not in wanted:
            st['reason'] = 'not run (BENCH_COLUMNS)'
        elif not rs:
            st['reason'] = 'no run recorded'
        elif bad:
            r = bad[0]
            st['reason'] = 'run %d failed after %s s: %s (%d of %d operations reported; log %s)' % (
                r['run'], r['secs'], r['reason'], len(r['ops']), len(ops), r['log'])
        elif not used:
            st['reason'] = 'every run timed with a wrong TSC rate'
        else:
            st['reason'] = None
        st['clock_notes'] = []
        for r in rs:
            for op, d in r['ops'].items():
                d['usable'], note = clock_check(op, d, r['tsc_khz'])
                if note:
                    st['clock_notes'].append('run %d: %s' % (r['run'], note))
        for op in ops:
            samples[op][c] = [r['ops'][op]['ns_per_op'] if op in r['ops'] else None
                              for r in rs]
            v = [r['ops'][op]['ns_per_op'] for r in used
                 if op in r['ops'] and r['ops'][op]['usable']]
            table[op][c] = statistics.median(v) if v else None
            if v:
                st['nops'] += 1
            if c == 'trapvm':
                e = [r['ops'][op]['exits_per_op'] for r in used
                     if op in r['ops'] and r['ops'][op]['exits_per_op'] is not None]
                exits[op] = statistics.median(e) if e else None
        st['ok'] = st['reason'] is None and st['nops'] == len(ops)
        st['tsc_khz'] = [r['tsc_khz'] for r in rs]
        st['platform'] = next((r['platform'] for r in rs if r['platform']), None)
        st['secs'] = [r['secs'] for r in rs]
        st['tsc_warning'] = None
        if st['runs_left_out']:
            st['tsc_warning'] = ('left out of the medians: %s (TSC rate %s kHz '
                                 'instead of %d)' % (
                                     ', '.join('run %d' % r['run'] for r in rs if r['tsc_bad']),
                                     '/'.join(str(r['tsc_khz']) for r in rs if r['tsc_bad']),
                                     ref))
        status[c] = st

    counters = next((r['counters'] for r in reversed(runs['trapvm'])
                     if r['counters']), {})
    if any(v is not None for v in exits.values()):
        exits_note = 'exits/op: median of sparrow\'s exits_per_op (hv_exits system call)'
    elif status['trapvm']['nops']:
        exits_note = ('exits/op: n/a - sparrow printed no exits_per_op (its hv_exits '
                      'hook has no trapvm hypercall to call yet)')
    else:
        exits_note = 'exits/op: n/a - the trapvm column has no results'

    rows = []
    for op in ops:
        t = table[op]
        rows.append({
            'op': op,
            'native_ns': t['native'], 'trapvm_ns': t['trapvm'], 'nested_ns': t['nested'],
            'trapvm_over_native': ratio(t['trapvm'], t['native']),
            'trapvm_over_nested': ratio(t['trapvm'], t['nested']),
            'nested_over_native': ratio(t['nested'], t['native']),
            'trapvm_exits_per_op': exits.get(op),
            # all of the operation's time divided among its exits: an
            # upper bound on the cost of one exit
            'trapvm_ns_per_exit': (t['trapvm'] / exits[op]
                                   if t['trapvm'] is not None and exits.get(op)
                                   else None),
        })

    # --- text
    hdr = ['operation', 'native', 'trapvm', 'nested-QEMU', 'trapvm/native',
           'trapvm/nested', 'nested/native', 'exits/op', 'time/exit']
    lines = [hdr]
    for r in rows:
        lines.append([r['op'], fmt_ns(r['native_ns']), fmt_ns(r['trapvm_ns']),
                      fmt_ns(r['nested_ns']), fmt_ratio(r['trapvm_over_native']),
                      fmt_ratio(r['trapvm_over_nested']),
                      fmt_ratio(r['nested_over_native']),
                      'n/a' if r['trapvm_exits_per_op'] is None
                      else '%g' % r['trapvm_exits_per_op'],
                      fmt_ns(r['trapvm_ns_per_exit'])])
    w = [max(len(li[i]) for li in lines) for i in range(len(hdr))]
    text = []
    text.append('sparrow mode=bench, time per operation (median of %s run(s) per column)'
                % env.get('runs', '?'))
    text.append('machine: %s CPU(s), %s, TSC %s kHz; %s' % (
        env.get('cpus', '?'), env.get('cpu_model', '?'), env.get('tsc_khz') or '?',
        env.get('qemu', '?')))
    text.append('test host: %s, tools/testhost/run --mem %s %s' % (
        env.get('testhost_kernel', '?'), env.get('host_mem', '?'),
        env.get('host_opts', '')))
    text.append('%s; commit %s; load average at start %s' % (
        env.get('date', '?'), env.get('commit', '?'), env.get('loadavg_start', '?')))
    if env.get('guest_cmdline', 'mode=bench') != 'mode=bench':
        text.append('sparrow command line (native, trapvm): %s'
                    % env['guest_cmdline'])
    text.append('')
    for i, li in enumerate(lines):
        text.append('  '.join([li[0].ljust(w[0])] + [li[j].rjust(w[j])
                                                     for j in range(1, len(li))]).rstrip())
        if i == 0:
            text.append('  '.join('-' * x for x in w))
    text.append('')
    for c in COLUMNS:
        st = status[c]
        s = '%-12s ' % (SHORT[c] + ':')
        if st['reason']:
            s += 'FAILED - ' + st['reason'] if c in wanted else st['reason']
        else:
            s += 'ok, %d/%d runs' % (st['ok_runs'], st['runs'])
            if st['nops'] < len(ops):
                s += ', %d operation(s) without a usable sample' % (len(ops) - st['nops'])
        if any(st['tsc_khz']):
            s += ' [%s; tsc kHz %s]' % (st['platform'], ' '.join(
                str(k) if k else '-' for k in st['tsc_khz']))
        text.append(s)
        if st['tsc_warning']:
            text.append(' ' * 13 + st['tsc_warning'])
        for note in st['clock_notes']:
            text.append(' ' * 13 + 'clock check, ' + note)
    text.append(exits_note)
    if counters:
        nexits = sum(v for k, v in counters.items() if k.startswith('exit_'))
        top = sorted(((v, k) for k, v in counters.items()
                      if k.startswith('exit_') and v), reverse=True)
        text.append('trapvm whole run (vmctl run --stats, last run, boot included): '
                    '%d entries, %d exits (%s)' % (
                        counters.get('entries', 0), nexits,
                        ', '.join('%s %d' % (k[5:], v) for v, k in top[:6])))
    perr = plot(outdir, ops, table, status, int(env.get('runs', '0') or 0))
    text.append(perr or 'plot: %s' % os.path.relpath(os.path.join(outdir, 'bench.png')))
    text.append('ratios > 1: trapvm slower; trapvm/nested < 1: trapvm beats nested QEMU; '
                'time/exit: trapvm time / exits/op (an upper bound per exit)')
    report = '\n'.join(text) + '\n'
    with open(os.path.join(outdir, 'results.txt'), 'w') as f:
        f.write(report)
    sys.stdout.write(report)

    # --- CSV and JSON
    with open(os.path.join(outdir, 'results.csv'), 'w', newline='') as f:
        wr = csv.writer(f)
        keys = ['op', 'native_ns', 'trapvm_ns', 'nested_ns', 'trapvm_over_native',
                'trapvm_over_nested', 'nested_over_native', 'trapvm_exits_per_op',
                'trapvm_ns_per_exit']
        wr.writerow(keys)
        for r in rows:
            wr.writerow(['n/a' if r[k] is None else
                         ('%.3f' % r[k] if isinstance(r[k], float) else r[k])
                         for k in keys])
    with open(os.path.join(outdir, 'results.json'), 'w') as f:
        json.dump({
            'machine': env,
            'columns': {c: dict(status[c], title=TITLES[c]) for c in COLUMNS},
            'results': rows,
            'samples_ns': samples,
            'exits_note': exits_note,
            'trapvm_counters_last_run': counters,
        }, f, indent=1, sort_keys=True)
        f.write('\n')

    return 0 if status['native']['nops'] else 1


if __name__ == '__main__':
    sys.exit(main())
