"""Chats over a `litellm.Router` and many chats at once (`lisette.batch`): load balancing, retries and fallback to a
live deployment keep `hist` atomic (a failed turn leaves it as it was, a retried turn appears once), usage and cost
are recorded per deployment, and a batch survives a dead server and resumes without redoing finished items."""
import asyncio, random
import pytest
import litellm
from lisette.chat import Chat
from lisette.async_chat import AsyncChat
from lisette.errors import ConfigTypeError, ConfigValueError, ModelServerError
from conftest import FaultServer, ok, status, closed_port, snapshot, same

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
