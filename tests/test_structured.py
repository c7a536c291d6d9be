"""Structured output: plain classes as schemas, replies checked and retried, and the history left clean.

Scripted replies come from the fault server (over real HTTP, both wire formats), so a retry's request can be checked
exactly; the live server shows that the real model's replies go through the same loop, on both protocols."""
import json, asyncio, dataclasses
from typing import ClassVar, Literal, Optional
import pytest
from pydantic import BaseModel, field_validator
from lisette.chat import Chat
from lisette.async_chat import AsyncChat
from lisette.errors import ConfigTypeError, ConfigValueError, SchemaError, StructuredOutputError, ModelServerError
from lisette.structured import as_model, output_spec, native_output, _json_in, _Invalid
from lisette.tools import _json_schema
from conftest import ok, tool_reply, status, oai_chat, anth_chat, snapshot, primed, NO_RETRY

# --- classes as schemas ---------------------------------------------------------------------------------------------

class Address:
    "A postal address"
    city: str                  # the town or city
    country: str = 'unknown'   # where the city is

class Entry:
    "An entry in a contact book"
    name: str                                        # the person's full name
    kind: Literal['friend', 'colleague', 'family']
    email: Optional[str]
    homes: list[Address] = []
    by_label: dict[str, Address] = {}
    best: Optional[Address] = None
    count: ClassVar[int] = 0
    _private: int = 1

def schema(cls): return _json_schema(as_model(cls))

def test_docstring_becomes_description():
    assert schema(Entry)['description'] == 'An entry in a contact book'
    assert schema(Address)['description'] == 'A postal address'

def test_field_comments_become_descriptions():
    s = schema(Entry)['properties']
    assert s['name']['description'] == "the person's full name"
    assert 'description' not in s['kind']
    assert schema(Address)['properties']['country']['description'] == 'where the city is'

def test_required_and_defaults():
    s = schema(Entry)
    assert s['required'] == ['name', 'kind']
    assert s['properties']['homes']['default'] == [] and s['properties']['by_label']['default'] == {}
    assert schema(Address)['properties']['country']['default'] == 'unknown'

def test_optional_without_default_may_be_left_out():
    e = schema(Entry)["properties"]["email"]
    assert e == {'anyOf': [{'type': 'string'}, {'type': 'null'}], 'default': None}
    assert output_spec(Entry).check({'name': 'A', 'kind': 'friend'}).email is None

def test_literal_is_an_enum():
    assert schema(Entry)['properties']['kind'] == {'enum': ['friend', 'colleague', 'family'], 'type': 'string'}

def test_list_dict_and_nested_classes():
    p = schema(Entry)['properties']
    assert p['homes']['type'] == 'array' and p['homes']['items']['required'] == ['city']
    assert p['by_label']['type'] == 'object' and p['by_label']['additionalProperties']['properties']['city'] == {
        'description': 'the town or city', 'type': 'string'}
    assert p['best']['anyOf'][0]['description'] == 'A postal address'
    assert '$defs' not in json.dumps(schema(Entry)) and '$ref' not in json.dumps(schema(Entry))

def test_classvars_and_private_names_are_not_fields():
    assert set(schema(Entry)['properties']) == {'name', 'kind', 'email', 'homes', 'by_label', 'best'}

def test_extra_keys_are_refused():
    assert schema(Entry)['additionalProperties'] is False
    with pytest.raises(_Invalid, match='extra: Extra inputs are not permitted'):
        output_spec(Entry).check({'name': 'A', 'kind': 'friend', 'extra': 1})

def test_instances_of_the_plain_classes_come_back():
    e = output_spec(Entry).check({'name': 'A', 'kind': 'family', 'homes': [{'city': 'Oslo'}],
                                  'by_label': {'work': {'city': 'Rome', 'country': 'Italy'}}, 'best': {'city': 'Oslo'}})
    assert type(e) is Entry and type(e.homes[0]) is Address and type(e.by_label['work']) is Address
    assert (e.homes[0].city, e.homes[0].country, e.by_label['work'].country, e.best.city) == ('Oslo', 'unknown', 'Italy', 'Oslo')
    assert not isinstance(e, BaseModel)

