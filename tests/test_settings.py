"""Settings: the TOML file, the environment over it, the seed's variable names, and the errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from genesys_enrich.errors import ConfigError
from genesys_enrich.genesys.regions import REGION_DOMAINS
from genesys_enrich.settings import (
    GenesysSettings,
    IntakeSettings,
    PipelineSettings,
    Settings,
    load_settings,
)
from genesys_enrich_crm_rest import RestConfig
from genesys_enrich_mapper_fields import FieldsConfig

REPO_SETTINGS = Path(__file__).resolve().parents[1] / "settings.toml"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def config_error(path: Path | None = None, **overrides: object) -> str:
    """The message of the ConfigError that loading raises; fails the test when none is raised."""
    with pytest.raises(ConfigError) as caught:
        load_settings(path, overrides=overrides or None)  # type: ignore[arg-type]
    error = caught.value
    # Raised "from None": the CLI prints one message, and no chained pydantic/TOML traceback.
    assert error.__cause__ is None
    assert error.__suppress_context__
    message = str(error)
    assert "Traceback" not in message
    assert "errors.pydantic.dev" not in message
    return message


# --- where the file comes from --------------------------------------------------------------


def test_settings_file_given_by_path_is_read(tmp_path: Path) -> None:
    """Values from the named TOML file are used."""
    path = write(
        tmp_path / "custom.toml",
        """
        [genesys]
        client_id = "from-file"
        timeout_seconds = 7.5
        [pipeline]
        sources = ["loyalty", "rest"]
        [plugins.rest]
        base_url = "https://crm.example.com/api"
        """,
    )

    settings = load_settings(path)

    assert settings.genesys.client_id == "from-file"
    assert settings.genesys.timeout_seconds == 7.5
    assert settings.pipeline.sources == ("loyalty", "rest")
    assert settings.plugins == {"rest": {"base_url": "https://crm.example.com/api"}}


def test_settings_env_var_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``GENESYS_ENRICH_SETTINGS`` picks the file when no path is given."""
    path = write(tmp_path / "elsewhere.toml", '[genesys]\nclient_id = "from-env-file"\n')
    monkeypatch.setenv("GENESYS_ENRICH_SETTINGS", str(path))

    assert load_settings().genesys.client_id == "from-env-file"


