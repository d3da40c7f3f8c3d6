"""Nimbus Python runtime client: handler loading, the Runtime API and the invoke loop.

Error types, messages and body shapes follow Lambda's Python runtime (awslambdaric).
"""

import http.client
import importlib
import json
import os
import sys
import traceback

import nimbus_ric_log
from nimbus_ric_context import LambdaContext
from nimbus_ric_log import log_error

CLIENT_DIR = os.path.dirname(os.path.realpath(__file__))
API_PREFIX = "/2018-06-01/runtime"
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
_XRAY_CAUSE_HEADER = "Lambda-Runtime-Function-XRay-Error-Cause"
_XRAY_CAUSE_MAX_BYTES = 8 * 1024  # Lambda allows 1 MiB; Node servers cap all headers at 16 KiB
_DECIMAL_MARK = "\x00nimbus-decimal\x00"


class FaultException(Exception):
    MARSHAL_ERROR = "Runtime.MarshalError"
    UNMARSHAL_ERROR = "Runtime.UnmarshalError"
    USER_CODE_SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
    HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"
    IMPORT_MODULE_ERROR = "Runtime.ImportModuleError"
    BUILT_IN_MODULE_CONFLICT = "Runtime.BuiltInModuleConflict"
    MALFORMED_HANDLER_NAME = "Runtime.MalformedHandlerName"
    LAMBDA_CONTEXT_UNMARSHAL_ERROR = "Runtime.LambdaContextUnmarshalError"

    def __init__(self, exception_type, msg, trace=None):
        super().__init__(msg)
        self.exception_type = exception_type
        self.msg = msg
        self.trace = trace


class RuntimeApiError(Exception):
    pass


# ---------------------------------------------------------------- errors


def make_error(message, error_type, stack_trace, request_id=None):
    return {
        "errorMessage": message if message else "",
        "errorType": error_type if error_type else "",
        "requestId": request_id if request_id is not None else "",
        "stackTrace": stack_trace if stack_trace else [],
    }


def user_frames(tb):
    """Traceback tuples from the first frame outside this client on, as Lambda reports them."""
    frames = [(f.filename, f.lineno, f.name, f.line) for f in traceback.extract_tb(tb)]
    for i, frame in enumerate(frames):
        if os.path.dirname(os.path.realpath(frame[0])) != CLIENT_DIR:
            return frames[i:]
    return frames


def _xray_fault(ex_type, ex_msg, frames):
    return {
        "working_directory": os.getcwd(),
        "exceptions": [{
            "message": ex_msg,
            "type": ex_type,
            "stack": [{"label": f[2], "path": f[0], "line": f[1]} for f in frames],
        }],
        "paths": list(dict.fromkeys(f[0] for f in frames)),
    }


def get_handler(handler):
    """Imports ``module.function`` (module path may use '/' or '.'); raises FaultException."""
    try:
        modname, fname = handler.rsplit(".", 1)
    except ValueError as e:
        raise FaultException(
            FaultException.MALFORMED_HANDLER_NAME, "Bad handler '{}': {}".format(handler, str(e))
        )
    try:
        if modname.split(".")[0] in sys.builtin_module_names:
            raise FaultException(
                FaultException.BUILT_IN_MODULE_CONFLICT,
                "Cannot use built-in module {} as a handler module".format(modname),
            )
        module = importlib.import_module(modname.replace("/", "."))
    except ImportError as e:
        raise FaultException(
            FaultException.IMPORT_MODULE_ERROR,
            "Unable to import module '{}': {}".format(modname, str(e)),
        )
    except SyntaxError as e:
        trace = ['  File "%s" Line %s\n    %s' % (e.filename, e.lineno, e.text)]
        raise FaultException(
            FaultException.USER_CODE_SYNTAX_ERROR,
            "Syntax error in module '{}': {}".format(modname, str(e)),
            trace,
        )
    try:
        return getattr(module, fname)
    except AttributeError:
        raise FaultException(
            FaultException.HANDLER_NOT_FOUND,
            "Handler '{}' missing on module '{}'".format(fname, modname),
        )


# ---------------------------------------------------------------- marshalling


class _Encoder(json.JSONEncoder):
    """json with Lambda's Decimal handling (written as the number's own digits)."""

    saw_decimal = False

    def default(self, o):
        decimal = sys.modules.get("decimal")
        if decimal is not None and isinstance(o, decimal.Decimal):
            if o.is_nan():
                return float("nan")
            self.saw_decimal = True
            return _DECIMAL_MARK + str(o) + _DECIMAL_MARK
        return super().default(o)


def _to_json(obj):
    encoder = _Encoder()
    text = encoder.encode(obj)
    if encoder.saw_decimal:
        import re

        mark = re.escape(json.dumps(_DECIMAL_MARK)[1:-1])
        text = re.sub('"%s(.*?)%s"' % (mark, mark), r"\1", text)
    return text


