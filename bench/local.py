"""Benchmark the local backend: `Chat("local/...")` against raw transformers `generate()` and against `llama-server`.

    python bench/local.py [--model gemma3-270m] [--tokens 128] [--reps 3] [--no-cold] [--no-server] [--no-variants]

Every path decodes the same fixed number of tokens (`--tokens`, EOS ignored: `ignore_eos=True` through `Chat`,
and for raw `generate` the same `min_new_tokens` rule `Chat` hands it, `lisette.local.MinNewTokens`) from the same
prompt text (the one lisette builds), greedily, in one run with the repeats interleaved, their order alternating;
medians. Raw `generate` runs on the backend's `torch_thread`, as `Chat`'s does: a second thread running torch would
put both to OpenMP's slow wake-ups (see `nbs/06_local.ipynb`). Then:
- `llama-server` (the upstream binary `pip install -e '.[dev]'` builds) on the same GGUF, with as many threads as
  torch uses, over HTTP: the limit for CPU generation on this machine;
- the settings torch and transformers offer (the checkpoint's bf16 weights in plain transformers, and with the
  backend's fused norms, a static KV cache, float32, int8
  weight-only linear layers, with the plain output layer and with the backend's greedy one, with transformers'
  decoder layers and with the backend's lean one-token steps (its default, `LISETTE_LOCAL_WEIGHTS`), int8 dynamic
  quantisation), each
  timed on raw `generate`, with its greedy agreement with plain transformers' bf16: the share of tokens identical,
  where the first difference falls, and where it falls on four more prompts.
Load is measured cold (conversion into an empty temporary LISETTE_CACHE) and warm (from that cache).
"""
import os, copy, time, argparse, tempfile, shutil, statistics
os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')
import httpx
from transformers import LogitsProcessorList
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

def chat_run(name, n, stream=False):
    "Tokens and seconds for one `Chat` turn of exactly `n` tokens (streamed: consumed to the end)"
    chat = Chat(f'local/{name}', sp=SP)
    def go():
        if not stream: return chat(Q, max_tokens=n, ignore_eos=True)
        *_, r = chat(Q, max_tokens=n, ignore_eos=True, stream=True)
        return r
    r, dt = timed(go)
    return r.usage.completion_tokens, dt

def generate(model, ids, n, fast_head=True, lean=True, **kw):
    "Token ids of plain greedy `generate` of exactly `n` tokens, and its seconds; `fast_head`, `lean`: the backend's greedy output layer and lean layer steps"
    def go():
        with L.greedy_head(model, fast_head), L.lean_steps(model, lean):
            eos = LogitsProcessorList([L.MinNewTokens(model.generation_config.eos_token_id, n, ids['input_ids'].shape[1])])
            return timed(lambda: model.generate(**ids, max_new_tokens=n, logits_processor=eos, do_sample=False,
                                                temperature=None, top_p=None, top_k=None, **kw))
    out, dt = L.torch_thread.run(go)       # where the backend runs torch: one OpenMP team in the process
    return out[0, ids['input_ids'].shape[1]:].tolist(), dt

def agreement(a, b) -> str:
    "How far greedy outputs `a` and `b` agree: identical, or the share of equal tokens and the first difference"
    if a == b: return 'identical'
    first = next(i for i,(x,y) in enumerate(zip(a, b)) if x != y)
    return f'{sum(x == y for x,y in zip(a, b))/len(a):.0%} equal, first difference at token {first}'

def server_rate(srv, prompt, n):
    "Tokens, seconds over HTTP, and llama-server's own decode tok/s, for one completion of exactly `n` tokens"
    body = dict(prompt=prompt, n_predict=n, ignore_eos=True, temperature=0, cache_prompt=False)
    r, dt = timed(lambda: httpx.post(f'{srv.base}/completion', json=body, timeout=600).json())
    return r['tokens_predicted'], dt, r['timings']['predicted_per_second']

LABELS = dict(chat='chat', streamed='streamed', raw='raw generate', server='llama-server')

PROMPTS = ['Write a short story about a lighthouse keeper.', 'Explain how photosynthesis works.',
           'List five prime numbers and say why they are prime.', 'Translate "good morning" into Spanish, French and German.']

def variants(lm, name):
    "The generation settings to try on raw `generate`: name, model, extra `generate` arguments, lossy or not"
    import torch, warnings
    from transformers import AutoModelForCausalLM
    full = AutoModelForCausalLM.from_pretrained(L.resolve_local(name), dtype='auto').eval()
    f32 = copy.deepcopy(full).float()
    with warnings.catch_warnings():                                     # torch.ao's deprecation notices
        warnings.simplefilter('ignore')
        q8 = torch.ao.quantization.quantize_dynamic(copy.deepcopy(f32), {torch.nn.Linear}, dtype=torch.qint8)
    return [('bf16, plain transformers', full, {}, False),
            ('bf16 + fused norms (LISETTE_LOCAL_WEIGHTS=full)', L.fuse_norms(copy.deepcopy(full)), {}, False),
            ('bf16 + static KV cache', full, dict(cache_implementation='static'), False),
            ('float32', f32, {}, True),
            ("int8 weight-only linear, plain output layer, transformers' layer steps", lm.model, dict(fast_head=False, lean=False), True),
            ("int8 + greedy output layer, transformers' layer steps", lm.model, dict(lean=False), True),
            (f'int8 + greedy output layer + lean layer steps (backend: {lm.weights})', lm.model, {}, True),
            ('int8 dynamic linear, int8 activations too', q8, {}, True)]

