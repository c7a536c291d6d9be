"""Measure how fast lisette starts: `import lisette` against `import litellm` and `python -c pass`, and the first byte of the CLI.

    python bench/startup.py [--quick] [--reps 5] [--cli-reps 3] [--no-cli] [--no-inproc]

Each figure is the whole-process wall time of a fresh interpreter, the commands run in turn with their order
alternating between repeats; medians. Then the time from starting `lisette "Say hi"` (the default local model, warm:
already converted into `$LISETTE_CACHE` or `~/.cache/lisette`, as `lisette.local.cache_dir()` says) to the first byte
on its stdout, and to its exit. If the converted model is not there, that is said and skipped, not converted.
The CLI keeps a local model loaded in a background daemon (`lisette.cli`), so it is measured three ways, in a
scratch run folder (`LISETTE_RUN_DIR`): the first run, which starts the daemon and waits for it to load the model;
the warm runs after it, which reuse that daemon (the goal is about these); and, for comparison, one run with
`LISETTE_KEEP_ALIVE=0`, which loads everything in-process as before the daemon. The daemon is stopped at the end.
`-X importtime` of `import lisette` shows the slowest imports underneath.
"""
import os, sys, time, shutil, argparse, tempfile, statistics, subprocess
from pathlib import Path

PY = sys.executable
CMDS = {'python -c pass': [PY, '-c', 'pass'], 'import litellm': [PY, '-c', 'import litellm'],
        'import lisette': [PY, '-c', 'import lisette']}
ENV = os.environ | {'LITELLM_LOCAL_MODEL_COST_MAP': 'True'}

def wall(cmd) -> float:
    "Seconds `cmd` takes to run to its exit"
    t = time.perf_counter()
    subprocess.run(cmd, env=ENV, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t

def first_byte(cmd, env=ENV) -> tuple:
    "Seconds from starting `cmd` (in environment `env`) to the first byte on its stdout, and to its exit"
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    b = os.read(p.stdout.fileno(), 1)
    t1 = time.perf_counter() - t
    p.stdout.read(); p.wait()
    return (t1 if b else float('nan')),time.perf_counter() - t

def warm_model() -> Path|None:
    "The converted default local model's directory, if complete (the layout of `lisette.local.cached_convert`)"
    root = Path(os.environ.get('LISETTE_CACHE') or Path.home()/'.cache'/'lisette').expanduser()/'models'
    return next((d for d in sorted(root.glob('gemma3-270m-*')) if (d/'lisette-complete.json').exists()), None)

def import_top(n=8):
    "The `n` slowest imports (cumulative) under `import lisette`, from `-X importtime`"
    err = subprocess.run([PY, '-X', 'importtime', '-c', 'import lisette'], env=ENV, capture_output=True, text=True).stderr
    rows = [l.split('|') for l in err.splitlines() if l.startswith('import time:') and 'cumulative' not in l]
    rows = sorted(((int(c), m.rstrip()) for _,c,m in rows), reverse=True)[:n]
    return [f'{c/1e6:6.2f}s {m}' for c,m in rows]

def cli_paths(cli, reps:int, inproc=True) -> tuple:
    "First byte and exit of `cli 'Say hi'`: the run that starts the daemon, `reps` warm runs, one in-process run"
    d = tempfile.mkdtemp(prefix='lzb')
    env = ENV | {'LISETTE_RUN_DIR': d}
    env.pop('LISETTE_KEEP_ALIVE', None)
    try:
        cold = first_byte([cli, 'Say hi'], env)
        pid = next((p.read_text() for p in Path(d).glob('*.pid')), None)
        warm = [first_byte([cli, 'Say hi'], env) for _ in range(reps)]
        same = pid is not None and [p.read_text() for p in Path(d).glob('*.pid')] == [pid]
        inp = first_byte([cli, 'Say hi'], env | {'LISETTE_KEEP_ALIVE': '0'}) if inproc else None
    finally:
        subprocess.run([cli, '--stop'], env=env, stdout=subprocess.DEVNULL)
        shutil.rmtree(d, ignore_errors=True)
    return cold,warm,inp,(pid if same else None)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='few repeats, for a busy machine')
    ap.add_argument('--reps', type=int, default=5)
    ap.add_argument('--cli-reps', type=int, default=3)
    ap.add_argument('--no-cli', action='store_true', help='skip the CLI first-byte measurement')
    ap.add_argument('--no-inproc', action='store_true', help='skip the in-process (LISETTE_KEEP_ALIVE=0) CLI run')
    a = ap.parse_args()
    if a.quick: a.reps,a.cli_reps = 3,1
    for c in CMDS.values(): wall(c)                                   # warm the OS file cache
    ts = {k: [] for k in CMDS}
    for r in range(a.reps):
        for k in (list(CMDS) if r % 2 == 0 else list(CMDS)[::-1]): ts[k].append(wall(CMDS[k]))
    med = {k: statistics.median(v) for k,v in ts.items()}
    print('slowest imports under `import lisette` (cumulative, one run):', *import_top(), sep='\n  ')
    print(f"\n{'command':28} {'median s':>9} {'min s':>7}")
    for k,v in ts.items(): print(f'{k:28} {med[k]:9.2f} {min(v):7.2f}')
    cli,d = shutil.which('lisette', path=os.path.dirname(PY)),warm_model()
    fb = None
    if a.no_cli: print('lisette "Say hi": skipped (--no-cli)')
    elif not cli: print('lisette "Say hi": no `lisette` command next to this python; skipped')
    elif not d: print('lisette "Say hi": the local model is not converted yet (run `lisette "hi"` once); skipped')
    else:
        cold,fb,inp,pid = cli_paths(cli, a.cli_reps, not a.no_inproc)
        f,e = statistics.median(o[0] for o in fb),statistics.median(o[1] for o in fb)
        print(f'\nlisette "Say hi" (model {d.name}), seconds to the first byte / to the exit:')
        print(f'  {"first run, starts the daemon":34} {cold[0]:6.2f} / {cold[1]:6.2f}')
        print(f'  {"warm, daemon reused":34} {f:6.2f} / {e:6.2f}   (median of {len(fb)}, min {min(o[0] for o in fb):.2f}; '
              f'{"same daemon pid " + pid if pid else "NOT one daemon throughout"})')
        if inp: print(f'  {"in-process (LISETTE_KEEP_ALIVE=0)":34} {inp[0]:6.2f} / {inp[1]:6.2f}')
    print(f"\nimport lisette: {med['import lisette']:.2f} s (goal <= 0.5 s); "
          f"minus python startup: {med['import lisette'] - med['python -c pass']:.2f} s; import litellm: {med['import litellm']:.2f} s")
    if fb: print(f'lisette "Say hi" first byte: {f:.2f} s (goal <= 3 s), measured on the warm path: the model daemon '
                 f'started by the run before' + (f'; in-process it was {inp[0]:.2f} s' if inp else ''))

if __name__ == '__main__': main()
