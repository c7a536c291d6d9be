"The `lisette` command under conditions a notebook can't show: an interrupt that lands mid-stream, every time."
import os, sys, signal, subprocess
from conftest import stall

def test_ctrl_c_in_cli_mid_stream(fx):
    "SIGINT while the CLI streams prints one line and exits 130, no traceback"
    fx.push(stall(2))   # the answer starts, then the server sends nothing more: the interrupt always lands mid-stream
    env = dict(os.environ, OPENAI_API_BASE=fx.base, OPENAI_API_KEY='sk-test', LITELLM_LOCAL_MODEL_COST_MAP='True')
    p = subprocess.Popen([sys.executable, '-c', 'import sys; from lisette.cli import main; sys.exit(main())',
                          '-m', 'openai/fixture-model', 'Count from 1 to 300.'],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    first = p.stdout.read(1)                   # the answer has started streaming
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert first == 't' and p.returncode == 130
    assert 'Traceback' not in err and err.strip().splitlines()[-1] == 'lisette: interrupted'
    assert len(fx.requests) == 1 and fx.requests[0]['body']['stream']
