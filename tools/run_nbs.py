"""Run the notebooks in real Jupyter kernels against the local test server, and save them with their outputs.

    lisette-llama run -- python tools/run_nbs.py [nbs/03_chat.ipynb ...]            # live
    lisette-llama run -- python tools/run_nbs.py --record [nbs/03_chat.ipynb ...]   # live, recording the traffic
    python tools/run_nbs.py --replay [--no-save] [nbs/03_chat.ipynb ...]            # from the recordings, no server
    python tools/run_nbs.py --replay --out _replayed                                # ... written to _replayed/, not nbs/

With no arguments every notebook in `nbs/` runs, in order, each in a fresh ipykernel driven by nbclient: the way
Jupyter itself runs a notebook, so a live display ends as its final state, not as a pile of updates. A notebook
that fails is not written. The saved notebooks are then cleaned by `nbdev_clean` (execution counts and metadata
go, outputs stay), so a second run on an unchanged tree leaves `git diff` empty: ids come from `patch_litellm`,
the server decodes greedily with its prompt cache off (`lisette.testing.LlamaServer`).

`--record` also records each notebook's traffic to loopback servers into `recordings/<notebook>/cachy.jsonl`
(made afresh), and `--replay` runs the notebooks from those recordings with no server: strictly, so a request the
recording lacks fails its cell (`lisette.replay`). Both work through `LISETTE_REPLAY`/`LISETTE_REPLAY_DIR`, which
the kernel and its subprocesses inherit (`lisette.testing.use_recording`). `--out DIR` writes the notebooks run
into `DIR` and leaves `nbs/` as it is: the docs build replays into a scratch folder (`tools/build_docs.sh`).
"""
import os, sys, time, shutil, argparse, subprocess, multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

root = Path(__file__).resolve().parent.parent
nbs = root/'nbs'
recordings = root/'recordings'

def notebooks(names) -> list:
    "The notebooks to run: `names`, or all of `nbs/` in order (the numbered ones, then index)."
    if names: return [Path(n).resolve() for n in names]
    return sorted(nbs.glob('[0-9]*.ipynb')) + [nbs/'index.ipynb']

def set_mode(path:Path, mode:str):
    "Point the environment the next kernel inherits at notebook `path`'s recording, for `mode` (live, record, replay)"
    for k in ('LISETTE_REPLAY', 'LISETTE_REPLAY_DIR'): os.environ.pop(k, None)
    if mode == 'live': return
    d = recordings/path.stem
    if mode == 'record': shutil.rmtree(d, ignore_errors=True)
    os.environ.update(LISETTE_REPLAY=mode, LISETTE_REPLAY_DIR=str(d))

def run(path:Path, timeout:int, save=True, out=None) -> float:
    "Execute notebook `path` in a fresh kernel and write it with its outputs (if `save`) back, or into folder `out`; the seconds it took."
    nb = nbformat.read(path, as_version=4)
    t = time.monotonic()
    NotebookClient(nb, timeout=timeout, kernel_name='python3', coalesce_streams=True,
                   resources={'metadata': {'path': str(nbs)}}).execute()
    if save:
        dest = Path(out)/path.name if out else path
        nbformat.write(nb, dest)
        subprocess.run(['nbdev_clean', '--fname', str(dest)], check=True, cwd=root)
    return time.monotonic() - t

def run_one(path:Path, mode:str, timeout:int, save:bool, out=None) -> tuple:
    "Run notebook `path` in `mode`: `(path, seconds, None)`, or `(path, None, the error)` if a cell failed"
    set_mode(path, mode)
    try: return path, run(path, timeout, save=save, out=out), None
    except CellExecutionError as e: return path, None, str(e)

def run_all(paths:list, mode:str, timeout:int, save:bool, workers:int=1, out=None):
    "`run_one` each of `paths`, `workers` at a time (in processes of their own when more than one), as they finish"
    if workers <= 1: yield from (run_one(p, mode, timeout, save, out) for p in paths); return
    n = len(paths)
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context('spawn')) as ex:
        yield from ex.map(run_one, paths, [mode]*n, [timeout]*n, [save]*n, [out]*n)

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('notebooks', nargs='*', help='notebooks to run (default: all of nbs/)')
    p.add_argument('--timeout', type=int, default=900, help='seconds a cell may take (default: 900)')
    g = p.add_mutually_exclusive_group()
    g.add_argument('--record', action='store_true', help='record each notebook\'s traffic into recordings/ (needs the server)')
    g.add_argument('--replay', action='store_true', help='run from recordings/, with no server')
    p.add_argument('--no-save', action='store_true', help='run without writing the notebooks back')
    p.add_argument('--out', help='write the notebooks run into this folder (made if needed) instead of back in nbs/')
    p.add_argument('--workers', type=int, default=1,
                   help='with --replay: notebooks run at once (live runs share one server, so they go one at a time)')
    a = p.parse_args(argv)
    mode = 'record' if a.record else 'replay' if a.replay else 'live'
    if a.workers > 1 and mode != 'replay': p.error('--workers needs --replay: live notebooks share one model server')
    if mode == 'replay': os.environ.pop('LISETTE_TEST_API_BASE', None)
    elif not os.environ.get('LISETTE_TEST_API_BASE'):
        print('run_nbs: no test server; run it as `lisette-llama run -- python tools/run_nbs.py`', file=sys.stderr)
        return 2
    os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')   # kernels inherit it: no price-table download
    if a.out: Path(a.out).mkdir(parents=True, exist_ok=True)
    failed,ran,t0 = [],0,time.monotonic()
    for path,secs,err in run_all(notebooks(a.notebooks), mode, a.timeout, not a.no_save, a.workers, a.out):
        if err is None:
            ran += 1
            print(f'[run_nbs] {path.relative_to(root)}: {"ran" if a.no_save else "saved"} ({mode}), {secs:.0f}s', flush=True)
        else:
            failed.append(path.name)
            print(f'[run_nbs] {path.relative_to(root)}: FAILED ({mode}), not written\n{err}', flush=True)
    print(f'[run_nbs] {mode}: {ran} of {ran + len(failed)} notebooks passed'
          f' in {time.monotonic() - t0:.0f}s' + (f', {a.workers} at a time' if a.workers > 1 else ''), flush=True)
    if failed: print(f'[run_nbs] failed: {" ".join(failed)}', file=sys.stderr)
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())