@dataclasses.dataclass
class Tagged:
    "Something with tags"
    label: str
    tags: list[str] = dataclasses.field(default_factory=list)

def test_dataclass_default_factory_and_init():
    s = schema(Tagged)
    assert s['required'] == ['label'] and s['description'] == 'Something with tags'
    t = output_spec(Tagged).check({'label': 'x'})
    assert t == Tagged('x', [])   # made through its __init__: dataclass equality works

@dataclasses.dataclass
class Undocumented:
    n: int

def test_dataclass_generated_docstring_is_not_a_description():
    assert 'description' not in schema(Undocumented)

class Base:
    a: int
class Derived(Base):
    "Has a and b"
    b: str = 'x'

def test_inherited_fields():
    assert schema(Derived)['required'] == ['a'] and set(schema(Derived)['properties']) == {'a', 'b'}

class Node:
    value: int
    children: list['Node'] = []

class Broken:
    x: 'NoSuchType'

def test_recursive_and_unreadable_classes_get_clear_errors():
    with pytest.raises(SchemaError, match='cls: Node contains itself; use a pydantic model'): as_model(Node)
    with pytest.raises(SchemaError, match="cls: the annotations of Broken can't be read"): as_model(Broken)

class Pet(BaseModel):
    name: str

def test_pydantic_models_are_used_as_they_are():
    assert as_model(Pet) is Pet
    assert output_spec(Pet).check({'name': 'Rex'}) == Pet(name='Rex')

def test_raw_schema_is_checked_with_jsonschema():
    s = {'title': 'Book', 'type': 'object', 'required': ['title'],
         'properties': {'title': {'type': 'string'}, 'author': {'$ref': '#/$defs/Person'}},
         '$defs': {'Person': {'type': 'object', 'properties': {'name': {'type': 'string'}}, 'required': ['name']}}}
    spec = output_spec(s)
    assert spec.name == 'Book' and spec.schema['properties']['author']['required'] == ['name']   # inlined
    assert spec.check({'title': 'Dune', 'author': {'name': 'Herbert'}}) == {'title': 'Dune', 'author': {'name': 'Herbert'}}
    with pytest.raises(_Invalid, match="author: 'name' is a required property"): spec.check({'title': 'Dune', 'author': {}})

def test_json_is_found_in_prose_and_fences():
    assert _json_in('Here:\n```json\n{"a": 1}\n```\nDone.') == {'a': 1}
    assert _json_in('{"a": {"b": [1, 2]}} and more {"c": 3}') == {'a': {'b': [1, 2]}}
    with pytest.raises(_Invalid, match='no valid JSON object'): _json_in('[1, 2]')

def test_native_output_asks_litellm():
    assert native_output('openai/gpt-4.1') and not native_output('openai/fixture-model') and not native_output('nope/x')

# --- bad input: a clear error, nothing sent ---------------------------------------------------------------------------

@pytest.mark.parametrize('kw,exc,msg', [
    (dict(cls=3), ConfigTypeError, 'cls: expected a pydantic model, an annotated class or a JSON schema dict, got 3'),
    (dict(cls=int), ConfigTypeError, "cls: expected a pydantic model, an annotated class or a JSON schema dict, got <class 'int'>"),
    (dict(cls={'type': 'array'}), ConfigValueError, "cls: the schema must describe a JSON object (type 'object'), got type 'array'"),
    (dict(cls={'type': 'object', 'required': 'x'}), ConfigValueError, "cls: not a valid JSON schema: 'x' is not of type 'array'"),
    (dict(cls=Pet, retries=-1), ConfigValueError, 'retries: expected an int >= 0, got -1'),
    (dict(cls=Pet, retries=1.5), ConfigValueError, 'retries: expected an int >= 0, got 1.5'),
    (dict(cls=Pet, retries=True), ConfigValueError, 'retries: expected an int >= 0, got True'),
    (dict(cls=Pet, native='yes'), ConfigTypeError, "native: expected True, False or None, got 'yes'"),
    (dict(cls=Pet, max_steps=0), ConfigTypeError, 'max_steps: not an argument of a structured call'),
])
@pytest.mark.parametrize('cls', [Chat, AsyncChat])
def test_bad_input_is_named_and_nothing_is_sent(fx, cls, kw, exc, msg):
    c = oai_chat(fx, cls)
    with pytest.raises(exc) as e:
        r = c.structured('hi', **kw)
        if asyncio.iscoroutine(r): asyncio.run(r)
    assert str(e.value) == msg or str(e.value).startswith(msg)
    assert fx.requests == [] and c.hist == []

