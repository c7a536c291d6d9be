"""A chat's cost: litellm's own price for a blocking response, our pricing for a streamed one, the same figures."""
import litellm
from conftest import ok, oai_chat
from lisette.chat import Use

def test_blocking_and_streamed_cost_agree(fx):
    "The price litellm put on a blocking response is the one `completion_cost` gives; a stream costs the same."
    fx.push(ok('hello there', usage=(1000, 50)), ok('hello there', usage=(1000, 50)))
    c = oai_chat(fx)
    c.model = 'openai/gpt-4o-mini'
    r = c('hi')
    assert r._hidden_params['response_cost'] > 0
    assert c.use.cost == litellm.completion_cost(completion_response=r, model='openai/gpt-4o-mini')
    list(c('again', stream=True))
    assert c.use.calls == 2 and abs(c.use.cost - 2 * r._hidden_params['response_cost']) < 1e-12

def test_repricing_as_another_model(fx):
    "Asking for another model's price prices the response again instead of taking litellm's figure."
    fx.push(ok('hello', usage=(1000, 50)))
    c = oai_chat(fx)
    c.model = 'openai/gpt-4o-mini'
    r = c('hi')
    assert Use.from_response(r, 'openai/gpt-4o').cost == litellm.completion_cost(completion_response=r, model='openai/gpt-4o')
    assert Use.from_response(r, 'openai/gpt-4o').cost != Use.from_response(r).cost
