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


def _one_row_csv(tmp_path: Path) -> Path:
    data = tmp_path / "one.csv"
    data.write_text(
        "url,left_col,top_row,right_col,bottom_row\nhttps://example.com/a.jpg,0.1,0.1,0.5,0.5\n",
        encoding="utf-8",
    )
    return data


@pytest.mark.anyio
async def test_run_merges_options_into_the_config_given(tmp_path: Path) -> None:
    data = _one_row_csv(tmp_path)
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


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"dataset_id": "bad id!"}, r"Config\.dataset_id must be an id of letters, digits"),
        ({"app_id": "my app", "api_key": SECRET}, r"Config\.app_id \(or CLARIFAI_APP_ID\)"),
        ({"user_id": "me.too", "api_key": SECRET}, r"Config\.user_id \(or CLARIFAI_USER_ID\)"),
        ({"dataset_id": "x" * 129}, r"1 to 128 characters"),
    ],
)
def test_every_id_option_follows_clarifais_id_rules(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        Config(**options)  # type: ignore[arg-type]


def test_ids_clarifai_accepts_are_taken() -> None:
    config = Config(pat=SECRET, user_id="me", app_id="my_app-2", dataset_id="train-2024_v1")
    assert (config.user_id, config.app_id, config.dataset_id) == ("me", "my_app-2", "train-2024_v1")


@pytest.mark.anyio
async def test_a_bad_dataset_id_given_to_run_stops_before_any_request(tmp_path: Path) -> None:
    data = _one_row_csv(tmp_path)
    async with Sandbox(SandboxOptions(rps=0, processing=(0.01, 0.02))) as sb:
        config = Config(api_key="sandbox-key", base=sb.base_url)
        with pytest.raises(ConfigError, match=r"Config\.dataset_id"):
            await anyio.to_thread.run_sync(partial(run, data, config, dataset_id="bad id!"))
        assert sum(sb.stats.requests.values()) == 0 and sb.inputs == {}


def test_messages_name_options_as_config_fields() -> None:
    """The library's words for its options (the command line turns them into flags)."""
    for options in (
        {"pat": SECRET},
        {"batch_size": 0},
        {"base": "ftp://x"},
        {"rps": -1},
        {"window": 0},
    ):
        with pytest.raises(ConfigError) as info:
            Config(**options)  # type: ignore[arg-type]
        assert "Config." in str(info.value) and "--" not in str(info.value)


def test_the_sdks_root_certificates_variable_gives_ca_file_for_tls(tmp_path: Path) -> None:
    pem = tmp_path / "ca.pem"
    pem.write_text("x")
    other = tmp_path / "other.pem"
    other.write_text("x")
    env = {"CLARIFAI_ROOT_CERTIFICATES_PATH": str(pem), "CLARIFAI_API_KEY": SECRET}
    assert Config.from_env(env).ca_file == str(pem)  # the default base is https
    assert Config.from_env(env, ca_file=str(other)).ca_file == str(other)  # the option wins
    # as in the SDK, it is for TLS channels only: a plaintext base leaves it aside
    plain = Config.from_env({**env, "CLARIFAI_API_BASE": "http://127.0.0.1:1"})
    assert plain.ca_file is None
    with pytest.raises(ConfigError, match="CLARIFAI_ROOT_CERTIFICATES_PATH"):
        Config.from_env({**env, "CLARIFAI_ROOT_CERTIFICATES_PATH": str(tmp_path / "no.pem")})
