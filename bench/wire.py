"""An instant loopback model server for the benchmarks: OpenAI chat completions and Anthropic Messages, JSON or SSE.

    python bench/wire.py [--port 0]        # serve in the foreground; prints the port on its first line
    with serve() as url: ...               # from a bench script: a server in a child process, stopped on exit

The request path picks the reply: `/n{N}t{K}/v1/chat/completions` (OpenAI; api_base `{url}/n{N}t{K}/v1`) and
`/n{N}t{K}/v1/messages` (Anthropic; api_base `{url}/n{N}t{K}`). A streamed reply has N content chunks of one word
each, then the finish, the usage and the end of the stream. While a request offering tools carries fewer than K tool
results, the reply calls its first tool instead of finishing with text, so `t4` drives a 5-step tool loop.
Replies are built once per kind and cached as bytes, and the server runs on asyncio in its own process, so it costs
the client nothing but the socket reads.
"""
import sys, json, re, asyncio, argparse, subprocess, contextlib
from functools import lru_cache

WORDS = 'The quick brown fox jumps over the lazy dog, again and again. '.split(' ')[:-1]
def word(i): return WORDS[i % len(WORDS)] + ' '   # distinct neighbours: litellm rejects a stream repeating one chunk
def text(n): return ''.join(map(word, range(n)))
ARGS = {'a': 1, 'b': 2}

def oai_base(url, n=1, tools=0): return f'{url}/n{n}t{tools}/v1'
def anth_base(url, n=1, tools=0): return f'{url}/n{n}t{tools}'

def _sse(d, event=None): return (f'event: {event}\n' if event else '') + f'data: {d if isinstance(d, str) else json.dumps(d)}\n\n'

def oai_reply(n, stream, tool=None, k=0):
    "An OpenAI chat completion of `n` words (calling `tool` as call `k` if given): JSON, or the SSE chunks"
    tcs = [dict(id=f'call_{k}', type='function', function=dict(name=tool, arguments=json.dumps(ARGS)))] if tool else []
    fr,usage = 'tool_calls' if tool else 'stop',dict(prompt_tokens=10, completion_tokens=n, total_tokens=10+n)
    if not stream:
        m = dict(role='assistant', content=text(n), **({'tool_calls': tcs} if tcs else {}))
        return json.dumps(dict(id='chatcmpl-bench', object='chat.completion', created=1700000000, model='bench',
                               choices=[dict(index=0, message=m, finish_reason=fr)], usage=usage))
    def ck(delta, fr=None): return dict(id='chatcmpl-bench', object='chat.completion.chunk', created=1700000000, model='bench',
                                        choices=[dict(index=0, delta=delta, finish_reason=fr)])
    cs = [ck(dict(role='assistant', content=''))] + [ck(dict(content=word(i))) for i in range(n)]
    cs += [ck(dict(tool_calls=[dict(index=0) | tc])) for tc in tcs] + [ck({}, fr), ck({}) | dict(choices=[], usage=usage)]
    return ''.join(map(_sse, cs)) + _sse('[DONE]')

def anth_reply(n, stream, tool=None, k=0):
    "An Anthropic message of `n` words (calling `tool` as `toolu_bench{k}` if given): JSON, or the SSE events"
    tu = dict(type='tool_use', id=f'toolu_bench{k}', name=tool, input=ARGS) if tool else None
    sr,usage = 'tool_use' if tool else 'end_turn',dict(input_tokens=10, output_tokens=n)
    msg = dict(id='msg_bench', type='message', role='assistant', model='claude-bench', stop_reason=sr, stop_sequence=None,
               content=[dict(type='text', text=text(n))] + ([tu] if tu else []), usage=usage)
    if not stream: return json.dumps(msg)
    evs = [('message_start', dict(message=msg | dict(content=[], stop_reason=None, usage=dict(input_tokens=10, output_tokens=1)))),
           ('ping', {}), ('content_block_start', dict(index=0, content_block=dict(type='text', text='')))]
    evs += [('content_block_delta', dict(index=0, delta=dict(type='text_delta', text=word(i)))) for i in range(n)]
    evs.append(('content_block_stop', dict(index=0)))
    if tu: evs += [('content_block_start', dict(index=1, content_block=tu | dict(input={}))),
                   ('content_block_delta', dict(index=1, delta=dict(type='input_json_delta', partial_json=json.dumps(ARGS)))),
                   ('content_block_stop', dict(index=1))]
    evs += [('message_delta', dict(delta=dict(stop_reason=sr, stop_sequence=None), usage=dict(output_tokens=n))), ('message_stop', {})]
    return ''.join(_sse(dict(type=e) | d, e) for e,d in evs)

@lru_cache(maxsize=None)
def _http(anth, n, stream, tool, k):
    "The whole HTTP response, as bytes"
    body = (anth_reply if anth else oai_reply)(n, stream, tool, k).encode()
    ct = 'text/event-stream' if stream else 'application/json'
    return f'HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {len(body)}\r\n\r\n'.encode() + body

_route = re.compile(r'/n(\d+)t(\d+)/v1/(chat/completions|messages)$')
_404 = b'HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}'

def _tool_results(anth, msgs):
    if not anth: return sum(m.get('role') == 'tool' for m in msgs)
    return sum(isinstance(c, dict) and c.get('type') == 'tool_result' for m in msgs if isinstance(m.get('content'), list) for c in m['content'])

def respond(path, body:bytes) -> bytes:
    "The reply to a POST of `body` to `path`"
    m = _route.match(path.split('?')[0])
    if not m: return _404
    n,k,anth = int(m[1]),int(m[2]),m[3] == 'messages'
    req = json.loads(body or b'{}')
    done,tools = _tool_results(anth, req.get('messages', [])),req.get('tools') or []
    tool = (tools[0]['name'] if anth else tools[0]['function']['name']) if tools and done < k else None
    return _http(anth, n, bool(req.get('stream')), tool, done if tool else 0)

async def _conn(reader, writer):
    "Serve one keep-alive connection"
    try:
        while True:
            head = (await reader.readuntil(b'\r\n\r\n')).decode('latin-1').split('\r\n')
            hs = dict(h.split(':', 1) for h in head[1:] if ':' in h)
            size = int(next((v for h,v in hs.items() if h.lower() == 'content-length'), 0))
            writer.write(respond(head[0].split(' ')[1], await reader.readexactly(size) if size else b''))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError): pass
    finally: writer.close()

async def _main(port):
    srv = await asyncio.start_server(_conn, '127.0.0.1', port, backlog=1024)
    print(srv.sockets[0].getsockname()[1], flush=True)
    async with srv: await srv.serve_forever()

@contextlib.contextmanager
def serve():
    "Run the server in a child process; yield its root URL"
    p = subprocess.Popen([sys.executable, __file__], stdout=subprocess.PIPE, text=True)
    try: yield f'http://127.0.0.1:{int(p.stdout.readline())}'
    finally: p.terminate(); p.wait()

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--port', type=int, default=0)
    asyncio.run(_main(ap.parse_args().port))
