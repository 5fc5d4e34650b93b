from __future__ import annotations

from functools import partial
from pathlib import Path

import anyio
import pytest

from ingest import Config, ConfigError, run
from ingest.sandbox import Sandbox, SandboxOptions

SECRET = "tok-5ecret-never-shown"


def test_secrets_never_show_in_repr_or_str() -> None:
    for config in (
        Config(pat=SECRET, user_id="u", app_id="a"),
        Config(api_key=SECRET),
    ):
        assert SECRET not in repr(config)
        assert SECRET not in str(config)
        assert "***" in repr(config)
        assert config.token == SECRET


def test_from_env_reads_the_sdk_variables_and_options_win() -> None:
    env = {
        "CLARIFAI_PAT": SECRET,
        "CLARIFAI_USER_ID": "me",
        "CLARIFAI_APP_ID": "app",
        "CLARIFAI_API_BASE": "http://127.0.0.1:1234",
    }
    config = Config.from_env(env)
    assert (config.pat, config.user_id, config.app_id) == (SECRET, "me", "app")
    assert config.endpoint == ("127.0.0.1", 1234, False)
    other = Config.from_env(env, app_id="other", base="https://api.example.com", rps=5.0)
    assert other.app_id == "other"
    assert other.endpoint == ("api.example.com", 443, True)
    assert other.rps == 5.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"pat": SECRET}, "needs a user id and an app id"),
        ({"pat": SECRET, "api_key": SECRET, "user_id": "u", "app_id": "a"}, "not both"),
        ({"batch_size": 129}, "batch_size must be between 1 and 128"),
        ({"annotation_batch_size": 0}, "annotation_batch_size"),
        ({"rps": 0}, "rps must be positive"),
        ({"concurrency": 0}, "concurrency"),
        ({"base": "ftp://host"}, "base must look like"),
        ({"base": "http://host:notaport"}, "invalid port"),
        ({"backoff_max": 0}, r"backoff_max must be at least backoff \(0.5\), not 0"),
        ({"backoff": 2.0, "backoff_max": 1.0}, "backoff_max must be at least backoff"),
        ({"linger": -0.1}, "linger must not be negative"),
        ({"linger": float("nan")}, "linger must not be negative"),
        ({"processing_estimate": -1}, "processing_estimate must not be negative"),
        ({"max_pending": 0}, "max_pending must be at least 1, not 0"),
        ({"queue_size": 0}, "queue_size must be at least 1, not 0"),
        ({"max_attempts": 0}, "max_attempts must be at least 1"),
    ],
)
def test_bad_options_say_what_to_fix(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Config(**options)  # type: ignore[arg-type]
    assert SECRET not in str(info.value)


def test_zero_linger_and_processing_estimate_are_allowed() -> None:
    config = Config(linger=0, processing_estimate=0, backoff=1.0, backoff_max=1.0)
    assert (config.linger, config.processing_estimate) == (0, 0)


def test_run_validates_options_given_beside_a_config() -> None:
    config = Config(api_key=SECRET, base="http://127.0.0.1:1")
    with pytest.raises(ConfigError, match="batch_size must be between 1 and 128, not 500"):
        run("never-read.csv", config, batch_size=500)


@pytest.mark.anyio
async def test_run_merges_options_into_the_config_given(tmp_path: Path) -> None:
    data = tmp_path / "one.csv"
    data.write_text(
        "url,left_col,top_row,right_col,bottom_row\nhttps://example.com/a.jpg,0.1,0.1,0.5,0.5\n",
        encoding="utf-8",
    )
    async with Sandbox(SandboxOptions(rps=0, processing=(0.01, 0.02))) as sb:
        config = Config(
            api_key="sandbox-key", base=sb.base_url, linger=0.05, processing_estimate=0.02
        )
        # run() blocks on its own event loop: in a worker thread, while the sandbox serves
        report = await anyio.to_thread.run_sync(
            partial(run, data, config, dataset_id="merged", rps=1000.0, app_id=None)
        )
        assert report.rows_landed == 1
        [stored] = sb.inputs.values()
        assert list(stored.dataset_ids) == ["merged"]
