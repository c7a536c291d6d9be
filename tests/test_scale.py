"""Chats over a `litellm.Router` and many chats at once (`lisette.batch`): load balancing, retries and fallback to a
live deployment keep `hist` atomic (a failed turn leaves it as it was, a retried turn appears once), usage and cost
are recorded per deployment, and a batch survives a dead server and resumes without redoing finished items."""
import time, asyncio, random
import pytest
import litellm
from lisette.chat import Chat
from lisette.async_chat import AsyncChat
from lisette.errors import ConfigTypeError, ConfigValueError, ModelServerError
from conftest import FaultServer, ok, status, closed_port, snapshot, same

_HOOKS = ('callbacks', 'success_callback', '_async_success_callback', 'failure_callback', '_async_failure_callback',
          'input_callback', 'service_callback')

@pytest.fixture(autouse=True)
def _no_router_left():
    """A Router hooks callbacks into litellm and its deployments' prices into the cost map, for the whole process:
    undo both after each test, so the files after this one see litellm as they would alone (fast streams included)."""
    hooks,prices = {k:list(getattr(litellm, k)) for k in _HOOKS},set(litellm.model_cost)
    yield
    for k,v in hooks.items(): getattr(litellm, k)[:] = v
    for k in set(litellm.model_cost) - prices: del litellm.model_cost[k]

def dep(name, base, id, price=1e-6):
    "A Router deployment of model group `name` at OpenAI-style `base`, with its own id and price per token."
    return dict(model_name=name, litellm_params=dict(model='openai/fixture-model', api_base=base, api_key='sk-test',
                input_cost_per_token=price, output_cost_per_token=price), model_info=dict(id=id))

def router(*deps, **kw):
    "A Router over `deps` that retries at once, and rests a deployment after its first failure."
    return litellm.Router(model_list=list(deps), **{**dict(num_retries=3, retry_after=0, allowed_fails=0, cooldown_time=60), **kw})

def dead(): return f'http://127.0.0.1:{closed_port()}/v1'

@pytest.fixture
def two():
    "Two fault servers that answer 'from a' and 'from b'."
    a,b = FaultServer(default=ok('from a')),FaultServer(default=ok('from b'))
    yield a,b
    a.stop(); b.stop()

def test_router_arguments(two):
    a,_ = two
    r = router(dep('g', a.base, 'a'))
    with pytest.raises(ConfigTypeError, match='router: expected a litellm.Router'): Chat('g', router=object())
    with pytest.raises(ConfigValueError, match=r"model: expected one of the router's model groups \['g'\]"): Chat('h', router=r)
    with pytest.raises(ConfigValueError, match='api_base: a router'): Chat('g', router=r, api_base=a.base)
    with pytest.raises(ConfigValueError, match='api_key: a router'): Chat('g', router=r, api_key='sk-x')
    assert AsyncChat('g', router=r).router is r

def test_balanced_and_priced_per_deployment(two):
    "Calls spread over both deployments; each one's usage and cost, at its own price, is kept under its id."
    a,b = two
    random.seed(0)
    c = Chat('g', router=router(dep('g', a.base, 'a', 1e-6), dep('g', b.base, 'b', 1e-5)))
    for i in range(8): c(f'q{i}')
    assert set(c.use_by) == {'a', 'b'} and len(c.hist) == 16
    ua,ub = c.use_by['a'],c.use_by['b']
    assert (ua.calls, ub.calls) == (len(a.requests), len(b.requests))
    assert ua.cost == pytest.approx(ua.calls*15*1e-6) and ub.cost == pytest.approx(ub.calls*15*1e-5)
    assert c.use == ua + ub

@pytest.mark.parametrize('stream', [False, True])
def test_retried_turn_appears_once(two, stream):
    "A deployment that fails once and then answers: the retry's answer is in `hist` once, and counted once."
    a,_ = two
    a.push(status(500, 'try again'))
    c = Chat('g', router=router(dep('g', a.base, 'a'), allowed_fails=3))
    r = c('hi', stream=stream)
    if stream: r = list(r)[-1]
    assert r.choices[0].message.content == 'from a' and len(a.requests) == 2
    assert [m['role'] if isinstance(m, dict) else m.role for m in c.hist] == ['user', 'assistant']
    assert c.use.calls == 1 and c.use_by['a'].calls == 1