# --- the loop, with scripted replies ----------------------------------------------------------------------------------

def run(r): return asyncio.run(r) if asyncio.iscoroutine(r) else r

@pytest.mark.parametrize('cls', [Chat, AsyncChat])
def test_forced_tool_retry_sends_the_error_as_the_tool_result(fx, cls):
    c = primed(fx, cls)
    fx.push(tool_reply(('Pet', {'name': 3}), ('Pet', {'name': 'dup'})), tool_reply(('Pet', {'name': 'Rex'})))
    assert run(c.structured('Name a pet.', Pet)) == Pet(name='Rex')
    first,second = fx.requests[1]['body'],fx.requests[2]['body']
    assert first['tool_choice'] == 'required' and [t['function']['name'] for t in first['tools']] == ['Pet']
    call,result = second['messages'][-2:]
    assert [tc['function']['arguments'] for tc in call['tool_calls']] == ['{"name": 3}']   # only the first call
    assert result['role'] == 'tool' and result['tool_call_id'] == call['tool_calls'][0]['id']
    assert result['content'] == 'Error: name: Input should be a valid string. Call Pet again with corrected arguments.'
    assert c.hist[2:] == [{'role': 'user', 'content': 'Name a pet.'}, {'role': 'assistant', 'content': '{"name": "Rex"}'}]
    assert c.use.calls == 3

@pytest.mark.parametrize('chat', [oai_chat, anth_chat])
def test_native_retry_sends_the_error_as_a_user_message(fx, chat):
    c = chat(fx)
    fx.push(ok('Sure: {"name": 7}'), ok('```json\n{"name": "Rex"}\n```'))
    assert c.structured('Name a pet.', Pet, native=True) == Pet(name='Rex')
    first,second = fx.requests[0]['body'],fx.requests[1]['body']
    if chat is oai_chat:
        assert first['response_format']['json_schema']['name'] == 'Pet' and 'tools' not in first
        assert second['messages'][-1] == {'role': 'user', 'content':
            'That reply is not valid: name: Input should be a valid string. Reply again with only the corrected JSON.'}
    else:   # litellm's own forced tool, for an Anthropic model without native structured output
        assert first['tools'][0]['name'] == 'json_tool_call'
        assert 'name: Input should be a valid string' in json.dumps(second['messages'][-1])
    assert c.hist[-1] == {'role': 'assistant', 'content': '{"name": "Rex"}'}

def test_native_none_asks_litellm(fx):
    fx.push(ok('{"name": "Rex"}'), tool_reply(('Pet', {'name': 'Rex'})))
    Chat('openai/gpt-4.1', api_base=fx.base, api_key='sk-test', **NO_RETRY).structured('Name a pet.', Pet)
    oai_chat(fx).structured('Name a pet.', Pet)
    assert 'response_format' in fx.requests[0]['body'] and 'tools' not in fx.requests[0]['body']
    assert 'response_format' not in fx.requests[1]['body'] and fx.requests[1]['body']['tool_choice'] == 'required'