def _unmarshal(body, content_type):
    if content_type and content_type != "application/json":
        return body
    try:
        return json.loads(body)
    except Exception as e:
        raise FaultException(FaultException.UNMARSHAL_ERROR, "Unable to unmarshal input: {}".format(str(e)))


def _marshal(response):
    if isinstance(response, bytes):
        return response, "application/unknown"
    try:
        return _to_json(response).encode("utf-8"), "application/json"
    except Exception as e:
        raise FaultException(FaultException.MARSHAL_ERROR, "Unable to marshal response: {}".format(str(e)))


def _parse_json_header(value, name):
    try:
        return json.loads(value)
    except Exception as e:
        raise FaultException(
            FaultException.LAMBDA_CONTEXT_UNMARSHAL_ERROR,
            "Unable to parse {} JSON: {}".format(name, str(e)),
        )


# ---------------------------------------------------------------- Runtime API


class RuntimeApi(object):
    """One persistent HTTP/1.1 connection to the Runtime API (one per invoke loop)."""

    def __init__(self, address):
        self.address = address
        self.conn = None
        self.user_agent = "nimbus-python/%d.%d.%d" % sys.version_info[:3]

    def request(self, method, path, body=None, headers=None, expect=202):
        all_headers = {"User-Agent": self.user_agent}
        if headers:
            all_headers.update(headers)
        for attempt in (0, 1):
            reused = self.conn is not None
            if not reused:
                self.conn = http.client.HTTPConnection(self.address)
            try:
                self.conn.request(method, path, body, all_headers)
                resp = self.conn.getresponse()
                data = resp.read()
                break
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # A kept-alive connection the server had closed: reconnect once.
                self.conn.close()
                self.conn = None
                if not reused or attempt:
                    raise
        if resp.status != expect:
            raise RuntimeApiError(
                "Request to Lambda Runtime '%s' endpoint failed. Reason: '%s'. Response body: '%s'"
                % (path, resp.status, data.decode("utf-8", "replace"))
            )
        return resp, data

    def post_init_error(self, error):
        self.request("POST", API_PREFIX + "/init/error", json.dumps(error).encode("utf-8"),
                     {ERROR_TYPE_HEADER: error["errorType"], "Content-Type": "application/json"})


def _handle_invocation(api, request_handler, resp, body, json_format):
    header = resp.getheader
    invoke_id = header("Lambda-Runtime-Aws-Request-Id")
    invocation_id = header("Lambda-Runtime-Invocation-Id")
    tenant_id = header("Lambda-Runtime-Aws-Tenant-Id")
    nimbus_ric_log.set_invocation(invoke_id, tenant_id)
    trace_id = header("Lambda-Runtime-Trace-Id")
    if trace_id is not None:
        os.environ["_X_AMZN_TRACE_ID"] = trace_id
    else:
        os.environ.pop("_X_AMZN_TRACE_ID", None)

    error = None
    try:
        try:
            deadline_ms = int(header("Lambda-Runtime-Deadline-Ms") or 0)
        except ValueError:
            deadline_ms = 0
        client_context_json = header("Lambda-Runtime-Client-Context")
        cognito_json = header("Lambda-Runtime-Cognito-Identity")
        context = LambdaContext(
            invoke_id,
            _parse_json_header(client_context_json, "Client Context") if client_context_json else None,
            _parse_json_header(cognito_json, "Cognito Identity") if cognito_json else None,
            deadline_ms,
            header("Lambda-Runtime-Invoked-Function-Arn"),
            tenant_id,
        )
        event = _unmarshal(body, header("Content-Type"))
        result, content_type = _marshal(request_handler(event, context))
    except FaultException as e:
        xray = _xray_fault("LambdaValidationError", e.msg, [])
        error = make_error(e.msg, e.exception_type, e.trace, invoke_id)
    except Exception:
        etype, value, tb = sys.exc_info()
        frames = user_frames(tb)
        del tb
        xray = _xray_fault(etype.__name__, str(value), frames)
        error = make_error(str(value), etype.__name__, traceback.format_list(frames), invoke_id)

    extra = {"Lambda-Runtime-Invocation-Id": invocation_id} if invocation_id else {}
    path = "%s/invocation/%s/" % (API_PREFIX, invoke_id)
    if error is not None:
        log_error(error, json_format)
        headers = {"Content-Type": "application/json", ERROR_TYPE_HEADER: "Unhandled"}
        cause = json.dumps(xray)
        if len(cause) < _XRAY_CAUSE_MAX_BYTES:
            headers[_XRAY_CAUSE_HEADER] = cause
        headers.update(extra)
        api.request("POST", path + "error", json.dumps(error).encode("utf-8"), headers)
    else:
        extra["Content-Type"] = content_type
        api.request("POST", path + "response", result, extra)


def invoke_loop(address, request_handler, json_format):
    """GET /next, run the handler, post the outcome; forever (raises on Runtime API failure)."""
    api = RuntimeApi(address)
    while True:
        resp, body = api.request("GET", API_PREFIX + "/invocation/next", expect=200)
        _handle_invocation(api, request_handler, resp, body, json_format)