@pytest.mark.parametrize('stream', [False, True])
def test_falls_back_to_live_deployment(two, stream):
    "One deployment is dead: every call is answered by the live one, sync and async, and hist grows by one turn each."
    a,_ = two
    r = router(dep('g', dead(), 'dead'), dep('g', a.base, 'a'))
    c,ac = Chat('g', router=r),AsyncChat('g', router=r)
    async def acall(m):
        res = await ac(m, stream=stream)
        return [o async for o in res][-1] if stream else res
    for i in range(3):
        res = c(f'q{i}', stream=stream)
        assert (list(res)[-1] if stream else res).choices[0].message.content == 'from a'
        assert asyncio.run(acall(f'q{i}')).choices[0].message.content == 'from a'
    assert len(c.hist) == len(ac.hist) == 6
    assert set(c.use_by) == set(ac.use_by) == {'a'}

@pytest.mark.parametrize('stream', [False, True])
def test_failed_turn_leaves_hist(two, stream):
    "Every deployment fails: the call raises lisette's error, after the retries, and the chat is as it was."
    a,b = two
    c = Chat('g', router=router(dep('g', a.base, 'a'), dep('g', b.base, 'b'), num_retries=1, allowed_fails=3))
    c('first')
    snap = snapshot(c)
    a.default = b.default = status(500, 'down')
    with pytest.raises(ModelServerError, match='down'):
        r = c('second', stream=stream)
        if stream: list(r)
    assert same(c, snap)
    assert sum(c.use_by[k].calls for k in c.use_by) == 1

# --- many chats: lisette.batch ----------------------------------------------------------------------------------

from lisette.batch import arun_batch, run_batch, load_results
from lisette.testing import LlamaServer

def add(a: int, b: int) -> int:
    "Add two numbers"
    return a + b

def ping() -> str:
    "Check that the server is up"
    return 'pong'

def paired(hist) -> bool:
    "True if each assistant message with tool calls is followed by exactly one result per call id, in order, and no tool result stands alone."
    i,n = 0,len(hist)
    while i < n:
        m = hist[i]
        ids = [tc['id'] for tc in m.get('tool_calls') or []] if m['role'] == 'assistant' else []
        if m['role'] == 'tool': return False   # a result no call asked for
        res = hist[i+1:i+1+len(ids)]
        if [t['role'] for t in res] != ['tool']*len(ids) or [t['tool_call_id'] for t in res] != ids: return False
        i += 1 + len(ids)
    return True

def test_paired():
    tc = lambda i: dict(id=i, type='function', function=dict(name='add', arguments='{}'))
    u,tr = dict(role='user', content='q'),lambda i: dict(role='tool', tool_call_id=i, content='1')
    a = lambda *ids: dict(role='assistant', content=None, tool_calls=[tc(i) for i in ids])
    assert paired([u, a('x', 'y'), tr('x'), tr('y'), dict(role='assistant', content='2')])
    assert not paired([u, a('x', 'y'), tr('y'), tr('x')])
    assert not paired([u, a('x'), tr('x'), tr('x')])
    assert not paired([u, a('x')])

