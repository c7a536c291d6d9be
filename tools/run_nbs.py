"""Run the notebooks in real Jupyter kernels against the local test server, and save them with their outputs.

    lisette-llama run -- python tools/run_nbs.py [nbs/03_chat.ipynb ...]

With no arguments every notebook in `nbs/` runs, in order, each in a fresh ipykernel driven by nbclient: the way
Jupyter itself runs a notebook, so a live display ends as its final state, not as a pile of updates. A notebook
that fails is not written. The saved notebooks are then cleaned by `nbdev_clean` (execution counts and metadata
go, outputs stay), so a second run on an unchanged tree leaves `git diff` empty: ids come from `patch_litellm`,
the server decodes greedily with its prompt cache off (`lisette.testing.LlamaServer`).
"""
import os, sys, time, argparse, subprocess
from pathlib import Path
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

root = Path(__file__).resolve().parent.parent
nbs = root/'nbs'

def notebooks(names) -> list:
    "The notebooks to run: `names`, or all of `nbs/` in order (the numbered ones, then index)."
    if names: return [Path(n).resolve() for n in names]
    return sorted(nbs.glob('[0-9]*.ipynb')) + [nbs/'index.ipynb']

def run(path:Path, timeout:int) -> float:
    "Execute notebook `path` in a fresh kernel and write it back with its outputs; the seconds it took."
    nb = nbformat.read(path, as_version=4)
    t = time.monotonic()
    NotebookClient(nb, timeout=timeout, kernel_name='python3', coalesce_streams=True,
                   resources={'metadata': {'path': str(nbs)}}).execute()
    nbformat.write(nb, path)
    subprocess.run(['nbdev_clean', '--fname', str(path)], check=True, cwd=root)
    return time.monotonic() - t

def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('notebooks', nargs='*', help='notebooks to run (default: all of nbs/)')
    p.add_argument('--timeout', type=int, default=900, help='seconds a cell may take (default: 900)')
    a = p.parse_args(argv)
    if not os.environ.get('LISETTE_TEST_API_BASE'):
        print('run_nbs: no test server; run it as `lisette-llama run -- python tools/run_nbs.py`', file=sys.stderr)
        return 2
    os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')   # kernels inherit it: no price-table download
    failed = []
    for path in notebooks(a.notebooks):
        try: print(f'[run_nbs] {path.relative_to(root)}: saved, {run(path, a.timeout):.0f}s', flush=True)
        except CellExecutionError as e:
            failed.append(path.name)
            print(f'[run_nbs] {path.relative_to(root)}: FAILED, not written\n{e}', flush=True)
    if failed: print(f'[run_nbs] failed: {" ".join(failed)}', file=sys.stderr)
    return 1 if failed else 0

if __name__ == '__main__': sys.exit(main())
