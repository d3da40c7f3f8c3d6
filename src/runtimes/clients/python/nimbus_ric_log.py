"""Nimbus Python runtime client: stdout handling and Lambda's log formats.

Text: ``[LEVEL]\\t<UTC time>.<ms>Z\\t<request id>\\t<message>``, one record per line (embedded
newlines become '\\r' so a platform that splits stdout on '\\n' keeps the record whole).
JSON: one object per line with Lambda's fields. Function and init errors are logged as
``[ERROR] Type: message`` + traceback, joined with '\\r', as Lambda's runtime does.
"""

import json
import logging
import sys
import threading
import time
import traceback

DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
_ERROR_LOG_IDENT = "\u00a0"  # Lambda indents traceback lines with NO-BREAK SPACE
_RESERVED_FIELDS = frozenset((
    "name", "msg", "args", "levelname", "levelno", "pathname", "filename", "module",
    "exc_info", "exc_text", "stack_info", "lineno", "funcName", "created", "msecs",
    "relativeCreated", "thread", "threadName", "processName", "process", "aws_request_id",
    "tenant_id", "_frame_type",
))


class Unbuffered(object):
    """Flushes after every write, as Lambda's runtime does, so nothing is lost on exit."""

    def __init__(self, stream):
        self.stream = stream

    def __getattr__(self, attr):
        return getattr(self.stream, attr)

    def write(self, msg):
        n = self.stream.write(msg)
        self.stream.flush()
        return n

    def writelines(self, msgs):
        self.stream.writelines(msgs)
        self.stream.flush()


_output_lock = threading.Lock()


def emit(text):
    """Writes one whole log record to stdout."""
    with _output_lock:
        sys.stdout.write(text)


class _SharedState(object):
    """The current invocation, seen by every thread (one invocation at a time)."""

    request_id = ""
    tenant_id = None


class _ThreadState(threading.local):
    """The current invocation of each invoke loop (managed-instance mode)."""

    request_id = ""
    tenant_id = None


state = _SharedState()


def use_thread_state():
    global state
    state = _ThreadState()


def set_invocation(request_id, tenant_id):
    state.request_id = request_id
    state.tenant_id = tenant_id


class _RequestIdFilter(logging.Filter):
    def filter(self, record):
        record.aws_request_id = state.request_id or ""
        record.tenant_id = state.tenant_id
        return True


class _LambdaLoggerHandler(logging.Handler):
    def __init__(self, single_line):
        logging.Handler.__init__(self)
        self.single_line = single_line

    def emit(self, record):
        msg = self.format(record)
        if self.single_line:
            if msg.endswith("\n"):
                msg = msg[:-1]
            msg = msg.replace("\n", "\r") + "\n"
        emit(msg)


class _JsonFormatter(logging.Formatter):
    def __init__(self):
        super().__init__(datefmt=DATETIME_FORMAT)
        self._encode = json.JSONEncoder(ensure_ascii=False, default=str).encode

    def formatTime(self, record, datefmt=None):
        return "%s.%03dZ" % (time.strftime(DATETIME_FORMAT, time.gmtime(record.created)), int(record.msecs))

    def format(self, record):
        record.levelno = min(50, max(0, record.levelno)) // 10 * 10
        record.levelname = logging.getLevelName(record.levelno)
        exc = record.exc_info if record.exc_info and record.exc_info[0] is not None else None
        result = {
            "timestamp": self.formatTime(record),
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
            "stackTrace": traceback.format_tb(exc[2]) if exc else None,
            "errorType": exc[0].__name__ if exc else None,
            "errorMessage": str(exc[1]) if exc else None,
            "requestId": getattr(record, "aws_request_id", None),
            "location": "%s:%s:%s" % (record.pathname, record.funcName, record.lineno) if exc else None,
        }
        if getattr(record, "tenant_id", None) is not None:
            result["tenantId"] = record.tenant_id
        for key, value in record.__dict__.items():
            if key not in _RESERVED_FIELDS and key not in result:
                result[key] = value
        return self._encode({k: v for k, v in result.items() if v is not None}) + "\n"


def setup_logging(json_format, level_env):
    """Gives the root logger Lambda's handler, format and level."""
    logging.Formatter.converter = time.gmtime
    root = logging.getLogger()
    handler = _LambdaLoggerHandler(single_line=not json_format)
    if json_format:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            DATETIME_FORMAT,
        ))
    level = {"TRACE": "DEBUG"}.get(level_env, level_env).upper() if level_env else ""
    if level in logging._nameToLevel:
        root.setLevel(level)
    handler.addFilter(_RequestIdFilter())
    root.addHandler(handler)


def log_error(error_result, json_format):
    """Logs an init or invocation error the way Lambda's runtime does."""
    if json_format:
        record = {"timestamp": time.strftime(DATETIME_FORMAT, time.gmtime()), "level": "ERROR"}
        record.update(error_result)
        emit(json.dumps(record) + "\n")
        return
    description = "[ERROR]"
    if error_result.get("errorType"):
        description += " " + error_result["errorType"]
    if error_result.get("errorMessage"):
        if error_result.get("errorType"):
            description += ":"
        description += " " + error_result["errorMessage"]
    lines = [description]
    stack_trace = error_result.get("stackTrace")
    if stack_trace is not None:
        lines.append("Traceback (most recent call last):")
        for element in stack_trace:
            if element == "":
                lines.append("")
                continue
            for line in element.splitlines():
                stripped = line.lstrip(" ")
                lines.append(_ERROR_LOG_IDENT * (len(line) - len(stripped)) + stripped)
    emit("\r".join(lines) + "\n")
