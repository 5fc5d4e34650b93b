"""The options of a Spark write: parsed on the driver, turned into a Config on each executor.

Spark hands a data source its options as strings under case-insensitive names. The
names are :class:`~ingest.config.Config`'s (``rps``, ``dataset_id``,
``processing_timeout``, ``call_timeout``...), plus:

* ``token``: the secret. A personal access token when ``user_id`` and ``app_id`` are
  known (as options or from the executors' ``CLARIFAI_USER_ID``/``CLARIFAI_APP_ID``),
  an app key otherwise. It is the only name a secret may travel under: Spark redacts
  option values whose name matches ``spark.redaction.regex`` in plans and in the UI
  (its default, ``(?i)secret|password|token|access[.]?key|credential`` in Spark 4.3,
  matches ``token``; https://spark.apache.org/docs/latest/configuration.html), and
  neither ``pat`` nor ``api_key`` matches it, so those two are refused.
* ``tasks``: how many write tasks run at once; they share ``rps`` evenly.
* ``report`` and ``failures``: where the driver writes the JSON report and the failed
  rows (paths on the driver's file system).
* ``base_dir``: the folder relative ``file`` paths are read from (on the executors).

Without ``token`` the executors read ``CLARIFAI_PAT`` (or ``CLARIFAI_API_KEY``),
``CLARIFAI_USER_ID``, ``CLARIFAI_APP_ID`` and ``CLARIFAI_API_BASE`` from their own
environment, as :meth:`Config.from_env` does.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from ingest.config import Config
from ingest.errors import ConfigError

__all__ = ["SparkOptions", "slots_from_conf"]

_SECRET_FIELDS = ("pat", "api_key")
_CONFIG_FIELDS: dict[str, str] = {
    f.name: str(f.type) for f in fields(Config) if f.name not in (*_SECRET_FIELDS, "strict")
}
_SPARK_FIELDS = ("token", "tasks", "report", "failures", "base_dir", "partitions")
_LOCAL = re.compile(r"local\[(\d+|\*)(?:,\s*\d+)?\]")


def _convert(name: str, kind: str, value: object) -> Any:
    if not isinstance(value, str):
        return value
    text = value.strip()
    try:
        if kind == "int":
            return int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            if text.lower() in ("true", "1", "yes"):
                return True
            if text.lower() in ("false", "0", "no"):
                return False
            raise ValueError(text)
    except ValueError:
        raise ConfigError(f"option {name!r} must be {kind_name(kind)}, not {value!r}") from None
    return text or None


def kind_name(kind: str) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true or false"}.get(kind, "text")


@dataclass(frozen=True, slots=True)
class SparkOptions:
    """What a write needs on the executors; the token is never shown."""

    settings: dict[str, Any] = field(default_factory=dict)
    """Config fields given as options, converted to their types."""
    token: str | None = field(default=None, repr=False)
    token_kind: str | None = None
    """``pat``, ``api_key``, or ``None`` (decided from ``user_id``/``app_id``)."""
    tasks: int | None = None
    """Write tasks running at once; ``None``: found from the session's conf."""
    partitions: int | None = None
    """Partitions :func:`ingest.spark.upload` repartitions into (by image)."""
    report: str | None = None
    failures: str | None = None
    base_dir: str | None = None

    @classmethod
    def parse(cls, options: Mapping[str, object]) -> SparkOptions:
        """Check names and values (on the driver, before any task starts)."""
        settings: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for raw_name, value in options.items():
            name = raw_name.lower()
            if name in _SECRET_FIELDS:
                raise ConfigError(
                    f"give the credential as option 'token', not {raw_name!r}: Spark redacts "
                    "option values whose name matches spark.redaction.regex (it matches 'token') "
                    "and would show this one in the query plan and the UI"
                )
            if name in _CONFIG_FIELDS:
                settings[name] = _convert(name, _CONFIG_FIELDS[name], value)
            elif name in _SPARK_FIELDS:
                kind = "int" if name in ("tasks", "partitions") else "str"
                extra[name] = _convert(name, kind, value)
            elif name == "path":
                continue  # save(path) puts it here; the app is the destination
            else:
                known = ", ".join(sorted([*_CONFIG_FIELDS, *_SPARK_FIELDS]))
                raise ConfigError(f"unknown option {raw_name!r}; known options: {known}")
        settings = {k: v for k, v in settings.items() if v is not None}
        for name in ("tasks", "partitions"):
            if extra.get(name) is not None and extra[name] < 1:
                raise ConfigError(f"option {name!r} must be at least 1, not {extra[name]}")
        out = cls(
            settings=settings,
            token=extra.get("token"),
            tasks=extra.get("tasks"),
            partitions=extra.get("partitions"),
            report=extra.get("report"),
            failures=extra.get("failures"),
            base_dir=extra.get("base_dir"),
        )
        Config(**out.settings)  # values checked now (credentials come on the executors)
        return out

    @classmethod
    def from_config(cls, config: Config, **options: object) -> SparkOptions:
        """Options from a :class:`Config` (its credentials included) and Spark's own."""
        settings = {name: getattr(config, name) for name in _CONFIG_FIELDS}
        kind = "pat" if config.pat else "api_key" if config.api_key else None
        parsed = cls.parse(options)
        return replace(
            parsed,
            settings={**settings, **parsed.settings},
            token=parsed.token or config.token,
            token_kind=None if parsed.token else kind,
        )

    def with_tasks(self, tasks: int) -> SparkOptions:
        return replace(self, tasks=tasks)

    @property
    def rps(self) -> float:
        """The app's request budget (shared by every task of the job)."""
        return float(self.settings.get("rps", Config().rps))

    def config(self, tasks: int, environ: Mapping[str, str] | None = None) -> Config:
        """The Config of one write task: its share of the budget, credentials resolved.

        Called on the executor, so that credentials may come from its environment.
        """
        env = os.environ if environ is None else environ
        given = dict(self.settings)
        if self.token:
            kind = self.token_kind
            if kind is None:
                user = given.get("user_id") or env.get("CLARIFAI_USER_ID")
                app = given.get("app_id") or env.get("CLARIFAI_APP_ID")
                kind = "pat" if user and app else "api_key"
            given[kind] = self.token
        given["rps"] = self.rps / max(1, tasks)
        config = Config.from_env(env, **given)
        if not config.token:
            raise ConfigError(
                "no credential: give option 'token', or set CLARIFAI_PAT (with "
                "CLARIFAI_USER_ID and CLARIFAI_APP_ID) or CLARIFAI_API_KEY in the "
                "executors' environment"
            )
        return config


def slots_from_conf(get: Any, cpu_count: int | None = None) -> int | None:
    """Task slots of the application as its configuration tells: ``None`` if unknown.

    ``get(key)`` reads one setting (``None`` when unset). The rule, first that applies:
    ``spark.default.parallelism``; the ``N`` of a ``local[N]`` (or ``local[N,F]``)
    master, the machine's cores for ``local[*]``; ``spark.executor.instances`` x
    ``spark.executor.cores`` / ``spark.task.cpus`` (these settings:
    https://spark.apache.org/docs/latest/configuration.html; master URLs:
    https://spark.apache.org/docs/latest/submitting-applications.html#master-urls).
    """
    value = get("spark.default.parallelism")
    if value:
        return max(1, int(value))
    master = get("spark.master") or ""
    match = _LOCAL.fullmatch(master.strip())
    if match:
        n = match.group(1)
        return max(1, int(n)) if n != "*" else max(1, cpu_count or os.cpu_count() or 1)
    if master.strip() == "local":
        return 1
    instances, cores = get("spark.executor.instances"), get("spark.executor.cores")
    if instances and cores:
        per_task = int(get("spark.task.cpus") or 1)
        return max(1, int(instances) * int(cores) // max(1, per_task))
    return None
