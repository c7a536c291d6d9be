"""Measure what lisette's `Chat` costs on top of raw litellm, the openai SDK and raw httpx, against an instant server.

    python bench/overhead.py [--quick] [--chunks 2000] [--reps 5] [--only blocking,stream,tools] [--profile]

Cases, each in the OpenAI chat-completions format (`openai/...`, api_base `.../v1`) and the Anthropic Messages format
(`anthropic/...`, api_base the server root), all served by `bench/wire.py` from a child process:
- blocking: `Chat(model, api_base=..., api_key='x')('hi')` vs `litellm.completion` vs the openai SDK vs httpx.post + json.loads
- stream: a `--chunks`-chunk answer through `Chat(stream=True)`, through `StreamFormatter().format_stream`, vs raw
  `litellm.completion(stream=True)` vs the openai SDK stream vs httpx line streaming + json.loads per event.
  Two figures per chunk: `stream` is the whole stream's time over its chunks (the request's fixed cost included),
  `marginal` what one more chunk costs: the time of the long stream less that of a 10-chunk one, over the difference.
- tools: a 5-step tool loop (`Chat(tools=[add])(..., max_steps=5)`, the server calls `add` 4 times, then answers)
  vs the same 5 calls made by hand with `litellm.completion`
The variants of a case run in turn, their order alternating between repeats. The table gives medians over the repeats;
each ratio is the median of the repeats' own ratios, since variants run side by side in one repeat see the same machine.
Each figure is the CPU time of this process (`time.process_time`: the client's own work, every thread of it), which
the goals are judged on, and the wall time beside it. The server runs in another process on the same two cores, so
wall time also counts the waits for its bytes and whatever else the machine runs at that moment; on a shared 2-core
machine that moved raw httpx's wall figure by 40 % between runs, while the CPU figure moved far less.
`--profile` runs the OpenAI `Chat` stream once under cProfile and prints its top lisette/litellm entries.
"""
import os, json, time, argparse, statistics, cProfile, pstats
from importlib.metadata import version
os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')
import httpx, openai, litellm
from lisette.chat import Chat
from lisette.display import StreamFormatter
from wire import serve, oai_base, anth_base

litellm.suppress_debug_info = True
try: import anthropic
except ImportError: anthropic = None
OAI,ANTH = 'openai/gpt-4o-mini','anthropic/claude-sonnet-4-5'
MSGS = [{'role': 'user', 'content': 'hi'}]
ANTH_HDRS = {'x-api-key': 'x', 'anthropic-version': '2023-06-01'}

def add(a:int, b:int) -> int:
    "Add `a` and `b`"
    return a + b
ADD = {'type': 'function', 'function': {'name': 'add', 'description': 'Add `a` and `b`', 'parameters': {'type': 'object',
       'properties': {'a': {'type': 'integer'}, 'b': {'type': 'integer'}}, 'required': ['a', 'b']}}}

def litellm_default():
    "litellm as a user has it: with the per-chunk logging that `Chat` turns off while no callback listens"
    litellm.disable_streaming_logging = False
    return litellm

def settled(f):
    "`f`, then a wait until litellm's logging threads have done the work it gave them: it is `f`'s cost, not the next variant's"
    ex = litellm.litellm_core_utils.thread_pool_executor.executor
    def g():
        f()
        while ex._pending_slots._value < ex._max_pending_tasks: time.sleep(0.001)
    return g

def drain(it):
    "Consume iterator `it`"
    for _ in it: pass

def compare(fs:dict, reps:int, inner:int=1) -> dict:
    "Each repeat's (wall, CPU) seconds per call of each function in `fs`, run `inner` times a repeat, in alternating order"
    for f in fs.values(): f()                                   # warm up: clients, caches, imports
    ts = {k: [] for k in fs}
    for r in range(reps):
        for k in (list(fs) if r % 2 == 0 else list(fs)[::-1]):
            t,c = time.perf_counter(),time.process_time()
            for _ in range(inner): fs[k]()
            ts[k].append(((time.perf_counter() - t) / inner, (time.process_time() - c) / inner))
    return ts

def per(samples, scale=1e6, less=None, n=1) -> list:
    "Repeat by repeat (wall, CPU) `samples` in µs over `n`, less the same repeat's `less`"
    less = less or [(0, 0)]*len(samples)
    return [tuple((x - y)*scale/n for x,y in zip(a, b)) for a,b in zip(samples, less)]

