"""Shared fixtures: a scriptable, misbehaving OpenAI/Anthropic wire-format server on loopback, and the live test server.

`FaultServer` answers each POST with the next scripted action (see the `ok`, `tool_reply`, `status`, `raw`, `cut`,
`malformed`, `slow`, `eof` helpers) and records every request (path, headers, JSON body), so tests can assert both what
the library did with a bad reply and that nothing at all was sent.
"""
import os, json, time, signal, socket, threading, copy, asyncio
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler

os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')
import pytest
import litellm

litellm.suppress_debug_info = True

# A run started in the background by a script (`cmd &`, nohup) inherits SIGINT ignored, and passes that on to every
# process it starts, so a Ctrl-C test's CLI would never see the signal. Handle it here, as in a terminal: an exec'd
# child then starts with SIGINT at its default, and Python turns it into KeyboardInterrupt.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN: signal.signal(signal.SIGINT, signal.default_int_handler)
litellm.telemetry = False

# --- wire format helpers ---------------------------------------------------------------------------------------

def oai_completion(content='hi', tool_calls=(), finish_reason=None, usage=(10, 5), model='fixture-model'):
    "A complete OpenAI chat completion; `tool_calls` are (name, arguments) with arguments a dict or a raw string."
    m = dict(role='assistant', content=content)
    if tool_calls:
        m['tool_calls'] = [dict(id=f'call_{i}', type='function',
                                function=dict(name=n, arguments=a if isinstance(a, str) else json.dumps(a)))
                           for i,(n,a) in enumerate(tool_calls)]
    fr = finish_reason or ('tool_calls' if tool_calls else 'stop')
    return dict(id='chatcmpl-fx', object='chat.completion', created=0, model=model,
                choices=[dict(index=0, message=m, finish_reason=fr)],
                usage=dict(prompt_tokens=usage[0], completion_tokens=usage[1], total_tokens=sum(usage)))