@pytest.mark.parametrize('cls', [Chat, AsyncChat])
def test_exhausted_retries_raise_and_leave_hist_alone(fx, cls):
    c = primed(fx, cls)
    snap = snapshot(c)
    fx.push(ok('no json here'), ok('{"name": 1}'))
    with pytest.raises(StructuredOutputError) as e: run(c.structured('Name a pet.', Pet, retries=1, native=True))
    assert str(e.value) == 'Pet: no valid reply in 2 attempts; the last: name: Input should be a valid string'
    assert (e.value.reply, e.value.errors) == ('{"name": 1}', 'name: Input should be a valid string')
    assert isinstance(e.value, ValueError)
    assert snapshot(c)[0] == snap[0] and c.use.calls == snap[1].calls + 2

def test_a_model_error_mid_retry_leaves_hist_alone(fx):
    c = primed(fx)
    snap = snapshot(c)
    fx.push(ok('{"name": 1}'), status(500))
    with pytest.raises(ModelServerError): c.structured('Name a pet.', Pet, native=True)
    assert snapshot(c)[0] == snap[0] and c.use.calls == snap[1].calls + 1

def test_chat_tools_are_not_offered(fx):
    def add(a: int, b: int) -> int:
        "Add"
        return a + b
    c = oai_chat(fx, tools=[add])
    fx.push(tool_reply(('Pet', {'name': 'Rex'})))
    c.structured('Name a pet.', Pet)
    assert [t['function']['name'] for t in fx.requests[0]['body']['tools']] == ['Pet']

# --- the live model -------------------------------------------------------------------------------------------------

class Person:
    "A person mentioned in the text"
    name: str
    age: int

class Impossible(BaseModel):
    city: str
    @field_validator('city')
    @classmethod
    def never(cls, v): raise ValueError('no city is good enough')

@pytest.mark.parametrize('proto', ['openai', 'anthropic'])
@pytest.mark.parametrize('cls', [Chat, AsyncChat])
def test_live_failure_leaves_hist_unchanged(live, proto, cls):
    c = cls(max_tokens=40, **live[proto])
    run(c('Hi'))
    before,calls = json.dumps([m if isinstance(m, dict) else m.model_dump() for m in c.hist]),c.use.calls
    with pytest.raises(StructuredOutputError) as e: run(c.structured('Where does Tom live? He lives in Lisbon.', Impossible))
    assert e.value.errors == 'city: Value error, no city is good enough' and 'Impossible' in str(e.value) and '3 attempts' in str(e.value)
    assert json.dumps([m if isinstance(m, dict) else m.model_dump() for m in c.hist]) == before
    assert c.use.calls == calls + 3

@pytest.mark.parametrize('proto,native', [('openai', True), ('openai', False), ('anthropic', False)])
@pytest.mark.parametrize('cls', [Chat, AsyncChat])
def test_live_success_then_the_chat_goes_on(live, proto, native, cls):
    c = cls(max_tokens=60, **live[proto])
    p = run(c.structured('Extract the person: Bob is 45 years old.', Person, native=native))
    assert type(p) is Person and (p.name, p.age) == ('Bob', 45)
    assert c.hist[-1] == {'role': 'assistant', 'content': '{"name": "Bob", "age": 45}'}
    r = run(c('Thanks.', max_tokens=10))
    assert len(c.hist) == 4 and r.choices[0].message.content is not None

def test_history_keeps_non_ascii_text_readable(fx):
    c = oai_chat(fx)
    fx.push(ok('{"name": "Zoë"}'))
    assert c.structured('Name a pet.', Pet, native=True) == Pet(name='Zoë')
    assert c.hist[-1]['content'] == '{"name": "Zoë"}'

@pytest.mark.parametrize('arg', ['stream', 'prefill', 'tools', 'max_steps', 'search'])
def test_loop_arguments_are_refused(arg):
    "Arguments of the tool loop or of streaming don't apply to a structured call: a clear error, nothing sent."
    from lisette.chat import Chat
    c = Chat('openai/none', api_base='http://127.0.0.1:9', api_key='x')
    with pytest.raises(TypeError, match=f'{arg}: not an argument of a structured call'): c.structured('hi', {'type':'object'}, **{arg: True})
    assert c.hist == []
