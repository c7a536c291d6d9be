"Tests of the local backend that notebooks show badly: concurrency, cache damage, dying threads, Chat tool loops"
import os, json, time, shutil, signal, asyncio, threading, subprocess, sys
from pathlib import Path
import pytest

os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')
import litellm
import lisette.local as L

litellm.suppress_debug_info = True
L.register_local()  # importing lisette.local registers nothing by itself
MSGS = [dict(role='user', content='What is the capital of France?')]

@pytest.fixture(scope='module')
def lm(): return L.load_local()

# --- concurrency ---------------------------------------------------------------------------------------------

def test_concurrent_calls_are_serialised(lm):
    "Two threads calling at once get the same greedy answer, and generations never overlap"
    active, overlap, orig = [0], [False], lm.model.generate
    def gen(*a, **kw):
        active[0] += 1
        overlap[0] |= active[0] > 1
        try: return orig(*a, **kw)
        finally: active[0] -= 1
    lm.model.generate = gen
    try:
        res = [None, None]
        def call(i): res[i] = litellm.completion('local/gemma3-270m', messages=MSGS, max_tokens=8).choices[0].message.content
        ths = [threading.Thread(target=call, args=(i,)) for i in range(2)]
        for t in ths: t.start()
        for t in ths: t.join(120)
    finally: del lm.model.generate
    assert not overlap[0]
    assert res[0] == res[1] and res[0]
    assert not lm.lock.locked()

def test_async_concurrent_calls(lm):
    "Concurrent async calls run one after another without blocking the loop"
    async def go():
        ticks = []
        async def ticker():
            for _ in range(10): ticks.append(time.time()); await asyncio.sleep(0.05)
        rs = await asyncio.gather(*[litellm.acompletion('local/gemma3-270m', messages=MSGS, max_tokens=6) for _ in range(2)], ticker())
        return rs, ticks
    rs, ticks = asyncio.run(go())
    assert rs[0].choices[0].message.content == rs[1].choices[0].message.content
    assert len(ticks) == 10 and max(b - a for a, b in zip(ticks, ticks[1:])) < 1.0

def test_second_load_is_cached(lm):
    assert L.load_local() is lm and L.load_local('gemma3-270m') is lm

def test_weights_int8_by_default_full_on_request(lm, monkeypatch):
    "The default model stores its linear layers as int8; LISETTE_LOCAL_WEIGHTS=full loads the checkpoint's bf16 ones"
    import torch
    assert lm.weights == 'int8' and not any(isinstance(m, torch.nn.Linear) for m in lm.model.modules())
    monkeypatch.delitem(L._models, 'gemma3-270m')                   # put back when the test ends
    monkeypatch.setenv('LISETTE_LOCAL_WEIGHTS', 'full')
    full = L.load_local()
    assert full is not lm and repr(full) == "LocalModel('gemma3-270m', weights='full')"
    assert isinstance(full.model.lm_head, torch.nn.Linear) and full.model.lm_head.weight.dtype == torch.bfloat16
    ids = lm.tok('The capital of France is', return_tensors='pt')
    kw = dict(max_new_tokens=6, min_new_tokens=6, do_sample=False, temperature=None, top_p=None, top_k=None)
    a, b = (m.model.generate(**ids, **kw)[0].tolist() for m in (lm, full))
    assert len(a) == len(b) == ids['input_ids'].shape[1] + 6     # both generate; their greedy texts may part

def test_fast_output_layer_only_while_greedy(lm, monkeypatch):
    "The output layer's fast pass is on for the length of a greedy generation, off for a sampled one and afterwards"
    seen, orig = [], lm.model.generate
    def gen(*a, **kw):
        seen.append(lm.model.lm_head.greedy); return orig(*a, **kw)
    monkeypatch.setattr(lm.model, 'generate', gen)
    for opts in (dict(max_tokens=3), dict(max_tokens=3, temperature=0.7)):
        litellm.completion('local/gemma3-270m', messages=MSGS, **opts)
        list(L.LocalRun(lm, 'Hello', L.gen_kwargs(opts, lm.tok)))
    assert seen == [True, True, False, False] and lm.model.lm_head.greedy is False

