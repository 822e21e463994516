"""Where a failure came from: the failing op's own message, and the user's file and line.

TensorFlow reports an op that fails inside a ``tf.function`` as::

    Graph execution error:

    Detected at node assert_less/Assert/AssertGuard/Assert defined at (most recent call last):
      File "/home/me/model.py", line 12, in loss
    (blank lines, more frames; with several replicas, one such block each, then
    "2 root error(s) found." and "(0) INVALID_ARGUMENT:  " before each message)
    assertion failed: [loss blew up] [Condition x < y did not hold element-wise:] ...
         [[{{node assert_less/Assert/AssertGuard/Assert}}]] [Op:__inference_train_step_77]

so its first line says nothing. A ``tf.py_function`` (or ``Dataset.from_generator``)
appends its Python function's traceback to the op's message. This module reads the
op's message and the innermost user frame out of such text, or out of a Python
exception's own traceback. It imports neither TensorFlow nor optrun: :mod:`optrun.errors`
builds on it.
"""

from __future__ import annotations

import os
import re
import sys
import sysconfig
import traceback
from dataclasses import dataclass
from types import TracebackType

#: What a one-line failure adds to say how to see the rest (the CLI's --verbose prints the traceback).
TRACE_HINT = "run with -v for the full trace"

_PREAMBLE = "Graph execution error:"
_DEFINED_AT = re.compile(r"^Detected at node .* defined at \(most recent call last\):$")
_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<function>\S+)')
_ROOTS = re.compile(r"^\d+ root error\(s\) found\.?$")
_ROOT_PREFIX = re.compile(r"^\(\d+\) [A-Z_]+:\s*")  # "(0) INVALID_ARGUMENT:  " before each root error
_NODE_NAMES = re.compile(r"\{\{[^}]*\}\}\s*")  # "{{function_node ...}}", "{{node ...}}"
_OP_SUFFIX = re.compile(r"\s*\[Op:[^\]]*\](?: name:\s*\S*)?$")
_NODE_LINE = re.compile(r"^\[\[.*\]\]$")  # "[[{{node ...}}]]": where in the graph, not what went wrong
_NESTED = "Traceback (most recent call last):"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_KERAS_WRAPPER = re.compile(r"^(?P<type>\w+(?:Error|Exception): )?Exception encountered when calling .*\.$")


@dataclass(frozen=True)
class Frame:
    """One traceback frame: the file's path, the line number and the function's name."""

    file: str
    line: int | None
    function: str

    def __str__(self) -> str:
        line = "" if self.line is None else f":{self.line}"
        return f"{os.path.basename(self.file)}{line} in {self.function}"


#: How AutoGraph's rewrites of functions are named: ``tf__name`` in a temporary file.
AUTOGRAPH_FILE = "__autograph_generated_file"


def traceback_frames(tb: TracebackType | None) -> list[Frame]:
    """The frames of a traceback, outermost first.

    AutoGraph's rewrite of a function runs with the original's globals, so its frame is named
    as the original: that file and function, with no line (the rewrite's lines are not the
    file's). The bodies of its ``if`` and loops (``if_body``, ``loop_body``: functions nested in
    the rewrite, in its file) are named as the function they are in. A rewrite whose module has
    no ``__file__`` keeps its temporary file's name.
    """
    frames = []
    rewritten: dict[str, str] = {}  # a rewrite's file: the function it rewrote
    for frame, line in traceback.walk_tb(tb):
        file, name = frame.f_code.co_filename, frame.f_code.co_name
        at: int | None = line
        original = frame.f_globals.get("__file__")
        if os.path.basename(file).startswith(AUTOGRAPH_FILE) and original:
            if name.startswith("tf__"):
                rewritten[file] = name.removeprefix("tf__")
            file, name, at = str(original), rewritten.get(file, name), None
        frames.append(Frame(file, at, name))
    return frames


@dataclass(frozen=True)
class Cause:
    """What went wrong (``"TypeName: message"`` in one line) and where in user code, when known."""

    message: str
    at: Frame | None = None

    @property
    def file(self) -> str | None:
        """The path of the user's file, when known."""
        return self.at.file if self.at is not None else None

    @property
    def line(self) -> int | None:
        """The line in the user's file, when known."""
        return self.at.line if self.at is not None else None

    def __str__(self) -> str:
        return f"{self.message} (at {self.at})" if self.at is not None else self.message


def _split(text: str) -> tuple[str, str]:
    """``(preamble, op message)`` of a graph execution error; ``("", text)`` for any other text."""
    lines = text.strip().splitlines()
    if not lines or lines[0].strip() != _PREAMBLE:
        return "", text.strip()
    for index, line in enumerate(lines[1:], start=1):
        stripped = line.strip()
        if stripped and not (_DEFINED_AT.match(stripped) or _FRAME.match(line) or _ROOTS.match(stripped)):
            return "\n".join(lines[:index]), "\n".join(lines[index:]).strip()
    return text.strip(), ""


