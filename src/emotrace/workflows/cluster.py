"""The one place that connects to Ray: a local instance, or an existing cluster (``--address``).

``tune`` connects here, and a pipeline runner runs independent steps on a cluster with
:func:`run_remote`. Starting a cluster, its token and ``--address`` are described in
docs/usage.md, "Ray clusters".

Token authentication. In Ray 2.60, ``ray start --head`` turns token authentication on when the
machine has a token, and a local ``ray.init()`` always does (writing ``~/.ray/auth_token`` if
there is none, so one local ``emotrace tune`` is enough: the next ``ray start --head`` uses it).
A client presents the token only when its own ``RAY_AUTH_MODE`` is ``token``, and Ray turns that
on by itself only for a cluster it finds without an address (``address="auto"``), never for an
explicit ``--address``: such a client sent no token and the cluster refused it
(``InvalidAuthToken``). :func:`connect` applies Ray's own rule
for ``auto`` to every address: with ``RAY_AUTH_MODE`` unset and a token available where Ray reads
it (``RAY_AUTH_TOKEN``, then the file ``RAY_AUTH_TOKEN_PATH``, then ``~/.ray/auth_token``), it
sets ``RAY_AUTH_MODE=token`` and lets Ray read the token. An explicit ``RAY_AUTH_MODE`` is left
as it is. Ray reads these variables once per process and caches them, so they are read again
before each connection (a change of the environment since ``import ray`` is seen).
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from emotrace.errors import EmotraceError

AUTH_MODE, AUTH_TOKEN, AUTH_TOKEN_PATH = "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"
#: how a user gives the cluster's token, for error messages
TOKEN_HELP = (f"Set {AUTH_TOKEN} to the cluster's token (`ray get-auth-token` on its head node "
              f"prints it), or {AUTH_TOKEN_PATH} to a file holding it (default "
              f"~/.ray/auth_token)")
#: how long the first question to a cluster may take (a port without Ray: about 3 x this)
PROBE_MS = 5000


class RemoteJobError(RuntimeError):
    """A job of :func:`run_remote` raised an exception that is not an :class:`EmotraceError`.

    ``index`` (0-based) and ``job_args`` name the job; ``cause`` is the job's own exception (as
    far as Ray could send it back), also chained as ``__cause__``."""

    def __init__(self, message: str, index: int, job_args: tuple, cause: BaseException | None):
        super().__init__(message)
        self.index, self.job_args, self.cause = index, job_args, cause


def default_token_path() -> Path:
    """Where Ray looks for the token when neither variable is set."""
    return Path.home() / ".ray" / "auth_token"


def token_source() -> str | None:
    """Where Ray will read the token from, in Ray's order of precedence; None: no token."""
    if os.environ.get(AUTH_TOKEN, "").strip():
        return AUTH_TOKEN
    if os.environ.get(AUTH_TOKEN_PATH):
        return f"{AUTH_TOKEN_PATH}={os.environ[AUTH_TOKEN_PATH]}"
    if default_token_path().is_file():
        return str(default_token_path())
    return None


def _check_token_path() -> None:
    """Ray treats an unreadable or empty ``RAY_AUTH_TOKEN_PATH`` as fatal; say so clearly."""
    path = os.environ.get(AUTH_TOKEN_PATH)
    if not path or os.environ.get(AUTH_TOKEN, "").strip():
        return
    try:
        ok = bool(Path(path).expanduser().read_text(encoding="utf-8").strip())
    except (OSError, UnicodeDecodeError):
        ok = False
    if not ok:
        raise EmotraceError(f"{AUTH_TOKEN_PATH}={path}: no token there (the file is missing, "
                            f"unreadable or empty). Point it to a file holding the cluster's "
                            f"token, or unset it.")


def _refresh_ray_auth() -> None:
    """Make Ray read ``RAY_AUTH_MODE`` and the token from the environment again (it caches both
    per process; Ray does the same when it turns token mode on for a new local cluster)."""
    try:
        from ray._raylet import AuthenticationTokenLoader, Config
    except ImportError:  # a Ray without token authentication
        return
    Config.initialize("")
    AuthenticationTokenLoader.instance().reset_cache()


def _auth_failure(e: BaseException) -> bool:
    """Whether ``e`` (or an exception it was raised from) is the cluster refusing the token."""
    seen: BaseException | None = e
    for _ in range(10):
        if seen is None:
            return False
        if type(seen).__name__ == "AuthenticationError" or "InvalidAuthToken" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _host_port(address: str) -> tuple[str, int] | None:
    """``(host, port)`` of ``host:port`` or ``ray://host:port``; None for ``auto`` and the like."""
    rest = address.removeprefix("ray://")
    host, sep, port = rest.rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def _cannot_connect(address: str, why: str) -> EmotraceError:
    return EmotraceError(f"--address {address}: cannot connect to a Ray cluster ({why}). Start "
                         f"one with `ray start --head` and pass its address, or leave --address "
                         f"out to run locally.")


def _auth_error(address: str, source: str | None) -> EmotraceError:
    mode = os.environ.get(AUTH_MODE)
    if mode is not None and mode.lower() != "token":
        why = (f"{AUTH_MODE}={mode} here, so no token was presented, but the cluster uses token "
               f"authentication. Unset {AUTH_MODE} (or set it to token).")
    elif source is None:
        why = "no token was found here, but the cluster uses token authentication."
    else:
        why = f"it refused the token read from {source} (not this cluster's token?)."
    return EmotraceError(f"--address {address}: the Ray cluster did not accept this client: {why} "
                         f"{TOKEN_HELP}.")


