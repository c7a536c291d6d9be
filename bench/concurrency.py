"""Measure many concurrent `AsyncChat` calls against raw `litellm.acompletion`: throughput, CPU per chunk, peak RSS.

    python bench/concurrency.py [--quick] [--n 200] [--chunks 100] [--reps 5] [--formats openai,anthropic] [--gc freeze|default]

`--n` calls are started at once with `asyncio.gather`, against the instant server of `bench/wire.py` (a child
process), in four variants: `AsyncChat(model, api_base=..., api_key='x')('hi')` and raw `litellm.acompletion`, blocking
(a short answer) and streamed (`--chunks` chunks each, consumed to the end). Each variant runs in its own process,
so peak RSS and CPU time are its own; the variants run in turn, their order alternating between repeats, and the
figures are medians (the ratio of each repeat's pair is printed too: a 2-core machine shared with the server is noisy,
and one repeat can be 30 % off). CPU is the process's user+system time over the timed batch (after a warm-up batch of 10 calls).

The garbage collector is the largest source of that noise. `import litellm` leaves about 300,000 objects the GC
tracks, and a full collection walks them all: 250 to 320 ms here, which is 1.2 to 1.6 ms a call in a 200-call
batch. Python starts one after enough objects outlive the young generations, which 200 calls in flight do, so
whether a variant's batch gets one (and which variant) is luck. By default every variant calls `gc.freeze()`
after its warm-up, which leaves that import-time heap out of later collections (a full one then takes 20 to 80 ms),
so the figures measure the calls; `--gc default` leaves the GC alone. The `full GCs` column counts them.
"""
import os, sys, gc, json, time, asyncio, argparse, resource, statistics, subprocess
os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')
from wire import serve, oai_base, anth_base

MODELS = {'openai': ('openai/gpt-4o-mini', oai_base), 'anthropic': ('anthropic/claude-sonnet-4-5', anth_base)}
VARIANTS = ['AsyncChat blocking', 'litellm blocking', 'AsyncChat stream', 'litellm stream']

def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def _count_full_gcs() -> list:
    "A list that grows by one at the end of each full (generation 2) garbage collection"
    full = []
    gc.callbacks.append(lambda phase, info: phase == 'stop' and info['generation'] == 2 and full.append(1))
    return full

async def child(variant, url, fmt, n, chunks, freeze):
    "Run `n` concurrent calls of `variant`; wall and CPU seconds, peak RSS in MB, full garbage collections"
    import litellm
    from lisette.async_chat import AsyncChat
    litellm.suppress_debug_info = True
    model,base = MODELS[fmt]
    stream = variant.endswith('stream')
    b = base(url, chunks if stream else 5)
    kw = dict(model=model, messages=[{'role': 'user', 'content': 'hi'}], api_base=b, api_key='x', temperature=0)
    async def one():
        if variant == 'AsyncChat blocking': return await AsyncChat(model, api_base=b, api_key='x')('hi')
        if variant == 'litellm blocking': return await litellm.acompletion(**kw)
        g = await (AsyncChat(model, api_base=b, api_key='x')('hi', stream=True) if variant == 'AsyncChat stream' else
                   litellm.acompletion(**kw, stream=True, stream_options={'include_usage': True}))
        async for _ in g: pass
    await asyncio.gather(*(one() for _ in range(10)))
    if freeze: gc.freeze()     # the heap so far (litellm's import: ~300k objects) is left out of every later collection
    full = _count_full_gcs()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    c,t = _cpu(),time.perf_counter()
    await asyncio.gather(*(one() for _ in range(n)))
    wall,cpu = time.perf_counter() - t,_cpu() - c
    return dict(wall=wall, cpu=cpu, rss=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, rss0=rss0, full_gcs=len(full))

def run(variant, url, fmt, n, chunks, gcmode) -> dict:
    "One variant's figures, from a fresh process"
    cmd = [sys.executable, os.path.abspath(__file__), '--child', variant, '--url', url, '--formats', fmt, '--n', str(n),
           '--chunks', str(chunks), '--gc', gcmode]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--quick', action='store_true', help='one repeat of each and shorter streams, for a busy machine')
    ap.add_argument('--n', type=int, default=200, help='concurrent calls')
    ap.add_argument('--chunks', type=int, default=100, help='chunks per streamed call')
    ap.add_argument('--reps', type=int, default=5, help='repeats; one process per variant each, medians reported')
    ap.add_argument('--formats', default='openai', help='openai, anthropic, or both (comma-separated)')
    ap.add_argument('--gc', choices=['freeze', 'default'], default='freeze',
                    help="freeze: gc.freeze() after the warm-up, in every variant alike (see the docstring); default: leave the GC as it is")
    ap.add_argument('--child'); ap.add_argument('--url')
    a = ap.parse_args()
    if a.child: return print(json.dumps(asyncio.run(child(a.child, a.url, a.formats, a.n, a.chunks, a.gc == 'freeze'))))
    if a.quick: a.reps,a.chunks = 1,50
    print(f'{a.n} concurrent calls, {a.chunks} chunks a stream, {a.reps} repeat(s), {os.cpu_count()} cores, GC: {a.gc}', flush=True)
    res = {}
    with serve() as url:
        for r in range(a.reps):
            for fmt in a.formats.split(','):
                for v in (VARIANTS if r % 2 == 0 else VARIANTS[::-1]):
                    res.setdefault((fmt, v), []).append(run(v, url, fmt, a.n, a.chunks, a.gc))
            print(f'repeat {r+1}: done', flush=True)
    med = {k: {f: statistics.median(o[f] for o in rs) for f in rs[0]} for k,rs in res.items()}
    print(f"\n{'format':9} {'variant':19} {'calls/s':>8} {'CPU ms/call':>12} {'CPU s/1k chunks':>16} {'peak RSS MB':>12} {'(before)':>9} {'full GCs':>9}")
    for (fmt, v),m in med.items():
        per_k = f"{m['cpu'] / (a.n * a.chunks / 1000):16.3f}" if v.endswith('stream') else ' '*16
        print(f"{fmt:9} {v:19} {a.n / m['wall']:8.1f} {m['cpu'] / a.n * 1e3:12.2f} {per_k} {m['rss']:12.0f} {m['rss0']:9.0f} {m['full_gcs']:9.1f}")
    print()
    for fmt in a.formats.split(','):
        for kind in ('blocking', 'stream'):
            c,l = med[(fmt, f'AsyncChat {kind}')],med[(fmt, f'litellm {kind}')]
            rs = sorted(lr['wall'] / cr['wall'] for cr,lr in zip(res[(fmt, f'AsyncChat {kind}')], res[(fmt, f'litellm {kind}')]))
            print(f"{fmt} {kind}: AsyncChat / raw litellm throughput: {l['wall'] / c['wall']:.2f}x (goal >= 0.95x); "
                  f"CPU {c['cpu'] / l['cpu']:.2f}x; repeat by repeat {rs[0]:.2f}x to {rs[-1]:.2f}x")

if __name__ == '__main__': main()
