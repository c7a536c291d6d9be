"""Throughput of one batch against one `llama-server`, and against two behind a `litellm.Router`.

    python bench/scale.py [--n 32] [--max-tokens 16] [--concurrency 8] [--reps 2]

The same `run_batch` of `--n` short chats (`--max-tokens` output tokens each, `--concurrency` in flight) runs over
a Router of one deployment, then of two; every server is a one-thread `llama-server` started here on 127.0.0.1 and
stopped by PID. The two setups alternate between repeats, and the figures are medians: chats per second, output
tokens per second, and the client process's CPU seconds. On this project's 2-core machines the servers, the
client and anything else running share the same two cores: see `nbs/21_scale.ipynb` for what the figures can and
cannot predict.
"""
import os, time, random, argparse, resource, statistics
os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')
import litellm
from lisette.testing import LlamaServer
from lisette.async_chat import AsyncChat
from lisette.batch import run_batch

def _cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime

def router(servers):
    "A Router of one deployment per server, in model group `gemma`."
    return litellm.Router(model_list=[dict(model_name='gemma', model_info=dict(id=f'srv{i}'),
        litellm_params=dict(model='openai/gemma3-270m', api_base=f'{s.base}/v1', api_key='sk-local'))
        for i,s in enumerate(servers)], num_retries=2, retry_after=0)

def batch(r, n, max_tokens, concurrency) -> dict:
    "Run `n` chats over router `r`; wall seconds, output tokens, client CPU seconds."
    items = [f'User: Name a colour, number {i}.' for i in range(n)]
    c,t = _cpu(),time.perf_counter()
    res = run_batch(items, lambda it: AsyncChat('gemma', router=r, max_tokens=max_tokens), concurrency=concurrency, progress=False)
    wall,cpu = time.perf_counter() - t,_cpu() - c
    if not all(x.ok for x in res): raise RuntimeError([x.error for x in res if not x.ok][:3])
    return dict(wall=wall, out=sum(x.use.output for x in res), cpu=cpu)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--n', type=int, default=32)
    ap.add_argument('--max-tokens', type=int, default=16)
    ap.add_argument('--concurrency', type=int, default=8)
    ap.add_argument('--reps', type=int, default=2)
    a = ap.parse_args()
    random.seed(0)
    print(f'{a.n} chats of {a.max_tokens} output tokens, {a.concurrency} in flight, {a.reps} repeat(s), {os.cpu_count()} cores', flush=True)
    servers = [LlamaServer(threads=1).start() for _ in range(2)]
    try:
        rs = {1: router(servers[:1]), 2: router(servers)}
        batch(rs[2], 4, a.max_tokens, 4)   # warm up both servers and the client
        res = {}
        for rep in range(a.reps):
            for k in ((1, 2) if rep % 2 == 0 else (2, 1)): res.setdefault(k, []).append(batch(rs[k], a.n, a.max_tokens, a.concurrency))
    finally:
        for s in servers: s.stop()
    print(f"\n{'servers':>7} {'chats/s':>8} {'tokens/s':>9} {'client CPU s':>13}")
    med = {k: {f: statistics.median(o[f] for o in v) for f in v[0]} for k,v in res.items()}
    for k,m in sorted(med.items()): print(f"{k:>7} {a.n/m['wall']:8.2f} {m['out']/m['wall']:9.1f} {m['cpu']:13.2f}")
    print(f"\ntwo servers / one: {med[1]['wall']/med[2]['wall']:.2f}x the chats per second")

if __name__ == '__main__': main()
