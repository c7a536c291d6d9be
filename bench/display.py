"""Benchmark the live display's cost in a real Jupyter kernel: updates and bytes over the kernel's socket, before and after the throttle.

    python bench/display.py [--chunks 2000] [--reps 3]

A notebook run by nbclient in a fresh ipykernel streams synthetic `ModelResponseStream` chunks (a word each, one every
1-2 ms, like a fast model; then the complete `ModelResponse`) through `display_stream`, in two ways side by side:
BEFORE, an update on every chunk (the old behaviour: `_Live(min_gap=0, budget=inf)`), and AFTER, the default `_Live`.
Runs are interleaved (B A, A B, ...) and the figures are medians. Bytes are whole iopub messages (`display_data` and
`update_display_data`) as the kernel's session packs them; the goal (issue 7) is at most 30x the final markdown.

Scenarios: a plain answer; a tool-loop turn (half the chunks, a tool call shown pending, its result, the other half);
and a slow model (20 chunks/s) on a simulated clock: a long, slow answer, where a time-based throttle alone would bring
back the quadratic cost and `_Live`'s byte budget (12x what it shows) is what holds. Needs no model server.
"""
import os, sys, json, argparse, textwrap, statistics
os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')
import nbformat
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'tools'))
from kernel_recorder import Recorder, wire_bytes

IMPORTS = """\
import time, json, types
import lisette.display as D
from litellm import ModelResponse
from litellm.types.utils import ModelResponseStream, StreamingChoices, Delta, Choices, Message"""

SETUP = """\
WORDS = ("The live display sends the markdown of the whole answer again on each update, so when it updates on every "
         "chunk its cost grows with the square of the answer's length. Throttled, it sends far less.").split()
def words(n, start=0): return [WORDS[i % len(WORDS)] + ('\\n\\n' if i % 50 == 49 else ' ') for i in range(start, start+n)]
def chunk(s): return ModelResponseStream(id='chatcmpl-bench', model='bench', choices=[StreamingChoices(delta=Delta(content=s))])
def response(text, tcs=None):
    m = Message(content=text, tool_calls=tcs)
    return ModelResponse(id='chatcmpl-bench', model='bench', choices=[Choices(message=m, finish_reason='tool_calls' if tcs else 'stop')])

def answer(n):
    "`n` chunks of one word each, then the complete response."
    ws = words(n)
    return [chunk(w) for w in ws] + [response(''.join(ws))]

def tool_turn(n):
    "A tool-loop turn of `n` chunks: text, a response calling `add`, the tool's result, more text, the final response."
    a,b = words(n//2), words(n - n//2, n//2)
    tc = {'id':'call_bench', 'type':'function', 'function':{'name':'add', 'arguments':'{"a": 12, "b": 30}'}}
    tr = {'tool_call_id':'call_bench', 'role':'tool', 'name':'add', 'content':'42'}
    return [chunk(w) for w in a] + [response(''.join(a), [tc]), tr] + [chunk(w) for w in b] + [response(''.join(b))]

class SimClock:
    "Stands in for the `time` module in `lisette.display`: the stream advances it instead of sleeping."
    def __init__(self): self.t = 1000.
    def monotonic(self): return self.t

def paced(items, gaps, clock=None):
    "Yield `items` with `gaps` seconds between them in turn: slept, or added to `clock`."
    for i,o in enumerate(items):
        if clock: clock.t += gaps[i % len(gaps)]
        else: time.sleep(gaps[i % len(gaps)])
        yield o

def show(items, before, gaps, sim=False):
    "Stream `items` through `display_stream`: an update per chunk if `before`, else the default throttle; prints seconds."
    live,tm,clock = D._live,D.time,(SimClock() if sim else None)
    if before: D._live = lambda: D._Live(min_gap=0, budget=float('inf'))
    if sim: D.time = clock
    t0 = time.perf_counter()
    try: fmt = D.display_stream(paced(items, gaps, clock))
    finally: D._live,D.time = live,tm
    print(json.dumps(dict(secs=time.perf_counter() - t0, outp=fmt.outp)))"""

SCENARIOS = {  # name: (builder, gaps between chunks in s, simulated clock)
    'answer, 1-2 ms a chunk':       ('answer', (0.001, 0.002), False),
    'tool loop, 1-2 ms a chunk':    ('tool_turn', (0.001, 0.002), False),
    'slow model, 50 ms (sim. clock)': ('answer', (0.05,), True),
}

