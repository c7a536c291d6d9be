__version__ = "0.0.1"
from .compat import *
from .messages import *
from .tools import *
from .chat import *