def test_resume_redoes_no_finished_item(tmp_path):
    "A run that dies after 4 items; the re-run runs only the other 8, and the file then holds each item once."
    fx = FaultServer(default=ok('done'))
    path,seen = tmp_path/'res.jsonl',[]
    def make_chat(item):
        seen.append(item)
        return AsyncChat('openai/fixture-model', api_base=fx.base, api_key='sk-test', num_retries=0)
    class Died(Exception): pass
    def die_after_4(r):
        if len(load_results(path)) == 4: raise Died
    items = [f'prompt {i}' for i in range(12)]
    with pytest.raises(Died): asyncio.run(arun_batch(items, make_chat, path, concurrency=1, progress=False, on_result=die_after_4))
    first = load_results(path)
    assert sorted(first) == ['0', '1', '2', '3'] and seen[:4] == items[:4]   # the next may have started, not finished
    seen.clear()
    res = run_batch(items, make_chat, path, concurrency=3, progress=False)
    assert sorted(seen) == sorted(items[4:]), 'no finished item is run again'
    assert [r.id for r in res] == [str(i) for i in range(12)] and all(r.ok for r in res)
    assert [r for r in res[:4]] == [first[str(i)] for i in range(4)]
    lines = path.read_text().splitlines()
    assert len(lines) == 12 and len(load_results(path)) == 12
    fx.stop()

def test_errors_are_results_and_rerun(tmp_path):
    "Items that fail come back as results with their error, the others finish; a re-run retries only the failed ones."
    fx = FaultServer(default=ok('fine'))
    fx.push(status(500, 'down'))
    mk = lambda item: AsyncChat('openai/fixture-model', api_base=fx.base, api_key='sk-test', num_retries=0)
    res = run_batch(['a', 'b', 'c'], mk, tmp_path/'r.jsonl', concurrency=1, progress=False)
    assert [r.ok for r in res] == [False, True, True] and 'down' in res[0].error and res[0].error.startswith('InternalServerError')
    again = run_batch(['a', 'b', 'c'], mk, tmp_path/'r.jsonl', progress=False)
    assert all(r.ok for r in again) and again[1:] == res[1:] and len(fx.requests) == 4
    fx.stop()

@pytest.fixture(scope='module')
def servers():
    "Two llama-servers of one thread each, started here on 127.0.0.1 and stopped by PID (reusing a shared prompt prefix: faster, and order doesn't matter here)."
    ss = [LlamaServer(threads=1, cache_prompt=True).start() for _ in range(2)]
    yield ss
    for s in ss: s.stop()

def batch_with_a_kill(r, group, kill, ids, path):
    "50 tool-loop chats over Router `r`'s `group`, calling `kill()` after 25 results: every chat completes, pairs its calls and results, and each deployment in `ids` served some."
    n = [0]
    def kill_halfway(res):
        n[0] += 1
        if n[0] == 25: kill()   # SIGKILL by PID, with requests in flight
    # A tool with no arguments: its call fits in 16 tokens, so each chat is a short, real tool loop.
    mk = lambda item: AsyncChat(group, router=r, tools=[ping], max_tokens=16)
    items = [dict(id=f'q{i}', prompt=f'Is server {i} up? Check with the ping tool.') for i in range(50)]
    res = run_batch(items, mk, path, concurrency=6, progress=False, on_result=kill_halfway)
    assert [x.id for x in res] == [it['id'] for it in items]
    assert all(x.ok for x in res), [x.error for x in res if not x.ok]
    assert all(paired(x.hist) for x in res), [x.hist for x in res if not paired(x.hist)][:1]
    assert all(x.hist[0] == dict(role='user', content=it['prompt']) for x,it in zip(res, items)), 'each prompt once, first'
    tooled = sum(1 for x in res if any(m.get('tool_calls') for m in x.hist))
    assert tooled >= 25, f'most chats ran a tool loop (only {tooled} did)'
    assert set(ids) <= {k for x in res for k in x.use_by}
    assert sum(x.use.calls for x in res) == sum(u.calls for x in res for u in x.use_by.values())
    assert len(load_results(path)) == 50

# --- a fleet: two LiteLLM Proxies sharing one Redis, in front of the two llama-servers ---------------------------

from concurrent.futures import ThreadPoolExecutor
from lisette.testing import RedisServer, LitellmProxy
from lisette.errors import ModelRateLimitError, ModelBudgetError
from lisette.messages import _msg_dicts

BUDGET = 0.001   # dollars, for the gemma-budget group: one call (at $0.001 a token) spends it