def oai_chunks(resp):
    "The `chat.completion.chunk` dicts equivalent to completion `resp` (content split in 3 pieces, usage last)."
    m = resp['choices'][0]['message']
    c = m.get('content') or ''
    k = max(1, -(-len(c)//3))
    deltas = [dict(role='assistant', content='')] + [dict(content=c[i:i+k]) for i in range(0, len(c), k)]
    deltas += [dict(tool_calls=[dict(index=i) | tc]) for i,tc in enumerate(m.get('tool_calls') or [])]
    def mk(d, fr=None): return dict(id=resp['id'], object='chat.completion.chunk', created=0, model=resp['model'],
                                    choices=[dict(index=0, delta=d, finish_reason=fr)])
    return ([mk(d) for d in deltas] + [mk({}, resp['choices'][0]['finish_reason'])] +
            [dict(mk({}), choices=[], usage=resp['usage'])])

def sse(data, event=None):
    head = f'event: {event}\n' if event else ''
    return f'{head}data: {data if isinstance(data, str) else json.dumps(data)}\n\n'.encode()

def anth_message(text='hi', usage=(10, 5)):
    return dict(id='msg_fx', type='message', role='assistant', model='claude-fixture', content=[dict(type='text', text=text)],
                stop_reason='end_turn', stop_sequence=None, usage=dict(input_tokens=usage[0], output_tokens=usage[1]))

# --- scripted actions: each is called with (handler, body) and writes the whole HTTP reply ----------------------

def _send(h, code, ctype, payload:bytes, extra=()):
    h.send_response(code)
    h.send_header('content-type', ctype)
    h.send_header('content-length', str(len(payload)))
    for k,v in extra: h.send_header(k, v)
    h.end_headers()
    h.wfile.write(payload)

def _stream_head(h):
    "Start a chunked HTTP/1.1 SSE response."
    h.send_response(200)
    h.send_header('content-type', 'text/event-stream')
    h.send_header('transfer-encoding', 'chunked')
    h.end_headers()

def _chunk(h, b:bytes):
    h.wfile.write(f'{len(b):x}\r\n'.encode() + b + b'\r\n'); h.wfile.flush()

def _end_chunks(h): h.wfile.write(b'0\r\n\r\n'); h.wfile.flush()

def reply(resp):
    "Answer with completion `resp` (dict), as JSON, or as SSE chunks ending in [DONE] when the request streams."
    def act(h, body):
        if h.path.endswith('/v1/messages'): return _anth(h, body, resp)
        if not body.get('stream'): return _send(h, 200, 'application/json', json.dumps(resp).encode())
        _stream_head(h)
        for c in oai_chunks(resp): _chunk(h, sse(c))
        _chunk(h, sse('[DONE]')); _end_chunks(h)
    return act

def ok(content='hi', **kw): return reply(oai_completion(content, **kw))
def tool_reply(*calls, content=None, **kw): return reply(oai_completion(content, tool_calls=calls, **kw))

def _anth(h, body, resp):
    msg = resp if resp.get('type') == 'message' else anth_message(resp['choices'][0]['message'].get('content') or '')
    if not body.get('stream'): return _send(h, 200, 'application/json', json.dumps(msg).encode())
    u = msg['usage']
    evs = [('message_start', dict(message=dict(msg, content=[], stop_reason=None))),
           ('content_block_start', dict(index=0, content_block=dict(type='text', text=''))),
           ('content_block_delta', dict(index=0, delta=dict(type='text_delta', text=msg['content'][0]['text']))),
           ('content_block_stop', dict(index=0)),
           ('message_delta', dict(delta=dict(stop_reason='end_turn', stop_sequence=None), usage=u)),
           ('message_stop', {})]
    _stream_head(h)
    for e,d in evs: _chunk(h, sse(dict(type=e) | d, e))
    _end_chunks(h)

def status(code, message='fixture failure', err_type='server_error', anthropic=False):
    "Answer with HTTP error `code` and a provider-style JSON error body."
    def act(h, body):
        if anthropic or h.path.endswith('/v1/messages'):
            b = dict(type='error', error=dict(type=err_type, message=message))
        else: b = dict(error=dict(message=message, type=err_type, code=code))
        extra = [('retry-after', '0')] if code == 429 else []
        _send(h, code, 'application/json', json.dumps(b).encode(), extra)
    return act

def raw(payload:bytes, code=200, ctype='application/json'):
    "Answer with `payload` verbatim (e.g. a body that is not JSON)."
    def act(h, body): _send(h, code, ctype, payload)
    return act

def _partial(n, resp, end):
    "Stream the first `n` SSE chunks of `resp`, then `end(h)` the response."
    resp = resp or oai_completion('the quick brown fox jumps')
    def act(h, body):
        _stream_head(h)
        for c in oai_chunks(resp)[:n]: _chunk(h, sse(c))
        end(h)
    return act

def _drop(h):
    h.wfile.write(b'400\r\npartial'); h.wfile.flush()   # announces 1 KiB, sends 7 bytes, then closes
    h.close_connection = True
    h.connection.shutdown(socket.SHUT_RDWR)

def cut(n=2, resp=None):
    "Stream the first `n` SSE chunks of `resp`, then drop the connection mid chunked body (no terminator, no [DONE])."
    return _partial(n, resp, _drop)

def eof(n=2, resp=None):
    "Stream the first `n` SSE chunks of `resp`, then end the body cleanly without a finish chunk or [DONE]."
    return _partial(n, resp, _end_chunks)

def stall(n=2, resp=None, secs=60):
    "Stream the first `n` SSE chunks of `resp`, then send nothing more for `secs` seconds (a stream stuck mid-answer)."
    return _partial(n, resp, lambda h: time.sleep(secs))

def malformed(line=b'data: {"id": "chatcmpl-fx", "choices": [{"index": 0, "delta": {"content": "oops"\n\n', n=1, resp=None):
    "Stream `n` good chunks, then a broken SSE line, then the rest of the stream."
    resp = resp or oai_completion('the quick brown fox jumps')
    def act(h, body):
        chunks = oai_chunks(resp)
        _stream_head(h)
        for c in chunks[:n]: _chunk(h, sse(c))
        _chunk(h, line)
        for c in chunks[n:]: _chunk(h, sse(c))
        _chunk(h, sse('[DONE]')); _end_chunks(h)
    return act

def slow(secs, then=None):
    "Wait `secs` seconds before answering with `then` (default: ok)."
    then = then or ok('late')
    def act(h, body):
        time.sleep(secs)
        try: then(h, body)
        except OSError: pass   # the client gave up
    return act

# --- the server -------------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def do_POST(self):
        fx = self.server.fx
        data = self.rfile.read(int(self.headers.get('content-length', 0) or 0))
        try: body = json.loads(data or b'{}')
        except ValueError: body = {'_raw': data}
        with fx.lock:
            fx.requests.append(dict(path=self.path, headers=dict(self.headers), body=body, port=self.client_address[1]))
            act = fx.script.pop(0) if fx.script else fx.default
        try: act(self, body)
        except (BrokenPipeError, ConnectionResetError): pass
    def do_GET(self): _send(self, 404, 'application/json', b'{"error": "no GET routes"}')
    def log_message(self, *args): pass

class FaultServer:
    "Threaded loopback server answering each POST with the next scripted action (then `default`), recording requests."
    def __init__(self, script=(), default=None):
        self.script,self.requests,self.lock = list(script),[],threading.Lock()
        self.default = default or status(500, 'fixture: script exhausted')
        self.srv = ThreadingHTTPServer(('127.0.0.1', 0), _Handler)
        self.srv.daemon_threads = True
        self.srv.fx = self
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs=dict(poll_interval=0.02), daemon=True)
        self.thread.start()

    @property
    def url(self): return f'http://127.0.0.1:{self.srv.server_port}'
    @property
    def base(self): return self.url + '/v1'   # OpenAI-style api_base
    def push(self, *acts):
        with self.lock: self.script += acts
        return self
    def stop(self): self.srv.shutdown(); self.srv.server_close()

@pytest.fixture
def fx():
    "A fresh `FaultServer` with an empty script (every request gets a 500 until actions are pushed)."
    s = FaultServer()
    yield s
    s.stop()

def closed_port() -> int:
    "A loopback port nothing listens on."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

# No retries anywhere: a failed request must fail once and fast.
NO_RETRY = dict(num_retries=0, max_retries=0)

def oai_chat(fx, cls=None, **kw):
    "A `Chat` (or `cls`) talking to fault server `fx` over the OpenAI wire format."
    from lisette.chat import Chat
    return (cls or Chat)('openai/fixture-model', api_base=fx.base, api_key=kw.pop('api_key', 'sk-test'), **{**NO_RETRY, **kw})

def anth_chat(fx, cls=None, **kw):
    "A `Chat` (or `cls`) talking to fault server `fx` over the Anthropic Messages wire format."
    from lisette.chat import Chat
    return (cls or Chat)('anthropic/claude-fixture', api_base=fx.url, api_key=kw.pop('api_key', 'sk-test'),
                         **{**NO_RETRY, **kw})

def primed(fx, cls=None, **kw):
    "A chat with one successful exchange already in its history, so 'unchanged' is a non-trivial check."
    c = oai_chat(fx, cls, **kw)
    fx.push(ok('first answer'))
    r = c('first question')
    if asyncio.iscoroutine(r): asyncio.run(r)
    assert len(c.hist) == 2 and c.use.calls == 1
    return c

def snapshot(chat):
    "A deep copy of what a failed call must leave alone: the history (as dicts/reprs) and the usage."
    return [copy.deepcopy(m) if isinstance(m, dict) else repr(m) for m in chat.hist], copy.copy(chat.use)

def same(chat, snap):
    "True if `chat` still matches `snapshot`."
    h,u = snapshot(chat)
    return h == snap[0] and u == snap[1]

# --- the live llama-server --------------------------------------------------------------------------------------

@pytest.fixture(scope='session')
def live():
    "`Chat` kwargs for the live test server (`openai` and `anthropic`); fails, never skips, when it isn't configured."
    from lisette.testing import server_models
    try: return server_models()
    except RuntimeError as e: pytest.fail(str(e), pytrace=False)