def test_explicit_path_beats_settings_env_var(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``--settings`` path wins over ``GENESYS_ENRICH_SETTINGS``."""
    monkeypatch.setenv(
        "GENESYS_ENRICH_SETTINGS", str(write(tmp_path / "env.toml", '[genesys]\nclient_id = "env"'))
    )
    given = write(tmp_path / "given.toml", '[genesys]\nclient_id = "given"\n')

    assert load_settings(given).genesys.client_id == "given"


def test_settings_toml_in_working_directory_is_used() -> None:
    """A ``settings.toml`` in the current directory is read without being named."""
    write(Path("settings.toml"), '[genesys]\nclient_id = "from-cwd"\n')

    assert load_settings().genesys.client_id == "from-cwd"


def test_no_file_gives_the_defaults() -> None:
    """With no settings file anywhere, the built-in defaults apply."""
    settings = load_settings()

    assert settings.genesys == GenesysSettings()
    assert settings.pipeline == PipelineSettings()
    assert settings.plugins == {}


def test_missing_settings_file_is_a_config_error(tmp_path: Path) -> None:
    """Naming a file that does not exist is reported as such, with its path."""
    message = config_error(tmp_path / "nope.toml")

    assert "nope.toml" in message
    assert "does not exist" in message


def test_missing_file_named_by_env_var_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``GENESYS_ENRICH_SETTINGS`` pointing nowhere is reported, not silently ignored."""
    monkeypatch.setenv("GENESYS_ENRICH_SETTINGS", str(tmp_path / "gone.toml"))

    assert "gone.toml" in config_error()


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    """A file that is not TOML is reported with its path and the parser's complaint."""
    path = write(tmp_path / "broken.toml", "[genesys\nclient_id = 1\n")

    message = config_error(path)

    assert "broken.toml" in message
    assert "not valid TOML" in message
    assert "line 1" in message


# --- the environment over the file ----------------------------------------------------------


def test_prefixed_env_var_overrides_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``GENESYS_ENRICH_GENESYS__CLIENT_ID`` replaces the file's client id, keeping the rest."""
    path = write(tmp_path / "s.toml", '[genesys]\nclient_id = "file"\ntimeout_seconds = 9.0\n')
    monkeypatch.setenv("GENESYS_ENRICH_GENESYS__CLIENT_ID", "env")

    settings = load_settings(path)

    assert settings.genesys.client_id == "env"
    assert settings.genesys.timeout_seconds == 9.0


def test_prefixed_env_var_sets_pipeline_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    """A JSON list in ``GENESYS_ENRICH_PIPELINE__SOURCES`` sets the source order."""
    monkeypatch.setenv("GENESYS_ENRICH_PIPELINE__SOURCES", '["loyalty", "rest"]')

    assert load_settings().pipeline.sources == ("loyalty", "rest")


@pytest.mark.parametrize(
    ("variable", "value", "read"),
    [
        ("GENESYS_CLIENT_ID", "seed-id", lambda s: s.genesys.client_id),
        (
            "GENESYS_CLIENT_SECRET",
            "seed-secret",
            lambda s: s.genesys.client_secret.get_secret_value(),
        ),
        ("GENESYS_ENVIRONMENT", "mypurecloud.de", lambda s: s.genesys.environment),
        ("GENESYS_API_URL", "http://127.0.0.1:9/api", lambda s: s.genesys.api_base_url),
        ("GENESYS_LOGIN_URL", "http://127.0.0.1:9/login", lambda s: s.genesys.login_base_url),
        ("CRM_API_BASE_URL", "https://crm.example.com", lambda s: s.plugins["rest"]["base_url"]),
        ("CRM_API_KEY", "crm-key", lambda s: s.plugins["rest"]["api_key"]),
    ],
)
def test_seed_variable_names_still_work(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, read: object
) -> None:
    """Each environment variable the seed deployment used sets the matching setting."""
    monkeypatch.setenv(variable, value)

    assert read(load_settings()) == value  # type: ignore[operator]


def test_seed_crm_variables_join_the_file_rest_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``CRM_API_KEY`` is added to ``[plugins.rest]`` without losing the file's other keys."""
    path = write(
        tmp_path / "s.toml",
        '[plugins.rest]\nbase_url = "https://file.example"\ntimeout_seconds = 2.0\n',
    )
    monkeypatch.setenv("CRM_API_KEY", "crm-key")

    assert load_settings(path).plugins["rest"] == {
        "base_url": "https://file.example",
        "timeout_seconds": 2.0,
        "api_key": "crm-key",
    }


def test_empty_seed_variable_does_not_blank_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An empty ``GENESYS_CLIENT_ID`` leaves the file's client id in place."""
    path = write(tmp_path / "s.toml", '[genesys]\nclient_id = "file"\n')
    monkeypatch.setenv("GENESYS_CLIENT_ID", "")

    assert load_settings(path).genesys.client_id == "file"


def test_prefixed_beats_seed_beats_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The prefixed variable wins over the seed's name, which wins over the file."""
    path = write(
        tmp_path / "s.toml",
        '[genesys]\nclient_id = "file"\nenvironment = "mypurecloud.jp"\n'
        '[plugins.rest]\nbase_url = "https://file.example"\napi_key = "file-key"\n',
    )
    monkeypatch.setenv("GENESYS_CLIENT_ID", "seed")
    monkeypatch.setenv("GENESYS_ENVIRONMENT", "eu-west-1")
    monkeypatch.setenv("CRM_API_KEY", "seed-key")
    monkeypatch.setenv("GENESYS_ENRICH_GENESYS__CLIENT_ID", "prefixed")
    monkeypatch.setenv("GENESYS_ENRICH_PLUGINS__REST__API_KEY", "prefixed-key")

    settings = load_settings(path)

    assert settings.genesys.client_id == "prefixed"
    assert settings.genesys.environment == "mypurecloud.ie"  # seed over file
    assert settings.plugins["rest"]["api_key"] == "prefixed-key"
    assert settings.plugins["rest"]["base_url"] == "https://file.example"


def test_prefixed_plugin_variable_lands_in_its_section(monkeypatch: pytest.MonkeyPatch) -> None:
    """``GENESYS_ENRICH_PLUGINS__REST__API_KEY`` sets ``plugins["rest"]["api_key"]``."""
    monkeypatch.setenv("GENESYS_ENRICH_PLUGINS__REST__API_KEY", "k-123")

    assert load_settings().plugins["rest"]["api_key"] == "k-123"


def test_environment_beats_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``overrides=`` replace the file's values, but the environment still wins over both."""
    path = write(tmp_path / "s.toml", '[genesys]\nclient_id = "file"\nlogin_url = "http://f"\n')
    monkeypatch.setenv("GENESYS_ENRICH_GENESYS__CLIENT_ID", "env")

    settings = load_settings(
        path, overrides={"genesys": {"client_id": "override", "api_url": "http://o"}}
    )

    assert settings.genesys.client_id == "env"
    assert settings.genesys.api_url == "http://o"
    assert settings.genesys.login_url == "http://f"


# --- region and hosts -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "region",
    ["eu-west-1", "eu_west_1", "mypurecloud.ie", "EU-WEST-1", "https://api.mypurecloud.ie"],
)
def test_region_names_resolve_to_the_genesys_domain(region: str) -> None:
    """An AWS region name, its underscore form or the Genesys domain all mean the same region."""
    settings = load_settings(overrides={"genesys": {"environment": region}})

    assert settings.genesys.environment == "mypurecloud.ie"
    assert settings.genesys.api_base_url == "https://api.mypurecloud.ie"
    assert settings.genesys.login_base_url == "https://login.mypurecloud.ie"