def proxy_config(servers, redis):
    "Model groups over `servers`: `gemma` on both, `gemma-rpm` at 2 requests a minute, `gemma-budget` with $0.001 to spend; state in `redis`."
    def d(name, i, s, **kw): return dict(model_name=name, model_info=dict(id=f'{name}-{i}'), litellm_params=dict(
        model='openai/gemma3-270m', api_base=f'{s.base}/v1', api_key='sk-local', input_cost_per_token=1e-3, output_cost_per_token=1e-3, **kw))
    return dict(model_list=[d('gemma', i, s) for i,s in enumerate(servers)] +
                           [d('gemma-rpm', 0, servers[0], rpm=2), d('gemma-budget', 0, servers[1], max_budget=BUDGET, budget_duration='1d')],
                router_settings=dict(redis_host='127.0.0.1', redis_port=redis.port, enable_pre_call_checks=True, num_retries=2, retry_after=0))

@pytest.fixture(scope='module')
def fleet(servers):
    "A redis-server and two LiteLLM Proxies over the two llama-servers, with one master key; started here on 127.0.0.1, stopped by PID."
    redis = RedisServer().start()
    cfg = proxy_config(servers, redis)
    pxs = [LitellmProxy(cfg, master_key='sk-fleet-test')]
    pxs.append(LitellmProxy(cfg, master_key=pxs[0].master_key))
    try:
        with ThreadPoolExecutor(2) as ex: list(ex.map(lambda p: p.start(timeout=240), pxs))   # each spends seconds importing litellm
        yield redis,pxs
    finally:
        for p in pxs: p.stop()
        redis.stop()

def via(p, group='gemma', cls=Chat, **kw):
    "A chat with model group `group` through proxy `p`."
    return cls(f'litellm_proxy/{group}', api_base=p.base, api_key=p.master_key, **{**dict(max_tokens=16, num_retries=0), **kw})

def test_fleet_chats_tools_streams(fleet):
    "Both proxies answer a blocking chat, a stream and an AsyncChat tool loop; each turn lands in hist once, calls paired with results."
    _,(a,b) = fleet
    c = via(a, hist=['User: Hi!', 'Assistant: Hello.'])
    r = c('User: What is the capital of France?')
    assert r.choices[0].message.content and len(c.hist) == 4 and c.use.calls == 1 and c.use.input > 0
    chunks = list(via(b)('User: Say hi.', stream=True))
    assert chunks[-1].choices[0].message.content == ''.join(getattr(o.choices[0].delta, 'content', None) or '' for o in chunks[:-1] if hasattr(o.choices[0], 'delta'))
    ac = via(b, cls=AsyncChat, tools=[ping], max_tokens=40)   # room for a whole call: the tool then answers 'pong'
    asyncio.run(ac('Is the server up? Check with the ping tool.', max_steps=2))
    h = _msg_dicts(ac.hist)
    assert paired(h) and any(m['role'] == 'tool' and m['content'] == 'pong' for m in h), h

def test_fleet_rate_limit(fleet):
    "gemma-rpm allows 2 requests a minute: the third through the same proxy is a ModelRateLimitError (not a budget), and leaves hist alone."
    _,(a,_) = fleet
    for i in range(2): via(a, 'gemma-rpm', max_tokens=2)(f'User: Hi {i}')
    c = via(a, 'gemma-rpm', max_tokens=2, hist=['User: Hi!', 'Assistant: Hello.'])
    snap = snapshot(c)
    with pytest.raises(ModelRateLimitError, match='No deployments available') as e: c('User: One more?')
    assert not isinstance(e.value, ModelBudgetError) and e.value.status_code == 429 and same(c, snap)
    with pytest.raises(ModelRateLimitError): asyncio.run(via(a, 'gemma-rpm', cls=AsyncChat, max_tokens=2)('User: And async?'))
    with pytest.raises(ModelRateLimitError): list(via(a, 'gemma-rpm', max_tokens=2)('User: And streamed?', stream=True))

