from __future__ import annotations

import pytest

from ingest import Config, ConfigError

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
    ],
)
def test_bad_options_say_what_to_fix(options: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Config(**options)  # type: ignore[arg-type]
    assert SECRET not in str(info.value)
