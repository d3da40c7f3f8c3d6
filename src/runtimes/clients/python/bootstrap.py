"""Nimbus's Python runtime client.

Runs inside an execution environment as ``python3 bootstrap.py``: talks to the Lambda
Runtime API 2018-06-01 at ``$AWS_LAMBDA_RUNTIME_API``, imports the handler named by
``$_HANDLER`` from ``$LAMBDA_TASK_ROOT`` and runs invocations the way Lambda's Python
runtime does (error shapes and messages, the ``context`` object, log line formats).
Standard library only; Python 3.9+.

Its helper modules are named ``nimbus_ric_*`` and are imported before this directory is
taken off ``sys.path``, so nothing here can shadow a user module.
"""

import os
import sys

_CLIENT_DIR = os.path.dirname(os.path.realpath(__file__))


def _load_client_modules():
    sys.path.insert(0, _CLIENT_DIR)
    # The client may live on a read-only path; its modules are small: never write bytecode.
    dont_write = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        import nimbus_ric_invoke
        import nimbus_ric_log
    finally:
        sys.dont_write_bytecode = dont_write
    # Drops both our entry and the script directory Python put first (the same place).
    sys.path[:] = [p for p in sys.path if not p or os.path.realpath(p) != _CLIENT_DIR]
    task_root = os.environ.get("LAMBDA_TASK_ROOT")
    if task_root:
        sys.path.insert(0, task_root)
    return nimbus_ric_invoke, nimbus_ric_log


invoke, log = _load_client_modules()

import http.client  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import threading  # noqa: E402
import traceback  # noqa: E402

_UNHANDLED_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. "
    "However, in rare cases, a Lambda runtime update can cause unexpected function behavior. "
    "For functions using managed runtimes, runtime updates can be triggered by a function change, "
    "or can be applied automatically. To determine if the runtime has been updated, check the "
    "runtime version in the INIT_START log entry. If this error correlates with a change in the "
    "runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html"
)


def _on_sigterm(signum, frame):
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)


def _fatal(message):
    sys.stderr.write("nimbus python runtime: %s\n" % message)


def _init_error(exc):
    if isinstance(exc, invoke.FaultException):
        return invoke.make_error(exc.msg, exc.exception_type, exc.trace)
    tb = exc.__traceback__
    error = invoke.make_error(str(exc), type(exc).__name__, traceback.format_list(invoke.user_frames(tb)))
    del tb
    return error


def main():
    signal.signal(signal.SIGTERM, _on_sigterm)
    sys.stdout = log.Unbuffered(sys.stdout)
    sys.stderr = log.Unbuffered(sys.stderr)
    env = os.environ
    address = env.get("AWS_LAMBDA_RUNTIME_API")
    if not address:
        _fatal("AWS_LAMBDA_RUNTIME_API is not set")
        return 1
    try:
        concurrency = int(env.get("AWS_LAMBDA_MAX_CONCURRENCY") or 1)
    except ValueError:
        concurrency = 1
    if concurrency > 1:
        log.use_thread_state()
    json_format = (env.get("AWS_LAMBDA_LOG_FORMAT") or "").upper() == "JSON"
    log.setup_logging(json_format, env.get("AWS_LAMBDA_LOG_LEVEL"))

    try:
        request_handler = invoke.get_handler(env.get("_HANDLER", ""))
    except Exception as e:
        error = _init_error(e)
        logging.warning(_UNHANDLED_WARNING)
        log.log_error(error, json_format)
        try:
            invoke.RuntimeApi(address).post_init_error(error)
        except Exception as post_error:
            _fatal(str(post_error))
        return 1

    if concurrency <= 1:
        try:
            invoke.invoke_loop(address, request_handler, json_format)
        except (invoke.RuntimeApiError, OSError, http.client.HTTPException) as e:
            _fatal(str(e) or type(e).__name__)
        return 1

    # Managed-instance mode: one invoke loop (and connection) per allowed concurrent invoke.
    failed = threading.Event()

    def guarded_loop():
        try:
            invoke.invoke_loop(address, request_handler, json_format)
        except BaseException as e:
            _fatal(str(e) or type(e).__name__)
        failed.set()

    for i in range(concurrency):
        threading.Thread(target=guarded_loop, name="nimbus-invoke-%d" % i, daemon=True).start()
    failed.wait()
    return 1


if __name__ == "__main__":
    sys.exit(main())