def raw_fns(fmt, base, hx, stream):
    "The openai-SDK (if any) and raw-httpx functions for format `fmt` against `base`"
    if fmt == 'openai':
        body,url,hdrs = dict(model='gpt-4o-mini', messages=MSGS, temperature=0),base + '/chat/completions',{'authorization': 'Bearer x'}
        cli = openai.OpenAI(base_url=base, api_key='x')
        sdk = lambda: cli.chat.completions.create(**body, **(dict(stream=True, stream_options={'include_usage': True}) if stream else {}))
    else:
        body,url,hdrs = dict(model='claude-sonnet-4-5', max_tokens=4096, messages=MSGS, temperature=0),base + '/v1/messages',ANTH_HDRS
        cli = anthropic and anthropic.Anthropic(base_url=base, api_key='x')
        sdk = cli and (lambda: cli.messages.create(**body, stream=stream))
    if not stream: return (sdk, lambda: json.loads(hx.post(url, json=body, headers=hdrs).content))
    def raw():
        with hx.stream('POST', url, json=body | dict(stream=True), headers=hdrs) as r:
            for line in r.iter_lines():
                if line.startswith('data: ') and line != 'data: [DONE]': json.loads(line[6:])
    return (sdk and (lambda: drain(sdk())), raw)

def fmt_cases(fmt, url, a, hx) -> list:
    "Rows (case, format, variant, each repeat's (wall, CPU) µs, unit) of the cases for wire format `fmt`"
    model,base = (OAI, oai_base) if fmt == 'openai' else (ANTH, anth_base)
    b1,bn,rows = base(url, 5),base(url, a.chunks),[]
    lite = dict(model=model, messages=MSGS, api_key='x', temperature=0)
    if 'blocking' in a.only:
        sdk,raw = raw_fns(fmt, b1, hx, False)
        fs = {'Chat': lambda: Chat(model, api_base=b1, api_key='x')('hi'),
              'raw litellm': lambda: litellm.completion(**lite, api_base=b1),
              'openai SDK' if fmt == 'openai' else 'anthropic SDK': sdk, 'raw httpx+json': raw}
        rows += [('blocking', fmt, k, per(v), 'call') for k,v in compare({k:f for k,f in fs.items() if f}, a.reps, a.inner).items()]
    if 'stream' in a.only:
        def stream_fns(b):
            "The stream variants against api_base `b` (its path sets the number of chunks)"
            sdk,raw = raw_fns(fmt, b, hx, True)
            chat = lambda: Chat(model, api_base=b, api_key='x')('hi', stream=True)
            fs = {'Chat(stream=True)': lambda: drain(chat()), 'StreamFormatter': lambda: drain(StreamFormatter().format_stream(chat())),
                  'raw litellm': settled(lambda: drain(litellm_default().completion(**lite, api_base=b, stream=True, stream_options={'include_usage': True}))),
                  'openai SDK' if fmt == 'openai' else 'anthropic SDK': sdk, 'raw httpx+json': raw}
            return {k:f for k,f in fs.items() if f}
        long,short = stream_fns(bn),stream_fns(base(url, SHORT))
        both = lambda ks: {**{(k, a.chunks): long[k] for k in ks}, **{(k, SHORT): short[k] for k in ks}}
        # raw litellm is 300 times slower a chunk: its few repeats run apart, so the others can have many, side by side
        res = compare(both([k for k in long if k != 'raw litellm']), a.stream_reps) | compare(both(['raw litellm']), a.litellm_reps)
        rows += [('stream', fmt, k, per(res[k, a.chunks], n=a.chunks), 'chunk') for k in long]
        rows += [('marginal', fmt, k, per(res[k, a.chunks], less=res[k, SHORT], n=a.chunks - SHORT), 'chunk') for k in long]
    if 'tools' in a.only:
        bt = base(url, 5, 4)
        def by_hand():
            msgs = list(MSGS)
            for _ in range(5):
                m = litellm.completion(**(lite | dict(messages=msgs)), api_base=bt, tools=[ADD]).choices[0].message
                msgs.append({'role': 'assistant', 'content': m.content, 'tool_calls': [tc.model_dump() for tc in m.tool_calls or []]})
                if not m.tool_calls: break
                msgs += [{'role': 'tool', 'tool_call_id': tc.id, 'name': tc.function.name,
                          'content': str(add(**json.loads(tc.function.arguments)))} for tc in m.tool_calls]
        fs = {'Chat tool loop': lambda: Chat(model, api_base=bt, api_key='x', tools=[add])('hi', max_steps=5), 'raw litellm': by_hand}
        rows += [('tools', fmt, k, per(v), 'loop') for k,v in compare(fs, a.reps, max(1, a.inner // 4)).items()]
    return rows

SHORT = 10   # chunks of the short stream, whose time is the fixed cost of a streamed request
GOALS = {('blocking', 'Chat'): ('raw litellm', 1.05), ('stream', 'Chat(stream=True)'): ('raw httpx+json', 2.0),
         ('stream', 'StreamFormatter'): ('raw httpx+json', 2.0), ('marginal', 'Chat(stream=True)'): ('raw httpx+json', 2.0),
         ('marginal', 'StreamFormatter'): ('raw httpx+json', 2.0)}

def med(xs, i): return statistics.median(x[i] for x in xs)

def ratio(xs, base, i) -> float:
    "The median over repeats of each repeat's ratio of samples `xs` to `base` (`i`: 0 wall, 1 CPU); neighbours in time share the machine's mood"
    return statistics.median(x[i] / b[i] for x,b in zip(xs, base))

def report(rows):
    "Print the summary table (median CPU time of this process, and wall time), then each ratio next to its goal"
    us = {(c, f, v): xs for c,f,v,xs,_ in rows}
    rat = lambda xs, base, i: f"{ratio(xs, base, i):8.2f}x" if base else ' '*9
    print(f"\n{'case':9} {'format':9} {'variant':18} {'CPU µs per':>16} {'/ litellm':>10} {'/ httpx':>9} {'wall µs':>9} {'/ httpx':>9}")
    for c,f,v,xs,unit in rows:
        lite,hx = us.get((c, f, 'raw litellm')),us.get((c, f, 'raw httpx+json'))
        print(f"{c:9} {f:9} {v:18} {med(xs, 1):10.1f} {unit:>5} {rat(xs, lite, 1)} {rat(xs, hx, 1)} {med(xs, 0):9.1f} {rat(xs, hx, 0)}")
    print()
    for c,f,v,xs,_ in rows:
        if (g := GOALS.get((c, v))) and (c, f, g[0]) in us:
            base = us[(c, f, g[0])]
            rs = sorted(x[1] / b[1] for x,b in zip(xs, base))
            print(f"{f} {c}: {v} / {g[0]}: {ratio(xs, base, 1):.2f}x CPU (goal <= {g[1]}x; middle half of {len(rs)} repeats "
                  f"{rs[len(rs)//4]:.2f}x to {rs[(3*len(rs))//4]:.2f}x); "
                  f"wall {ratio(xs, base, 0):.2f}x")
        if c == 'tools' and v != 'raw litellm':
            base = us[(c, f, 'raw litellm')]
            print(f"{f} tools: {v} / raw litellm by hand: {ratio(xs, base, 1):.2f}x CPU; wall {ratio(xs, base, 0):.2f}x")

def profile(url, chunks):
    "Profile one OpenAI `Chat` stream of `chunks` chunks; print the top lisette/litellm entries by cumulative time"
    b = oai_base(url, chunks)
    drain(Chat(OAI, api_base=b, api_key='x')('hi', stream=True))
    pr = cProfile.Profile()
    pr.runcall(lambda: drain(Chat(OAI, api_base=b, api_key='x')('hi', stream=True)))
    pstats.Stats(pr).sort_stats('cumtime').print_stats(r'lisette/|litellm/', 25)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='few repeats, for a busy machine')
    ap.add_argument('--chunks', type=int, default=2000, help='chunks of the streamed answer')
    ap.add_argument('--reps', type=int, default=15, help='repeats of the blocking and tool cases')
    ap.add_argument('--inner', type=int, default=20, help='calls per repeat of the blocking case')
    ap.add_argument('--stream-reps', type=int, default=25, help='repeats of the stream case (one stream each)')
    ap.add_argument('--litellm-reps', type=int, default=3, help="repeats of raw litellm's stream (4 s each at 2000 chunks)")
    ap.add_argument('--formats', default='openai,anthropic')
    ap.add_argument('--only', default='blocking,stream,tools')
    ap.add_argument('--profile', action='store_true', help='also profile one OpenAI Chat stream')
    a = ap.parse_args()
    if a.quick: a.reps,a.inner,a.stream_reps,a.litellm_reps = 3,5,7,1
    print(f'litellm {version("litellm")}, openai {openai.__version__}, httpx {httpx.__version__}, anthropic SDK: '
          f'{anthropic.__version__ if anthropic else "not installed"}; {a.chunks} chunks a stream, {os.cpu_count()} cores')
    with serve() as url, httpx.Client() as hx:
        rows = []
        for fmt in a.formats.split(','):
            rows += fmt_cases(fmt, url, a, hx)
            print(f'{fmt}: done', flush=True)
        report(rows)
        if a.profile: profile(url, a.chunks)

if __name__ == '__main__': main()