def _probe(address: str, gcs: str, source: str | None) -> None:
    """Ask the cluster's GCS for its id once, so that a refused token or a port without a Ray
    cluster is told at once (``ray.init`` retries for 20 s, 1 s apart, whatever the error)."""
    try:
        from ray._raylet import InnerGcsClient
        from ray.exceptions import AuthenticationError
    except ImportError:
        return
    try:
        InnerGcsClient.standalone(gcs, None, PROBE_MS)
    except AuthenticationError:
        raise _auth_error(address, source) from None
    except (TypeError, AttributeError):  # another Ray: leave it to ray.init
        return
    except Exception as e:  # noqa: BLE001 - Ray's RpcError and the like
        raise _cannot_connect(address, f"no Ray cluster answers at {gcs}: "
                                       f"{str(e).splitlines()[0][:200]}") from None


def connect(address: str | None, cpus: int | None) -> None:
    """Start Ray on this machine (``address`` None, ``cpus`` CPUs, default all) or connect to the
    Ray cluster at ``address`` (``host:port`` as printed by ``ray start --head``, or ``auto``),
    presenting the cluster's token as Ray reads it (module docstring).

    Raises :class:`EmotraceError` naming the address when nothing listens there, and naming the
    token variables when the cluster refuses this client.
    """
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline: no usage reporting
    if ray.is_initialized():
        raise EmotraceError("Ray is already initialised in this process; call ray.shutdown() "
                            "first.")
    if address is None:
        _refresh_ray_auth()
        ray.init(address="local", num_cpus=cpus or os.cpu_count() or 1, include_dashboard=False,
                 logging_level=logging.ERROR, log_to_driver=False, configure_logging=True)
        return
    hp = _host_port(address)
    if hp is not None:  # fail at once, not after Ray's minutes of retries
        try:
            socket.create_connection(hp, timeout=5).close()
        except OSError as e:
            raise _cannot_connect(address, f"nothing answers at {hp[0]}:{hp[1]}: "
                                           f"{e.strerror or e}") from None
    _check_token_path()
    source = token_source()
    if AUTH_MODE not in os.environ and source is not None:
        os.environ[AUTH_MODE] = "token"  # Ray's own rule for clusters found without an address
    if os.environ.get(AUTH_MODE, "").lower() == "token" and source is None:
        raise _auth_error(address, None)
    _refresh_ray_auth()
    if hp is not None and not address.startswith("ray://"):
        _probe(address, f"{hp[0]}:{hp[1]}", source)
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR,
                 log_to_driver=False)
    except Exception as e:  # noqa: BLE001 - Ray's connection errors have no common base
        if _auth_failure(e):
            raise _auth_error(address, source) from None
        if isinstance(e, ConnectionError | ValueError | RuntimeError):
            raise _cannot_connect(address, str(e).splitlines()[0][:200]) from None
        raise


def _call(fn: Callable, args: tuple) -> Any:
    return fn(*args)


def _job_name(fn: Callable, index: int, total: int, args: tuple) -> str:
    shown = ", ".join(repr(a) for a in args)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    return f"job {index + 1} of {total} ({getattr(fn, '__module__', '?')}." \
           f"{getattr(fn, '__qualname__', fn)}({shown}))"


def run_remote(fn: Callable, args: list[tuple], *, address: str, cpus_per_job: int = 1) -> list:
    """Run ``fn(*a)`` for every ``a`` in ``args`` as Ray tasks on the cluster at ``address``;
    return their results in the order of ``args``.

    ``fn`` should be a module-level function of an installed module (e.g. of emotrace): Ray sends
    it to the workers by name, so every node must have the same emotrace installed (the same venv,
    or the same version). Its arguments and result must pickle. Each job reserves
    ``cpus_per_job`` CPUs of the cluster and runs once (no retries). The first job to fail stops
    the rest: an :class:`EmotraceError` of a job is re-raised as an EmotraceError that names the
    job, any other exception as :class:`RemoteJobError` naming the job (its ``cause`` is the
    job's exception). Connects with :func:`connect` and disconnects at the end, unless Ray is
    already initialised in this process (then that connection is used and kept).
    """
    if cpus_per_job < 1:
        raise EmotraceError(f"cpus_per_job {cpus_per_job}: need at least 1 CPU per job.")
    args = [tuple(a) for a in args]
    if not args:
        return []
    import ray
    from ray.exceptions import RayError, RayTaskError

    owned = not ray.is_initialized()
    if owned:
        connect(address, None)
    try:
        task = ray.remote(num_cpus=cpus_per_job, max_retries=0)(_call)
        refs = [task.remote(fn, a) for a in args]
        index = {ref: i for i, ref in enumerate(refs)}
        results: list[Any] = [None] * len(refs)
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            i = index[done[0]]
            try:
                results[i] = ray.get(done[0])
            except RayError as e:
                for ref in pending:
                    try:
                        ray.cancel(ref, force=True)
                    except RayError:  # finished meanwhile
                        pass
                job = _job_name(fn, i, len(args), args[i])
                cause = e.cause if isinstance(e, RayTaskError) else None
                if isinstance(cause, EmotraceError):
                    raise EmotraceError(f"{job}: {cause}") from None
                what = f"{type(cause).__name__}: {cause}" if cause is not None else \
                    f"{type(e).__name__}: {str(e).splitlines()[0][:300]}"
                raise RemoteJobError(f"{job} failed on the Ray cluster at {address}: {what}",
                                     i, args[i], cause) from (cause or e)
        return results
    finally:
        if owned:
            ray.shutdown()
