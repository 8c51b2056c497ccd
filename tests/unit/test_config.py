"""Settings: parsing, clear refusals, and documentation of every one."""

from __future__ import annotations

from pathlib import Path

import pytest

from signvideo.config import SETTINGS, Config, ConfigError

README = Path(__file__).resolve().parents[2] / "README.md"


def test_defaults() -> None:
    config = Config.load({}, environ={})
    assert (config.host, config.port, config.database_url) == ("127.0.0.1", 8080, None)
    assert config.offer_timeout == 20
    assert config.ice_servers == []


def test_flags_beat_environment() -> None:
    config = Config.load(
        {"port": "9000"}, environ={"SIGNVIDEO_PORT": "8000", "SIGNVIDEO_OFFER_TIMEOUT": "5"}
    )
    assert config.port == 9000
    assert config.offer_timeout == 5


def test_ice_servers_forms() -> None:
    urls = Config.load({}, environ={"SIGNVIDEO_ICE_SERVERS": "stun:a.example:3478, turn:b"})
    assert urls.ice_servers == [{"urls": ["stun:a.example:3478", "turn:b"]}]
    as_json = Config.load(
        {"ice_servers": '[{"urls": "turn:t", "username": "u", "credential": "p"}]'}, environ={}
    )
    assert as_json.ice_servers[0]["username"] == "u"


@pytest.mark.parametrize(
    ("env", "value", "says"),
    [
        ("SIGNVIDEO_PORT", "http", "SIGNVIDEO_PORT='http'"),
        ("SIGNVIDEO_PORT", "70000", "1 to 65535"),
        ("SIGNVIDEO_OFFER_TIMEOUT", "-3", "above 0"),
        ("DATABASE_URL", "mysql://x", "postgresql://"),
        ("SIGNVIDEO_ICE_SERVERS", "http://x", "not a stun:"),
        ("SIGNVIDEO_ICE_SERVERS", "[{]", "SIGNVIDEO_ICE_SERVERS"),
        ("SIGNVIDEO_LOG_LEVEL", "loud", "one of"),
    ],
)
def test_bad_values_are_named(env: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        Config.load({}, environ={env: value})
    assert says in str(caught.value)


def test_every_setting_is_documented_in_readme() -> None:
    text = README.read_text()
    missing = [s.env for s in SETTINGS if f"`{s.env}`" not in text]
    assert not missing, f"settings missing from README.md: {missing}"


def test_only_same_site_paths_are_followed_after_sign_in() -> None:
    from signvideo.access import same_site_path

    for good in ("/console", "/finance/usage.csv?authority=demo&from=2026-01-01", "/admin/audit"):
        assert same_site_path(good) == good
    for bad in (
        None,
        "",
        "https://evil.example/",
        "//evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "/\n/evil.example",
        "/\x00",
        "evil",
        "/" + "a" * 600,
    ):
        assert same_site_path(bad) == "/", bad


def test_the_export_columns_are_documented_in_order() -> None:
    from pathlib import Path

    from signvideo.exports import COLUMN_NOTES

    text = (Path(__file__).parents[2] / "docs" / "exports.md").read_text()
    documented = [
        line.split("`")[1] for line in text.splitlines() if line.startswith("| ") and "`" in line
    ]
    assert documented == list(COLUMN_NOTES)


def test_turn_needs_its_secret_which_is_never_shown() -> None:
    import pytest

    from signvideo.config import Config, ConfigError

    with pytest.raises(ConfigError, match="SIGNVIDEO_TURN_URLS needs SIGNVIDEO_TURN_SECRET"):
        Config.load({}, {"SIGNVIDEO_TURN_URLS": "turn:turn.example.org:3478"})
    with pytest.raises(ConfigError) as short:
        Config.load({}, {"SIGNVIDEO_TURN_SECRET": "tiny-secret"})
    assert "tiny-secret" not in str(short.value) and "(hidden)" in str(short.value)
    with pytest.raises(ConfigError, match="is not a turn: or turns: URL"):
        Config.load(
            {}, {"SIGNVIDEO_TURN_URLS": "stun:x.example:3478", "SIGNVIDEO_TURN_SECRET": "s" * 20}
        )
    with pytest.raises(ConfigError, match="must be all or relay"):
        Config.load({}, {"SIGNVIDEO_ICE_TRANSPORT_POLICY": "turn-only"})
    config = Config.load(
        {},
        {
            "SIGNVIDEO_TURN_URLS": "turn:a.example:3478, turns:a.example:5349",
            "SIGNVIDEO_TURN_SECRET": "s" * 20,
        },
    )
    assert config.turn_urls == ("turn:a.example:3478", "turns:a.example:5349")