def test_ignore_eos_keeps_every_end_token_suppressed_and_exact(lm, monkeypatch):
    """`ignore_eos` hands generate lisette's `MinNewTokens`, not transformers' `min_new_tokens`, and the greedy output layer
    keeps one exact logit more than there are end tokens, so the best token that is not one is the exact layer's"""
    seen, orig = [], lm.model.generate
    def gen(*a, **kw):
        seen.append((lm.model.lm_head.keep, 'min_new_tokens' in kw, [type(p).__name__ for p in kw.get('logits_processor') or []]))
        return orig(*a, **kw)
    monkeypatch.setattr(lm.model, 'generate', gen)
    for extra in ({}, dict(eos_token_id=[1, 106])):
        run = L.LocalRun(lm, L.dialogue_prompt(MSGS), L.gen_kwargs(dict(max_tokens=5, ignore_eos=True), lm.tok) | extra)
        run.blocking()
        assert run.n_gen == 5
    run = L.LocalRun(lm, 'Hello', L.gen_kwargs(dict(max_tokens=2), lm.tok)); run.blocking()
    assert seen == [(2, False, ['MinNewTokens']), (3, False, ['MinNewTokens']), (2, False, [])]
    assert lm.model.lm_head.keep == 2

def _steps(lm, ids, on, n=6):
    "Greedy tokens and every step's logits (exact output layer) of `generate`, the lean layer steps on or off"
    def go():
        with L.lean_steps(lm.model, on):
            return lm.model.generate(**ids, max_new_tokens=n, min_new_tokens=n, do_sample=False, temperature=None, top_p=None,
                                     top_k=None, output_logits=True, return_dict_in_generate=True, pad_token_id=0)
    return L.torch_thread.run(go)

def _same(on, off) -> bool:
    "Do two `_steps` runs have the same tokens and bit-identical logits at every step?"
    import torch
    return torch.equal(on.sequences, off.sequences) and all(torch.equal(a, b) for a, b in zip(on.logits, off.logits))

def _gap(on, off) -> float:
    "The largest logit gap of two `_steps` runs of one prompt, over the steps before their tokens part"
    new = len(on.logits)
    first = next((i for i in range(new) if on.sequences[0, -new+i] != off.sequences[0, -new+i]), new - 1)
    return max((a.float() - b.float()).abs().max().item() for a, b in zip(on.logits[:first+1], off.logits[:first+1]))

