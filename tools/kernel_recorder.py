"""Record what a Jupyter kernel sends: every iopub message of each cell, with its size on the wire (used by
`tests/test_kernel.py` and `bench/display.py`)."""
from nbclient import NotebookClient

def wire_bytes(session, msg) -> int:
    "Bytes of `msg` on the kernel's iopub socket: delimiter, signature and the four JSON frames, as `session` packs them."
    frames = [session.pack(msg[k]) for k in ('header', 'parent_header', 'metadata', 'content')]
    return len(b'<IDS|MSG>') + len(session.sign(frames)) + sum(map(len, frames)) + sum(map(len, msg.get('buffers') or []))

class Recorder(NotebookClient):
    "A `NotebookClient` keeping every iopub message of each cell in order (`msgs[cell_index]`), with its `wire_bytes`."
    def __init__(self, nb, **kw):
        super().__init__(nb, **kw)
        self.msgs = {}
    def process_message(self, msg, cell, cell_index):
        self.msgs.setdefault(cell_index, []).append({**msg, 'wire_bytes': wire_bytes(self.kc.session, msg)})
        return super().process_message(msg, cell, cell_index)