def notebook(n, reps):
    "The cells, and for each (scenario, mode) the indices of its run cells; modes alternate order on each repeat."
    cells, runs = [IMPORTS, SETUP] + [f"items_{b} = {b}({n})" for b in ('answer', 'tool_turn')], {}
    for rep in range(reps):
        for name,(b,gaps,sim) in SCENARIOS.items():
            for mode in (('before', 'after') if rep % 2 == 0 else ('after', 'before')):
                runs.setdefault((name, mode), []).append(len(cells))
                cells.append(f"show(items_{b}, before={mode == 'before'}, gaps={gaps!r}, sim={sim})")
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), runs

def measure(c, i) -> dict:
    "Updates, wire and markdown bytes, final markdown, and seconds of the run in cell `i`."
    ms = c.msgs[i]
    if errs := [m['content'] for m in ms if m['msg_type'] == 'error']: sys.exit(f"cell {i} failed: {errs[0]['ename']}: {errs[0]['evalue']}")
    disp = [m for m in ms if m['msg_type'] in ('display_data', 'update_display_data')]
    ups = [m['content']['data']['text/markdown'] for m in disp if m['msg_type'] == 'update_display_data']
    out = json.loads(''.join(m['content']['text'] for m in ms if m['msg_type'] == 'stream' and m['content']['name'] == 'stdout'))
    return dict(updates=len(ups), wire=sum(m['wire_bytes'] for m in disp), md=sum(len(u.encode()) for u in ups),
                final=ups[-1], same=ups[-1] == out['outp'], secs=out['secs'])

def kb(b): return f"{b/1e6:.1f} MB" if b >= 1e6 else f"{b/1e3:.0f} KB" if b >= 1e4 else f"{b/1e3:.1f} KB"

def report(res, n, reps):
    print(f"lisette display: {n:,}-chunk streams through display_stream in a real kernel (nbclient + ipykernel), "
          f"median of {reps} interleaved runs")
    print("bytes: the display's messages on the kernel's iopub socket; x: bytes / final markdown bytes; "
          "secs: the display_stream call, pacing included\n")
    side = f"{'updates':>8}{'bytes':>9}{'x':>9}{'secs':>6}"
    head = f"{'scenario':31}{'final md':>9} | BEFORE{side} | AFTER{side} | goal <= 30x"
    print(head); print('-' * len(head))
    for name in SCENARIOS:
        b,a = res[name, 'before'], res[name, 'after']
        fb = len(a[0]['final'].encode())
        def med(rs, k): return statistics.median(r[k] for r in rs)
        def cols(rs): return f"{med(rs, 'updates'):>8,.0f}{kb(med(rs, 'wire')):>9}{med(rs, 'wire')/fb:>8,.1f}x{med(rs, 'secs'):>6.2f}"
        print(f"{name:31}{kb(fb):>9} | {'':6}{cols(b)} | {'':5}{cols(a)} | {'met' if med(a, 'wire') <= 30*fb else 'MISSED'}")
    print(f"\nmarkdown alone (the text/markdown the updates carry), x final markdown, BEFORE -> AFTER:")
    for name in SCENARIOS:
        b,a = res[name, 'before'], res[name, 'after']
        fb = len(a[0]['final'].encode())
        print(f"  {name:32}{statistics.median(r['md'] for r in b)/fb:>8.1f}x -> {statistics.median(r['md'] for r in a)/fb:.1f}x")
    same = all(r['same'] and r['final'] == res[name, 'after'][0]['final'] for (name,_),rs in res.items() for r in rs)
    print(f"\nfinal display the formatter's output, and the same BEFORE and AFTER, in every run: {'yes' if same else 'NO'}")
    print("for reference, issue 7 measured BEFORE on a real 2 KB tool-loop answer: 130 updates, 254 KB (~125x)")

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--chunks', type=int, default=2000)
    p.add_argument('--reps', type=int, default=3)
    args = p.parse_args()
    nb, runs = notebook(args.chunks, args.reps)
    c = Recorder(nb, kernel_name='python3', timeout=600)
    c.execute(env={**os.environ, 'LITELLM_LOCAL_MODEL_COST_MAP': 'True'})
    report({k: [measure(c, i) for i in idx] for k,idx in runs.items()}, args.chunks, args.reps)

if __name__ == '__main__': main()