def test_lean_steps_close_past_the_sliding_window(lm):
    "Decoding after more tokens than the sliding window (whose layers then get a mask), lean steps move no logit far"
    window = lm.model.config.sliding_window
    ids = lm.tok('The river runs past the old mill, and the miller counts the sacks. ' * (window // 14), return_tensors='pt')
    assert ids['input_ids'].shape[1] > window + 8
    assert 0 < _gap(_steps(lm, ids, True), _steps(lm, ids, False)) <= 1

def test_packed_attention_within_a_bf16_step(lm):
    "A lean step's packed attention call against transformers' grouped one: within a bf16 step of each head's largest output"
    import torch
    sdpa = torch.nn.functional.scaled_dot_product_attention
    step = next(m.__dict__['_lean'] for m in lm.model.modules() if '_lean' in m.__dict__)
    def check():
        for t in [1, 2, 7, 64, 255, 256, 257, 511, 512, 513, 700, 1024, 1500]:
            g = torch.Generator().manual_seed(t)
            q, k, v = (torch.randn(1, h, n, step.d, generator=g).bfloat16() * 3 for h, n in ((step.nq, 1), (step.nkv, t), (step.nkv, t)))
            for mask in (None, (torch.arange(t) >= t - 512).view(1, 1, 1, t)):
                a = sdpa(q, k, v, attn_mask=mask, scale=step.a.scaling, enable_gqa=True).float()
                b = step._attend(q, k, v, mask).reshape(a.shape).float()
                top = a.abs().amax(-1)
                step_at = torch.ldexp(torch.ones_like(top), torch.frexp(top).exponent - 8)     # the bf16 step at `top`
                assert ((a - b).abs().amax(-1) <= step_at).all(), (t, mask is None)
    L.torch_thread.run(check)      # torch on the backend's thread, as everywhere here

def test_lean_steps_leave_a_padded_batch_to_transformers(lm):
    "A batch (two prompts, one padded) is not one token: the layers' own forward runs it, with the same result"
    side, lm.tok.padding_side = lm.tok.padding_side, 'left'
    try: ids = lm.tok(['Hello there, how are', 'Count from one to five:'], return_tensors='pt', padding=True)
    finally: lm.tok.padding_side = side
    on, off = _steps(lm, ids, True), _steps(lm, ids, False)
    assert on.sequences.shape == (2, ids['input_ids'].shape[1] + 6)
    assert _same(on, off)

def test_fast_output_layer_error_turns_it_off(lm, monkeypatch):
    "A generation that fails still leaves the fast pass off"
    def boom(*a, **kw): raise RuntimeError('boom')
    monkeypatch.setattr(lm.model, 'generate', boom)
    with pytest.raises(RuntimeError, match='boom'): L.LocalRun(lm, 'Hello', L.gen_kwargs(dict(max_tokens=3))).blocking()
    assert lm.model.lm_head.greedy is False

def test_all_generation_runs_on_the_torch_thread(lm, monkeypatch):
    "Blocking, streamed and async calls, and the model's load, all run torch on the one `lisette-torch` thread"
    seen, orig = [], lm.model.generate
    def gen(*a, **kw):
        seen.append(threading.current_thread().name); return orig(*a, **kw)
    monkeypatch.setattr(lm.model, 'generate', gen)
    litellm.completion('local/gemma3-270m', messages=MSGS, max_tokens=3)
    list(litellm.completion('local/gemma3-270m', messages=MSGS, max_tokens=3, stream=True))
    asyncio.run(litellm.acompletion('local/gemma3-270m', messages=MSGS, max_tokens=3))
    assert seen == ['lisette-torch'] * 3
    assert L.torch_thread.th.name == 'lisette-torch' and L.torch_thread.th.daemon

def test_ctrl_c_in_a_blocking_call_stops_the_generation(lm):
    "SIGINT while a blocking call waits on the torch thread: KeyboardInterrupt, the run cancelled, the model free"
    run = L.LocalRun(lm, L.dialogue_prompt(MSGS), L.gen_kwargs(dict(max_tokens=400, ignore_eos=True)))
    started = threading.Event()
    orig = run._generate
    def gen(crit, **kw):
        started.set(); return orig(crit, **kw)
    run._generate = gen
    def interrupt():
        started.wait(30)
        while run.n_gen < 2: time.sleep(0.01)                   # generation under way
        os.kill(os.getpid(), signal.SIGINT)
    threading.Thread(target=interrupt, daemon=True).start()
    with pytest.raises(KeyboardInterrupt): run.blocking()
    assert 2 <= run.n_gen < 400 and not lm.lock.locked()
    assert L.torch_thread.submit(lambda: 'idle').result(timeout=5) == 'idle'

def test_bad_weights_setting_fails_before_loading(monkeypatch):
    monkeypatch.setenv('LISETTE_LOCAL_WEIGHTS', 'fp4')
    with pytest.raises(ValueError, match="LISETTE_LOCAL_WEIGHTS: expected 'int8' or 'full', got 'fp4'"): L.load_local('/nonexistent.gguf')

# --- cache: corrupt or partial conversions are rebuilt, never loaded -------------------------------------------

@pytest.fixture
def fake_cache(tmp_path, monkeypatch):
    "A temporary LISETTE_CACHE and a fast stand-in converter that records its calls"
    monkeypatch.setenv('LISETTE_CACHE', str(tmp_path))
    calls = []
    def conv(gguf, dest):
        calls.append(gguf); dest.mkdir()
        (dest/'config.json').write_text('{}'); (dest/'model.safetensors').write_bytes(b'w' * 1000)
    monkeypatch.setattr(L, 'convert_gguf', conv)
    return tmp_path, calls

def _build(): return L.cached_convert(lambda tmp: 'x.gguf', 'k' * 16, 'm')

@pytest.mark.parametrize('damage', ['truncate', 'flip', 'delete_file', 'delete_marker', 'bad_marker', 'extra_file'])
def test_damaged_cache_is_rebuilt(fake_cache, damage):
    root, calls = fake_cache
    d = _build()
    assert L.cache_ok(d) and len(calls) == 1
    w = d/'model.safetensors'
    if damage == 'truncate': w.write_bytes(b'w' * 500)
    elif damage == 'flip': w.write_bytes(b'x' + b'w' * 999)
    elif damage == 'delete_file': w.unlink()
    elif damage == 'delete_marker': (d/L._MARK).unlink()
    elif damage == 'bad_marker': (d/L._MARK).write_text('{"files": ')
    else: (d/'junk.bin').write_bytes(b'?')
    assert not L.cache_ok(d)
    assert _build() == d and len(calls) == 2 and L.cache_ok(d)
    assert sorted(os.listdir(root/'models')) == ['m-' + 'k' * 16]  # no temp dirs left behind

def test_interrupted_conversion_leaves_no_cache(fake_cache, monkeypatch):
    "A conversion killed half-way leaves nothing that looks complete; the next call converts again"
    root, calls = fake_cache
    def dying(gguf, dest):
        dest.mkdir(); (dest/'model.safetensors').write_bytes(b'half')
        raise KeyboardInterrupt
    monkeypatch.setattr(L, 'convert_gguf', dying)
    with pytest.raises(KeyboardInterrupt): _build()
    assert os.listdir(root/'models') == []
    monkeypatch.undo(); monkeypatch.setenv('LISETTE_CACHE', str(root))
    # a partial directory at the final path (e.g. from a non-atomic tool) is rebuilt too
    (root/'models'/('m-' + 'k' * 16)).mkdir()
    monkeypatch.setattr(L, 'convert_gguf', lambda g, d: (d.mkdir(), (d/'a').write_text('ok')))
    d = _build()
    assert (d/'a').read_text() == 'ok' and L.cache_ok(d)

def test_killed_process_mid_conversion(tmp_path):
    "SIGKILL during a (slow, fake) conversion: the cache holds only a temp dir, which is never loaded"
    code = f"""
import os, time, lisette.local as L
os.environ['LISETTE_CACHE'] = {str(tmp_path)!r}
def slow(g, d): d.mkdir(); (d/'w').write_bytes(b'part'); print('started', flush=True); time.sleep(60)
L.convert_gguf = slow
L.cached_convert(lambda t: 'x', 'k'*16, 'm')
"""
    p = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == 'started'
    p.kill(); p.wait()
    final = tmp_path/'models'/('m-' + 'k' * 16)
    assert not final.exists() and not L.cache_ok(final)

# --- a dying or stuck generate thread --------------------------------------------------------------------------

def test_generate_thread_death_raises(lm, monkeypatch):
    "An error inside generate reaches the caller instead of blocking the streamer forever"
    def boom(*a, streamer=None, **kw):
        streamer.put(a[0] if a else kw['input_ids']); raise RuntimeError('generate died')
    monkeypatch.setattr(lm.model, 'generate', boom)
    t = time.time()
    with pytest.raises(Exception, match='generate died'):
        litellm.completion('local/gemma3-270m', messages=MSGS, max_tokens=5)
    assert time.time() - t < 10 and not lm.lock.locked()
    with pytest.raises(Exception, match='generate died'):
        list(litellm.completion('local/gemma3-270m', messages=MSGS, max_tokens=5, stream=True))
    assert not lm.lock.locked()

def test_stuck_generate_times_out(lm, monkeypatch):
    "A generate that never produces a token ends in TimeoutError, not a hang"
    ev = threading.Event()
    monkeypatch.setattr(lm.model, 'generate', lambda *a, **kw: ev.wait(5))
    run = L.LocalRun(lm, 'User: hi\nAssistant:', L.gen_kwargs(dict(max_tokens=3)), timeout=0.5)
    t = time.time()
    with pytest.raises(TimeoutError): list(run)
    assert time.time() - t < 3
    ev.set()
    time.sleep(0.2)
    assert not lm.lock.locked()

def test_abandoned_stream_frees_the_model(lm):
    "Dropping a stream part-way (Ctrl-C, break) stops generation and releases the lock"
    run = L.LocalRun(lm, L.dialogue_prompt(MSGS), L.gen_kwargs(dict(max_tokens=50)))
    it = iter(run)
    next(it)
    it.close()
    assert run.n_gen < 10 and not lm.lock.locked()

# --- Chat runs a Python tool with the local model ----------------------------------------------------------------

def test_chat_tool_loop(lm):
    from lisette.chat import Chat
    ran = []
    def add(a: int, b: int) -> int:
        "Add two integers."
        ran.append((a, b)); return a + b
    chat = Chat('local/gemma3-270m', tools=[add])
    r = chat('Call add with a=17 and b=25.', max_steps=3, max_tokens=40)
    assert ran and ran[0] == (17, 25)
    tool_msgs = [m for m in chat.hist if (m['role'] if isinstance(m, dict) else m.role) == 'tool']
    assert tool_msgs and '42' in str(tool_msgs[0]['content'] if isinstance(tool_msgs[0], dict) else tool_msgs[0].content)
    assert chat.use.input > 0 and chat.use.output > 0

def test_chat_streams_tool_calls(lm):
    from lisette.chat import Chat, delta_text
    ran = []
    def add(a: int, b: int) -> int:
        "Add two integers."
        ran.append((a, b)); return a + b
    items = list(Chat('local/gemma3-270m', tools=[add])('Call add with a=17 and b=25.', stream=True, max_tokens=40))
    texts = [delta_text(o) or '' for o in items if type(o).__name__ == 'ModelResponseStream']
    assert any('🔧 add' in t for t in texts)
    assert ran == [(17, 25)]
    assert any(isinstance(o, dict) and o.get('role') == 'tool' for o in items)

# --- import cost ----------------------------------------------------------------------------------------------

def test_import_does_not_load_torch():
    out = subprocess.run([sys.executable, '-X', 'importtime', '-c', 'import lisette, lisette.local, lisette.cli'],
                         capture_output=True, text=True, env=os.environ | dict(LITELLM_LOCAL_MODEL_COST_MAP='True'))
    assert out.returncode == 0
    mods = {l.split('|')[-1].strip().split('.')[0] for l in out.stderr.splitlines() if l.startswith('import time:')}
    assert 'litellm' in mods and 'torch' not in mods and 'transformers' not in mods
