"""Benchmark the local backend: `Chat("local/...")` tokens/s against raw transformers `generate()`, plus load times.

    python bench/local.py [--model gemma3-270m] [--max-tokens 64] [--reps 3]

Both paths run the same model object, the same prompt text (the one lisette builds) and greedy decoding, in the
same process. The raw path generates exactly as many tokens as the Chat path did, so prefill is amortised alike.
Load is measured cold (conversion into an empty temporary LISETTE_CACHE) and warm (from that cache).
"""
import os, sys, time, argparse, tempfile, shutil, statistics
os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')
import litellm
litellm.suppress_debug_info = True
import lisette.local as L
from lisette.chat import Chat

Q = 'Count from 1 to 100, separated by commas.'
SP = 'The Assistant writes long, detailed answers.'

def timed(f):
    t = time.perf_counter(); r = f(); return r, time.perf_counter() - t

def load_times(name):
    "Cold (convert + load) and warm (cached) load seconds, and the first answer's seconds, in a temp cache"
    old, tmp = os.environ.get('LISETTE_CACHE'), tempfile.mkdtemp(prefix='lisette-bench-')
    os.environ['LISETTE_CACHE'] = tmp
    try:
        L._models.pop(name, None)
        _, cold = timed(lambda: L.load_local(name))
        _, first = timed(lambda: Chat(f'local/{name}')('Hi!', max_tokens=8))
        L._models.pop(name, None)
        _, warm = timed(lambda: L.load_local(name))
        return cold, warm, first
    finally:
        if old is None: del os.environ['LISETTE_CACHE']
        else: os.environ['LISETTE_CACHE'] = old
        L._models.pop(name, None); shutil.rmtree(tmp, ignore_errors=True)

def chat_run(name, n):
    "Tokens and seconds for one Chat turn"
    r, dt = timed(lambda: Chat(f'local/{name}', sp=SP)(Q, max_tokens=n))
    return r.usage.completion_tokens, dt

def chat_stream_run(name, n):
    "Tokens and seconds for one streamed Chat turn, consumed to the end"
    t = time.perf_counter()
    *_, r = Chat(f'local/{name}', sp=SP)(Q, max_tokens=n, stream=True)
    return r.usage.completion_tokens, time.perf_counter() - t

def raw_run(lm, prompt, n):
    "Tokens and seconds for plain `generate` of exactly `n` tokens"
    ids = lm.tok(prompt, return_tensors='pt')
    out, dt = timed(lambda: lm.model.generate(**ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                                              temperature=None, top_p=None, top_k=None))
    return out.shape[1] - ids['input_ids'].shape[1], dt

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=L.DEFAULT_LOCAL)
    p.add_argument('--max-tokens', type=int, default=64)
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--no-cold', action='store_true', help='skip the cold-load measurement (it converts from scratch)')
    a = p.parse_args()
    import torch
    print(f'torch {torch.__version__}, threads {torch.get_num_threads()}, model {a.model}')
    if not a.no_cold:
        cold, warm, first = load_times(a.model)
        print(f'load: cold (convert+load) {cold:.1f}s, first answer after that {first:.1f}s, warm (cached) {warm:.1f}s')
    lm = L.load_local(a.model)
    prompt, _ = L.build_prompt(lm.tok, [dict(role='system', content=SP), dict(role='user', content=Q)])
    chat_run(a.model, 4); raw_run(lm, prompt, 4)                      # warm up both paths
    cs, ss, rs = [], [], []
    for _ in range(a.reps):
        n, dt = chat_run(a.model, a.max_tokens); cs.append(n / dt)
        k, dt3 = chat_stream_run(a.model, a.max_tokens); ss.append(k / dt3)
        m, dt2 = raw_run(lm, prompt, n); rs.append(m / dt2)
        print(f'  chat {n} tok in {dt:.2f}s = {n/dt:.1f} tok/s | streamed {k} tok = {k/dt3:.1f} tok/s | raw {m} tok in {dt2:.2f}s = {m/dt2:.1f} tok/s')
    c, st, r = statistics.median(cs), statistics.median(ss), statistics.median(rs)
    print(f'median: lisette Chat {c:.1f} tok/s, raw generate {r:.1f} tok/s, ratio {c/r:.3f} (goal >= 0.95)')
    print(f'median: lisette Chat streamed {st:.1f} tok/s, ratio {st/r:.3f} (generation on a second thread, see nbs/06_local)')

if __name__ == '__main__': main()
