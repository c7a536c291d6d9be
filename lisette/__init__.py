__version__ = "0.0.1"
# lisette works offline: unless you chose otherwise, litellm reads its bundled price table instead of
# downloading one at import time (which stalls for seconds with no network). Set it to False for live prices.
import os as _os
_os.environ.setdefault('LITELLM_LOCAL_MODEL_COST_MAP', 'True')
from .compat import *
from .messages import *
from .tools import *
from .chat import *
from .asink import *
from .local import LocalLLM, register_local, DEFAULT_LOCAL
from .display import *