def agree_many(lm, base, model, n=64, base_kw={}, **kw) -> str:
    "Greedy agreement of `model` with `base` on each of `PROMPTS`: the first differing token of each (`=` if none)"
    firsts = []
    for q in PROMPTS:
        ids = lm.tok(L.build_prompt(lm.tok, [dict(role='user', content=q)])[0], return_tensors='pt')
        a, b = generate(base, ids, n, **base_kw)[0], generate(model, ids, n, **kw)[0]
        firsts.append(next((str(i) for i,(x,y) in enumerate(zip(a, b)) if x != y), '='))
    return f"first difference in {n} tokens on {len(PROMPTS)} more prompts: {', '.join(firsts)}"

def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--model', default=L.DEFAULT_LOCAL)
    p.add_argument('--tokens', type=int, default=128, help='tokens each path decodes, EOS ignored')
    p.add_argument('--reps', type=int, default=3)
    p.add_argument('--no-cold', action='store_true', help='skip the cold-load measurement (it converts from scratch)')
    p.add_argument('--no-server', action='store_true', help='skip llama-server')
    p.add_argument('--no-variants', action='store_true', help='skip the generation-settings table')
    a = p.parse_args()
    import torch, litellm
    litellm.suppress_debug_info = True
    n = a.tokens
    lm = L.load_local(a.model)
    print(f'torch {torch.__version__}, threads {torch.get_num_threads()}, model {a.model} ({next(lm.model.parameters()).dtype}, '
          f'linear weights {lm.weights}, output layer {type(lm.model.lm_head).__name__} (greedy pass on), lean layer steps on, attention {lm.model.config._attn_implementation}, dynamic KV cache)')
    if not a.no_cold:
        cold, warm, first = load_times(a.model)
        print(f'load: cold (convert+load) {cold:.1f}s, first answer after that {first:.1f}s, warm (cached) {warm:.1f}s')
        lm = L.load_local(a.model)
    prompt, _ = L.build_prompt(lm.tok, [dict(role='system', content=SP), dict(role='user', content=Q)])
    ids = lm.tok(prompt, return_tensors='pt')
    srv = None
    if not a.no_server:
        from lisette.testing import LlamaServer
        srv = LlamaServer(threads=torch.get_num_threads()).start()
        server_rate(srv, prompt, 8)                                    # load the model's pages
    chat_run(a.model, 4); generate(lm.model, ids, 4)                   # warm up both paths
    def raw_run(n): toks, dt = generate(lm.model, ids, n); return len(toks), dt
    paths = dict(chat=lambda: chat_run(a.model, n), streamed=lambda: chat_run(a.model, n, stream=True), raw=lambda: raw_run(n))
    if srv: paths['server'] = lambda: server_rate(srv, prompt, n)
    rows = {k: [] for k in paths}
    try:
        for rep in range(a.reps):
            ks = list(paths)[::-1] if rep % 2 else list(paths)      # the order alternates: no path always runs after the same one
            got = {k: paths[k]() for k in ks}
            for k,(toks, dt, *_) in got.items(): rows[k].append(toks / dt)
            print(f'  order {", ".join(ks)}: ' + ' | '.join(f'{LABELS[k]} {got[k][0]} tok {got[k][0]/got[k][1]:.1f} tok/s'
                  + (f' (decode alone {got[k][2]:.1f})' if k == 'server' else '') for k in paths))
    finally:
        if srv: srv.stop()
    med = {k: statistics.median(v) for k,v in rows.items() if v}
    c, st, r = med['chat'], med['streamed'], med['raw']
    print(f'\nmedian tok/s over {n} tokens: Chat {c:.1f}, Chat streamed {st:.1f}, raw generate {r:.1f}'
          + (f", llama-server {med['server']:.1f}" if 'server' in med else ''))
    print(f'Chat / raw generate: {c/r:.3f} (goal >= 0.95); streamed / raw: {st/r:.3f}')
    if 'server' in med: print(f"Chat / llama-server: {c/med['server']:.3f} (goal >= 0.5)")
    if a.no_variants: return
    print(f'\ngeneration settings on raw generate, {n} tokens, median of {a.reps}:')
    base = None
    for name, model, kw, lossy in (vs := L.torch_thread.run(lambda: variants(lm, a.model))):
        generate(model, ids, 4, **kw)                                  # warm up (a static cache is built here)
        runs = [generate(model, ids, n, **kw) for _ in range(a.reps)]
        toks, rate = runs[0][0], statistics.median(len(t) / d for t,d in runs)
        base = base or (toks, rate)
        kind = 'lossy' if lossy else 'exact' if toks == base[0] else 'not lossy, rounds differently'
        print(f'  {name:68} {rate:6.1f} tok/s  {rate/base[1]:5.2f}x  {kind}: {agreement(base[0], toks)}')
        if model is not vs[0][1]: print(f'  {"":68} {agree_many(lm, vs[0][1], model, **kw)}')
        if kw.get('fast_head') is False: plain = toks
        elif model is lm.model:
            print(f'  {"":68} against the plain int8 row: {agreement(plain, toks)}; '
                  f'{agree_many(lm, model, model, base_kw=dict(fast_head=False, lean=False), **kw)}')

if __name__ == '__main__': main()