def test_fleet_budget(fleet):
    "A call through proxy A spends gemma-budget's $0.001; once Redis holds that spend, proxy B refuses its first call with a ModelBudgetError, hist untouched."
    redis,(a,b) = fleet
    first = via(a, 'gemma-budget', max_tokens=4)
    first('User: Hi!')
    assert first.use.cost >= BUDGET
    import redis as redis_client
    r,key,deadline = redis_client.Redis(port=redis.port),'deployment_spend:gemma-budget-0:1d',time.monotonic() + 60
    while r.get(key) is None and time.monotonic() < deadline: time.sleep(0.2)   # the proxies push their spend to Redis every second
    assert float(r.get(key) or 0) >= BUDGET, 'proxy A shared its spend through Redis'
    for cls in (Chat, AsyncChat):
        c = via(b, 'gemma-budget', cls=cls, hist=['User: Hi!', 'Assistant: Hello.'])
        snap = snapshot(c)
        with pytest.raises(ModelBudgetError, match='crossed budget') as e:
            res = c('User: Still there?')
            if cls is AsyncChat: asyncio.run(res)
        assert isinstance(e.value, ModelRateLimitError) and same(c, snap)

def test_kill_a_proxy_mid_batch(fleet, tmp_path):
    "50 tool-loop chats over a Router of the two proxies; one proxy is killed after 25 results: every chat completes, every history pairs its calls and results."
    random.seed(0)
    _,pxs = fleet
    r = litellm.Router(model_list=[dict(model_name='fleet', model_info=dict(id=f'proxy{i}'), litellm_params=dict(
                       model='litellm_proxy/gemma', api_base=p.base, api_key=p.master_key)) for i,p in enumerate(pxs)],
                       num_retries=3, retry_after=0, allowed_fails=0, cooldown_time=120)
    batch_with_a_kill(r, 'fleet', pxs[0].kill, ['proxy0', 'proxy1'], tmp_path/'res.jsonl')
    assert pxs[0].proc.poll() is not None, 'the proxy was killed during the batch'

def test_kill_a_server_mid_batch(servers, tmp_path):
    "50 tool-loop chats over a Router of two servers; one is killed after 25 results: every chat completes, every history pairs its calls and results."
    random.seed(0)
    r = litellm.Router(model_list=[dict(model_name='gemma', model_info=dict(id=f'srv{i}'),
                       litellm_params=dict(model='openai/gemma3-270m', api_base=f'{s.base}/v1', api_key='sk-local'))
                       for i,s in enumerate(servers)], num_retries=3, retry_after=0, allowed_fails=0, cooldown_time=120)
    batch_with_a_kill(r, 'gemma', servers[0].kill, ['srv0', 'srv1'], tmp_path/'res.jsonl')
    assert servers[0].proc.poll() is not None, 'the server was killed during the batch'

def test_progress_bar_counts_done_items(tmp_path, capsys):
    "tqdm's bar counts every item, those skipped as already done included."
    fx = FaultServer(default=ok('fine'))
    mk = lambda item: AsyncChat('openai/fixture-model', api_base=fx.base, api_key='sk-test', num_retries=0)
    run_batch(['a', 'b'], mk, tmp_path/'r.jsonl', progress=False)
    run_batch(['a', 'b', 'c'], mk, tmp_path/'r.jsonl')
    err = capsys.readouterr().err
    assert '2/3' in err and '3/3' in err and len(fx.requests) == 3
    fx.stop()

def test_resume_after_a_half_written_line(tmp_path):
    "A run killed in the middle of writing a result: the half line is skipped, its item runs again, the rest are kept."
    fx = FaultServer(default=ok('fine'))
    mk = lambda item: AsyncChat('openai/fixture-model', api_base=fx.base, api_key='sk-test', num_retries=0)
    path = tmp_path/'r.jsonl'
    first = run_batch(['a', 'b'], mk, path, progress=False)
    path.write_text(path.read_text() + first[1].to_json().replace('"id": "1"', '"id": "2"')[:25])   # item 2, cut short
    res = run_batch(['a', 'b', 'c'], mk, path, progress=False)
    assert [r.ok for r in res] == [True]*3 and res[:2] == first and len(fx.requests) == 3
    assert sorted(load_results(path)) == ['0', '1', '2']
    fx.stop()