def test_unknown_region_lists_the_valid_domains(monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown region is refused with every valid domain and where to set it."""
    monkeypatch.setenv("GENESYS_ENVIRONMENT", "mars-north-1")

    message = config_error()

    assert "mars-north-1" in message
    for domain in REGION_DOMAINS.values():
        assert domain in message
    assert "genesys.environment" in message
    assert "GENESYS_ENRICH_GENESYS__ENVIRONMENT" in message
    assert "GENESYS_ENVIRONMENT" in message


def test_default_hosts_are_the_us_east_ones() -> None:
    """Without a region the API and login hosts are the mypurecloud.com ones."""
    genesys = load_settings().genesys

    assert genesys.api_base_url == "https://api.mypurecloud.com"
    assert genesys.login_base_url == "https://login.mypurecloud.com"


def test_api_and_login_urls_override_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """Explicit API and login URLs win over the region's, without a trailing slash."""
    monkeypatch.setenv("GENESYS_ENVIRONMENT", "eu-west-1")
    monkeypatch.setenv("GENESYS_API_URL", "http://127.0.0.1:8080/")
    monkeypatch.setenv("GENESYS_ENRICH_GENESYS__LOGIN_URL", "https://login.proxy.example/")

    genesys = load_settings().genesys

    assert genesys.api_base_url == "http://127.0.0.1:8080"
    assert genesys.login_base_url == "https://login.proxy.example"


def test_non_http_api_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """An API URL that is not http(s) is refused, naming both variables that set it."""
    monkeypatch.setenv("GENESYS_API_URL", "api.mypurecloud.com")

    message = config_error()

    assert "genesys.api_url" in message
    assert "GENESYS_ENRICH_GENESYS__API_URL" in message
    assert "GENESYS_API_URL" in message


# --- invalid values -------------------------------------------------------------------------


def test_negative_timeout_in_file_names_key_section_and_variable(tmp_path: Path) -> None:
    """A bad value in the file is reported with its dotted key, its section, file and variable."""
    path = write(tmp_path / "s.toml", "[genesys]\ntimeout_seconds = -1\n")

    message = config_error(path)

    assert "genesys.timeout_seconds" in message
    assert "[genesys]" in message
    assert str(path) in message
    assert "GENESYS_ENRICH_GENESYS__TIMEOUT_SECONDS" in message
    assert "greater than 0" in message


def test_negative_timeout_from_environment_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad value from the environment is reported the same way."""
    monkeypatch.setenv("GENESYS_ENRICH_GENESYS__TIMEOUT_SECONDS", "-1")

    message = config_error()

    assert "genesys.timeout_seconds" in message
    assert "GENESYS_ENRICH_GENESYS__TIMEOUT_SECONDS" in message


def test_unknown_key_in_genesys_section_is_refused(tmp_path: Path) -> None:
    """A typo in ``[genesys]`` is reported at start-up, naming the key and the section."""
    path = write(tmp_path / "s.toml", '[genesys]\nclient_idd = "x"\n')

    message = config_error(path)

    assert "genesys.client_idd" in message
    assert "[genesys]" in message
    assert "GENESYS_ENRICH_GENESYS__CLIENT_IDD" in message


def test_unknown_section_is_refused(tmp_path: Path) -> None:
    """A misspelt section name is reported rather than ignored."""
    path = write(tmp_path / "s.toml", '[pipelines]\nsources = ["rest"]\n')

    assert "pipelines" in config_error(path)


def test_every_bad_setting_is_reported_at_once(tmp_path: Path) -> None:
    """Several mistakes are listed together, one line each, so one run shows them all."""
    path = write(
        tmp_path / "s.toml",
        "[genesys]\ntimeout_seconds = 0\n"
        "[pipeline]\nconcurrency = 0\nsource_timeout_seconds = -2\n",
    )

    lines = config_error(path).splitlines()

    assert lines[0] == "invalid settings:"
    assert len(lines) == 4
    assert any("pipeline.concurrency" in line and "[pipeline]" in line for line in lines)
    assert any("GENESYS_ENRICH_PIPELINE__SOURCE_TIMEOUT_SECONDS" in line for line in lines)


# --- secrets --------------------------------------------------------------------------------


def test_client_secret_is_never_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The Genesys client secret is masked in repr, str and JSON dumps of the settings."""
    path = write(tmp_path / "s.toml", '[genesys]\nclient_secret = "file-secret-1f3c"\n')
    settings = load_settings(path)
    monkeypatch.setenv("GENESYS_CLIENT_SECRET", "seed-secret-9a7b")
    from_env = load_settings()

    assert settings.genesys.client_secret is not None
    assert settings.genesys.client_secret.get_secret_value() == "file-secret-1f3c"
    for shown, secret in ((settings, "file-secret-1f3c"), (from_env, "seed-secret-9a7b")):
        for text in (repr(shown), str(shown), repr(shown.genesys), shown.model_dump_json()):
            assert secret not in text


def test_crm_api_key_is_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CRM API key is masked in repr and str of the settings, like the client secret."""
    monkeypatch.setenv("CRM_API_KEY", "crm-key-5e2d")

    settings = load_settings()

    assert "crm-key-5e2d" not in repr(settings)
    assert "crm-key-5e2d" not in str(settings)


# --- the repository's own settings file -----------------------------------------------------


def test_repository_settings_file_loads() -> None:
    """The settings.toml shipped in the repository is valid."""
    assert isinstance(load_settings(REPO_SETTINGS), Settings)


def test_repository_settings_file_shows_the_real_defaults() -> None:
    """The shipped settings.toml documents the defaults the code actually uses."""
    settings = load_settings(REPO_SETTINGS)

    assert settings.pipeline.sources == PipelineSettings().sources
    assert settings.pipeline.mappers == PipelineSettings().mappers
    assert settings.pipeline == PipelineSettings()
    assert settings.genesys == GenesysSettings()
    assert settings.intake == IntakeSettings()
    assert FieldsConfig.model_validate(settings.plugins["fields"]) == FieldsConfig()
    rest = RestConfig.model_validate({"base_url": "https://x", **settings.plugins["rest"]})
    assert rest == RestConfig(base_url="https://x")


def test_a_list_setting_given_as_plain_text_is_a_message_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`GENESYS_ENRICH_PIPELINE__SOURCES=rest` says a list must be JSON, and how to write it."""
    monkeypatch.setenv("GENESYS_ENRICH_PIPELINE__SOURCES", "rest")
    with pytest.raises(ConfigError, match=r"must be JSON, e\.g\. GENESYS_ENRICH_PIPELINE__SOURCES"):
        load_settings()


def test_no_plugin_value_shows_in_the_repr_only_its_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Until a plugin's typed config says which of its values are secret, none is printed: not a
    URL's password, not a credential under a name nobody would guess."""
    monkeypatch.setenv("GENESYS_ENRICH_PLUGINS__SQL__URL", "postgresql://app:hunter2@db/crm")
    monkeypatch.setenv("GENESYS_ENRICH_PLUGINS__SQL__SESAME", "open-4f1e")
    shown = repr(load_settings())
    assert "hunter2" not in shown
    assert "open-4f1e" not in shown
    assert "'sql': {'sesame': ..., 'url': ...}" in shown


def test_a_misspelt_section_in_a_variable_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``GENESYS_ENRICH_PIPELINES__SOURCES`` is a typo to report, not a variable to ignore."""
    monkeypatch.setenv("GENESYS_ENRICH_PIPELINES__SOURCES", '["rest"]')
    assert "pipelines: Extra inputs are not permitted" in config_error()


def test_host_variables_under_the_prefix_are_not_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Variables without ``__`` (log level, metrics, the settings file) belong to the hosts."""
    monkeypatch.setenv("GENESYS_ENRICH_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("GENESYS_ENRICH_METRICS", "off")
    assert load_settings() == Settings()


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("genesys_enrich_pipeline__Source_Timeout_Seconds", "2.5")
    assert load_settings().pipeline.source_timeout_seconds == 2.5


def test_a_settings_file_that_cannot_be_read_is_a_config_error(tmp_path: Path) -> None:
    """Not UTF-8, a directory, or TOML nested past Python's recursion limit: one message each,
    naming the file."""
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes(b'[genesys]\nclient_id = "caf\xe9"\n')
    assert config_error(latin1) == f"settings file {latin1} is not UTF-8 text (byte 27)"
    assert config_error(tmp_path).startswith(f"settings file {tmp_path} cannot be read: ")
    deep = write(tmp_path / "deep.toml", "x = " + "[" * 5_000 + "]" * 5_000)
    assert "nested too deeply" in config_error(deep)


def test_json_nested_absurdly_deep_in_an_environment_variable_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENESYS_ENRICH_PIPELINE__SOURCES", "[" * 5_000 + "]" * 5_000)
    assert "GENESYS_ENRICH_PIPELINE__SOURCES cannot be read as JSON (nested more than" in (
        config_error()
    )


@pytest.mark.parametrize("value", ["inf", "nan", "-inf"])
def test_an_infinite_or_nan_number_is_refused(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A timeout or window of inf is a typo, not a way to say "for ever"."""
    monkeypatch.setenv("GENESYS_ENRICH_INTAKE__DUPLICATE_WINDOW_SECONDS", value)
    assert "intake.duplicate_window_seconds: Input should be a finite number" in config_error()