def message_line(text: str, tensorflow: bool = False) -> str:
    """The line of an error message that says what went wrong.

    * TensorFlow's staged errors ("in user code:", frames, then the error): that error;
    * its runtime errors ("Graph execution error:", where the op was made, then the
      op's message): the first line of that message (the first replica's, of several);
    * Keras's "Exception encountered when calling X.call()." : the line after it;
    * anything else: the first line.

    Terminal colours go; so, for a TensorFlow error (``tensorflow``), do its
    "{{function_node ...}}" and "[Op:...]" node names.
    """
    lines = [line for line in _ANSI.sub("", text).strip().splitlines() if line.strip()]
    if not lines:
        return ""
    head = lines[0].strip()
    if head.startswith("in user code") or head.endswith("in user code:"):
        lines = _after_frames(lines[1:]) or lines[-1:]
    elif head == _PREAMBLE:
        lines = _split("\n".join(lines))[1].splitlines()
        tensorflow = True
    found = ""
    for index, raw in enumerate(lines):
        line = _ROOT_PREFIX.sub("", raw.strip()) if tensorflow else raw.strip()
        if not line or (tensorflow and _NODE_LINE.match(line)):
            continue
        found = line
        wrapped = _KERAS_WRAPPER.match(line)
        if wrapped and index + 1 < len(lines):  # the layer's own message is on the next line
            found = f"{wrapped['type'] or ''}{lines[index + 1].strip()}"
        break
    return _OP_SUFFIX.sub("", _NODE_NAMES.sub("", found)).strip() if tensorflow else found


def _after_frames(lines: list[str]) -> list[str]:
    """The lines after a staged error's last ``File ...`` frame and its (deeper indented) code."""
    last = max((i for i, line in enumerate(lines) if _FRAME.match(line)), default=None)
    if last is None:
        return []
    indent = len(lines[last]) - len(lines[last].lstrip())
    rest = lines[last + 1 :]
    while rest and len(rest[0]) - len(rest[0].lstrip()) > indent:
        rest = rest[1:]
    return rest


def _parse_frames(text: str) -> list[Frame]:
    found = (_FRAME.match(line) for line in text.splitlines())
    return [Frame(m["file"], int(m["line"]), m["function"]) for m in found if m]


def user_frame_of(error: BaseException) -> Frame | None:
    """The innermost frame of user code that ``error`` names, or None.

    In order: the Python traceback a py_function's message carries (where its
    function raised), TensorFlow's "defined at" frames (where the failing op was
    made), any other frames the message lists (a staged error's "in user code:"),
    the exception's own traceback (a Python error).
    """
    text = str(error)
    preamble, message = _split(text)
    nested = message.split(_NESTED, 1)
    candidates = [
        _parse_frames(nested[1]) if len(nested) == 2 else [],
        _parse_frames(preamble),
        _parse_frames(text),
        traceback_frames(error.__traceback__),
    ]
    for frames in candidates:
        found = user_frame(frames)
        if found is not None:
            return found
    return None


def user_frame(frames: list[Frame]) -> Frame | None:
    """The innermost frame of user code in ``frames`` (listed outermost first), or None.

    Library frames (the stdlib, site-packages, optrun and its CLI) never count.
    When optrun is in the stack, only frames it called count: code further out
    (a script or test calling optrun, the CLI's entry point) is the caller, not the culprit.
    """
    ours = [_is_ours(frame.file) for frame in frames]
    for index in range(len(frames) - 1, -1, -1):
        if ours[index] or _is_library(frames[index].file):
            continue
        if any(ours) and not any(ours[:index]):
            return None  # optrun's caller
        return frames[index]
    return None


def _is_ours(path: str) -> bool:
    roots = [os.path.dirname(os.path.abspath(__file__))]
    cli = sys.modules.get("optrun_cli")  # the CLI, when loaded: its frames are no user's
    if cli is not None and getattr(cli, "__file__", None):
        roots.append(os.path.dirname(os.path.abspath(str(cli.__file__))))
    return _under(path, roots)


def _is_library(path: str) -> bool:
    if path.startswith("<") or "site-packages" in path or "dist-packages" in path:
        return True  # "<frozen runpy>", "<string>": nothing a user could open
    if os.path.basename(path).startswith(AUTOGRAPH_FILE):
        return True  # AutoGraph's rewrite of a function, in a temporary file
    paths = sysconfig.get_paths()
    return _under(path, [paths[key] for key in ("stdlib", "platstdlib", "scripts") if key in paths])


def _under(path: str, roots: list[str]) -> bool:
    full = os.path.abspath(path)
    return any(full.startswith(os.path.abspath(root) + os.sep) for root in roots)


#: XLA's "No registered 'EagerPyFunc' OpKernel for XLA_CPU_JIT devices": an op it cannot compile.
_NO_XLA_KERNEL = re.compile(r"No registered '(\w+)' OpKernel for XLA_")
#: The longest line :func:`build_failure` gives: TensorFlow's first lines can run to kilobytes.
REASON_CHARS = 200


def no_xla_kernel(text: str) -> list[str]:
    """The ops an XLA error ``text`` says XLA has no kernel for, each once, in order."""
    return list(dict.fromkeys(_NO_XLA_KERNEL.findall(text)))


def build_failure(error: BaseException) -> str:
    """Why a faster evaluation (XLA) could not be built, in one short line: the ops XLA cannot
    compile, else the error's own line."""
    text = str(error)
    ops = no_xla_kernel(text)
    if ops:
        return f"XLA cannot compile {', '.join(ops)} (the loss uses an op XLA has no kernel for)"
    line = message_line(text, tensorflow=True) or type(error).__name__
    return line if len(line) <= REASON_CHARS else line[: REASON_CHARS - 1] + "…"
